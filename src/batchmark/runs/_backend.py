"""Batch backends: the three narrow hooks the batch machinery needs from a provider.

``BatchBackend`` is what ``_batches.BatchRunner`` talks to: create a batch, check it,
fetch its results, list recent batches (to adopt one whose create response was lost)
and cancel. ``AnthropicBackend`` implements them with the official SDK; retries of
transient HTTP errors are the SDK's (``max_retries``), never repeated here. A create the
API refuses because its queue of batch requests is full raises ``QueueFull`` at once,
without retries: room comes only as batches end, which the runner waits for.

The runner calls ``create`` from several threads at once (one per batch being created);
every other hook is called from the runner's own thread only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import anthropic
import httpx2
import orjson
from anthropic.types.messages import MessageBatch

from batchmark._errors import BatchNotFound, ResultsStreamError
from batchmark.runs._stored import normalize_message

__all__ = [
    "BODY_PIECE_BYTES",
    "AnthropicBackend",
    "BatchBackend",
    "BatchInfo",
    "BatchNotFound",
    "BatchRequests",
    "QueueFull",
    "ResultLine",
    "ResultsStreamError",
    "body_length",
    "body_pieces",
]


@dataclass(frozen=True, slots=True)
class BatchInfo:
    id: str
    status: str  # in_progress | canceling | ended
    counts: dict[str, int]
    created_at: datetime
    archived: bool = False  # past retention: the results are gone for good

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One line of a batch's results, normalized to plain data."""

    custom_id: str
    status: str  # succeeded | errored | canceled | expired
    message: dict[str, Any] | None = None  # normalized message fields when succeeded
    error_type: str | None = None
    error_message: str | None = None


class BatchRequests(Protocol):
    """The requests of one create, readable as often as needed (each attempt re-reads)."""

    def sizes(self) -> Iterable[tuple[str, int]]:
        """``(custom_id, length of its params JSON in bytes)`` in order."""
        ...

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """``(custom_id, params as JSON)`` in the same order, afresh on each call."""
        ...


class QueueFull(Exception):
    """The API refused a create because its queue of batch requests has no room for it
    (429): no batch was made. ``retry_after``: the seconds it said to wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BatchBackend(Protocol):
    def create(self, requests: BatchRequests) -> BatchInfo:
        """Create a batch; raises ``QueueFull`` when the queue has no room for it."""
        ...

    def check(self, batch_id: str) -> BatchInfo: ...
    def fetch(self, batch_id: str) -> Iterator[ResultLine]: ...
    def list_recent(self, since: datetime) -> Iterator[BatchInfo]: ...
    def cancel(self, batch_id: str) -> BatchInfo: ...


def _info(batch: Any) -> BatchInfo:
    counts = batch.request_counts
    return BatchInfo(
        id=batch.id,
        status=batch.processing_status,
        counts={
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
        created_at=batch.created_at,
        archived=getattr(batch, "archived_at", None) is not None,
    )


# A create answered with one of these was refused before anything was made, so sending
# it again cannot create a second batch. Any other failure (500, 502, 504, a timeout, a
# dropped connection) may come after the batch was committed: the runner settles it from
# the batch list instead of re-sending (see ``BatchRunner._submit``).
_CREATE_REFUSED = (429, 529)
_MAX_RETRY_WAIT = 60.0
# What tells a full queue from a per-minute rate limit in a 429 on create. The real
# API's wording is [unverified] ("Rate limits apply to ... the number of requests within a
# batch waiting to be processed" [docs batch-processing]; the emulator says "... limit of N
# batch requests in the processing queue"). A full queue not recognized is retried like
# any 429 and, once the retries are spent, waited for all the same (``BatchRunner``).
_QUEUE_WORDS = ("queue",)

# The create body: ``{"requests":[`` entries joined by commas ``]}``, each entry
# ``{"custom_id":<JSON string>,"params":<stored JSON>}``. It is sent in pieces of about
# this many bytes, never joined whole (a 100,000-request body is ~50 MB).
BODY_PIECE_BYTES = 1 << 20
_BODY_OPEN, _BODY_CLOSE = b'{"requests":[', b"]}"
_ENTRY_FRAME = len(b'{"custom_id":,"params":}')


def body_length(sizes: Iterable[tuple[str, int]]) -> int:
    """The exact byte length of the body ``body_pieces`` yields for these requests."""
    n = entries = 0
    for custom_id, params_size in sizes:
        n += 1
        entries += _ENTRY_FRAME + len(orjson.dumps(custom_id)) + params_size
    return len(_BODY_OPEN) + entries + max(n - 1, 0) + len(_BODY_CLOSE)


def body_pieces(requests: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The create body in pieces of about ``BODY_PIECE_BYTES``."""
    yield _BODY_OPEN
    piece: list[bytes] = []
    size = 0
    comma = b""  # before every piece but the first
    for custom_id, params in requests:
        entry = b'{"custom_id":' + orjson.dumps(custom_id) + b',"params":' + params + b"}"
        piece.append(entry)
        size += len(entry) + 1
        if size >= BODY_PIECE_BYTES:
            yield comma + b",".join(piece)
            piece, size, comma = [], 0, b","
    if piece:
        yield comma + b",".join(piece)
    yield _BODY_CLOSE


def retry_after(err: anthropic.APIStatusError) -> float | None:
    """The wait the server asked for, in seconds: ``retry-after-ms``, else ``retry-after``
    (seconds; the real API sends whole seconds); None when it asked for none."""
    headers = err.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            wait = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if wait > 0:
            return wait
    return None


def _retry_wait(err: anthropic.APIStatusError, attempt: int) -> float:
    """The server's ``retry-after-ms`` / ``retry-after``, else capped exponential backoff."""
    wait = retry_after(err)
    if wait is not None:
        return min(wait, _MAX_RETRY_WAIT)
    return min(0.5 * 2**attempt, 8.0)


def api_message(err: anthropic.APIStatusError) -> str:
    """The API's own ``error.message`` of an error answer (else the SDK's summary)."""
    body = err.body
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else err.message


def is_queue_full(err: anthropic.APIStatusError) -> bool:
    """Whether a 429 on create says the queue of batch requests is full (``_QUEUE_WORDS``)."""
    if err.status_code != 429:
        return False
    message = api_message(err).lower()
    return any(word in message for word in _QUEUE_WORDS)


def _result_line(item: dict[str, Any]) -> ResultLine:
    """One results line (parsed JSON, shaped as the SDK's MessageBatchIndividualResponse)."""
    custom_id = item["custom_id"]
    result = item.get("result") or {}
    kind = result.get("type", "unknown")
    if kind == "succeeded":
        return ResultLine(custom_id, kind, message=normalize_message(result.get("message") or {}))
    if kind == "errored":
        err = (result.get("error") or {}).get("error") or {}
        return ResultLine(
            custom_id,
            kind,
            error_type=err.get("type") or "unknown_error",
            error_message=err.get("message") or "",
        )
    return ResultLine(custom_id, kind)


class AnthropicBackend:
    """The Message Batches API through the official ``anthropic`` SDK."""

    def __init__(self, client: anthropic.Anthropic, sleep: Any = time.sleep) -> None:
        self.client = client
        self.sleep = sleep

    def create(self, requests: BatchRequests) -> BatchInfo:
        """One batch create of ``(custom_id, params as JSON)`` pairs.

        The body is streamed from the params' stored JSON bytes, piece by piece
        (``body_pieces``), and POSTed with the SDK's own client (``client.post``: its auth,
        headers, base URL and error types), so no request is parsed or re-serialized
        (``batches.create`` would deep-copy and transform every request's params first)
        and the body is never held whole. Its exact ``Content-Length`` is computed first,
        from the sizes (``body_length``), so the upload is an ordinary fixed-length one,
        not chunked transfer encoding (which the API is not known to accept); a length
        that did not match would fail in httpx's HTTP/1.1 layer, never send a bad body.

        Not idempotent, so the SDK must not re-send it blindly: a 500 or a timeout after
        the server committed the batch, re-sent, is a second (paid) batch of the same
        requests. Only refusals (429, 529) are retried here, as often as the client's
        ``max_retries``, each attempt with a body read afresh from ``requests``; anything
        else is raised for the runner to settle from the batch list. A 429 saying the
        queue of batch requests is full is not retried: ``QueueFull`` (room comes only as
        batches end, minutes or hours later).

        Safe to call from several threads at once (they share the SDK client)."""
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(body_length(requests.sizes())),
        }
        once = self.client.with_options(max_retries=0)  # shares the HTTP connection pool
        for attempt in range(self.client.max_retries + 1):
            try:
                batch = once.post(
                    "/v1/messages/batches",
                    cast_to=MessageBatch,
                    content=body_pieces(requests),
                    options={"headers": headers},
                )
                return _info(batch)
            except anthropic.APIStatusError as err:
                if is_queue_full(err):
                    raise QueueFull(api_message(err), retry_after(err)) from err
                if err.status_code not in _CREATE_REFUSED or attempt >= self.client.max_retries:
                    raise
                self.sleep(_retry_wait(err, attempt))
        raise AssertionError("unreachable")

    def check(self, batch_id: str) -> BatchInfo:
        try:
            return _info(self.client.messages.batches.retrieve(batch_id))
        except anthropic.NotFoundError as err:
            raise BatchNotFound(batch_id) from err

    def fetch(self, batch_id: str) -> Iterator[ResultLine]:
        """Stream a batch's results line by line, through the SDK's own HTTP stack.

        ``with_streaming_response.results`` does what ``results`` does (retrieve, then a
        GET of ``results_url``) but hands over the raw lines, which orjson parses about
        5x faster than building the SDK's pydantic objects for every line. Lines are
        parsed one at a time: memory does not grow with the batch. Lines end at ``\n``
        only (``_jsonl_lines``), not where ``iter_lines`` would split text (U+2028,
        U+2029, U+0085: raw inside a JSON string, as a model may write them).
        """
        stream = self.client.messages.batches.with_streaming_response.results(batch_id)
        try:
            response = stream.__enter__()
        except anthropic.NotFoundError as err:
            raise BatchNotFound(batch_id) from err
        try:
            for line in _jsonl_lines(response.iter_bytes()):
                yield _result_line(orjson.loads(line))
        except (httpx2.TransportError, anthropic.APIConnectionError, ValueError) as err:
            raise ResultsStreamError(
                f"the results stream of batch {batch_id} broke off ({err or type(err).__name__})"
                "; nothing is lost: the answers already read are kept and the rest are read "
                "again by `batchmark resume RUN`"
            ) from err
        finally:
            stream.__exit__(None, None, None)

    def list_recent(self, since: datetime) -> Iterator[BatchInfo]:
        for batch in self.client.messages.batches.list(limit=100):
            if batch.created_at < since:
                return
            yield _info(batch)

    def cancel(self, batch_id: str) -> BatchInfo:
        try:
            return _info(self.client.messages.batches.cancel(batch_id))
        except anthropic.NotFoundError as err:
            raise BatchNotFound(batch_id) from err


def _jsonl_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a byte stream split at ``\n`` (a ``\r`` before it goes)."""
    rest: list[bytes] = []  # a line's pieces so far (a long line comes in many chunks)
    for chunk in chunks:
        *lines, last = chunk.split(b"\n")
        for line in lines:
            if rest:
                line, rest = b"".join([*rest, line]), []
            if line.strip():
                yield line
        if last:
            rest.append(last)
    line = b"".join(rest)
    if line.strip():
        yield line
