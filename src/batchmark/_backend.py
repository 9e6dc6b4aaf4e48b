"""Batch backends: the three narrow hooks the batch machinery needs from a provider.

``BatchBackend`` is what ``_batches.BatchRunner`` talks to: create a batch, check it,
fetch its results, list recent batches (to adopt one whose create response was lost)
and cancel. ``AnthropicBackend`` implements them with the official SDK; retries of
transient HTTP errors are the SDK's (``max_retries``), never repeated here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import anthropic
import httpx2

from batchmark._errors import CredentialsError

__all__ = [
    "AnthropicBackend",
    "BatchBackend",
    "BatchInfo",
    "BatchNotFound",
    "ResultLine",
    "ResultsStreamError",
    "make_client",
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


class BatchNotFound(Exception):
    """The backend answered 404 for a batch id."""


class ResultsStreamError(Exception):
    """A results stream broke off midway (connection dropped, truncated line)."""


class BatchBackend(Protocol):
    def create(self, requests: list[dict[str, Any]]) -> BatchInfo: ...
    def check(self, batch_id: str) -> BatchInfo: ...
    def fetch(self, batch_id: str) -> Iterator[ResultLine]: ...
    def list_recent(self, since: datetime) -> Iterator[BatchInfo]: ...
    def cancel(self, batch_id: str) -> BatchInfo: ...


def make_client(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    api_version: str | None = None,
    max_retries: int = 4,
) -> anthropic.Anthropic:
    """An SDK client; the key comes from the argument or ``ANTHROPIC_API_KEY``, never disk."""
    key = api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise CredentialsError(
            "no API key: set ANTHROPIC_API_KEY, or pass --emulate to run against the "
            "bundled emulator offline"
        )
    headers = {"anthropic-version": api_version} if api_version else None
    return anthropic.Anthropic(
        api_key=key, base_url=base_url, max_retries=max_retries, default_headers=headers
    )


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


def _retry_wait(err: anthropic.APIStatusError, attempt: int) -> float:
    """The server's ``retry-after-ms`` / ``retry-after``, else capped exponential backoff."""
    headers = err.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            wait = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if wait > 0:
            return min(wait, _MAX_RETRY_WAIT)
    return min(0.5 * 2**attempt, 8.0)


def normalize_message(message: Any) -> dict[str, Any]:
    """The parts of a Message an eval needs, as plain data."""
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            tool_calls.append({"id": block.id, "name": block.name, "input": block.input})
        elif kind == "thinking":
            thinking.append(block.thinking)
    usage = message.usage
    cache_creation = getattr(usage, "cache_creation", None)
    return {
        "message_id": message.id,
        "response_model": message.model,
        "text": "".join(texts),
        "tool_calls": tool_calls,
        "thinking": "\n".join(thinking) if thinking else None,
        "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
            "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": getattr(cache_creation, "ephemeral_5m_input_tokens", 0)
                or 0,
                "ephemeral_1h_input_tokens": getattr(cache_creation, "ephemeral_1h_input_tokens", 0)
                or 0,
            },
            "service_tier": usage.service_tier,
        },
    }


def _result_line(item: Any) -> ResultLine:
    result = item.result
    kind = result.type
    if kind == "succeeded":
        return ResultLine(item.custom_id, kind, message=normalize_message(result.message))
    if kind == "errored":
        envelope = result.error
        err = getattr(envelope, "error", None)
        return ResultLine(
            item.custom_id,
            kind,
            error_type=getattr(err, "type", None) or "unknown_error",
            error_message=getattr(err, "message", None) or "",
        )
    return ResultLine(item.custom_id, kind)


class AnthropicBackend:
    """The Message Batches API through the official ``anthropic`` SDK."""

    def __init__(self, client: anthropic.Anthropic, sleep: Any = time.sleep) -> None:
        self.client = client
        self.sleep = sleep

    def create(self, requests: list[dict[str, Any]]) -> BatchInfo:
        """One batch create. Not idempotent, so the SDK must not re-send it blindly: a
        500 or a timeout after the server committed the batch, re-sent, is a second
        (paid) batch of the same requests. Only refusals (429, 529) are retried here,
        as often as the client's ``max_retries``; anything else is raised for the
        runner to settle from the batch list."""
        once = self.client.with_options(max_retries=0)  # shares the HTTP connection pool
        for attempt in range(self.client.max_retries + 1):
            try:
                return _info(once.messages.batches.create(requests=requests))  # type: ignore[arg-type]
            except anthropic.APIStatusError as err:
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
        try:
            decoder = self.client.messages.batches.results(batch_id)
        except anthropic.NotFoundError as err:
            raise BatchNotFound(batch_id) from err
        try:
            for item in decoder:
                yield _result_line(item)
        except (httpx2.TransportError, anthropic.APIConnectionError, ValueError) as err:
            raise ResultsStreamError(f"results of {batch_id}: {err}") from err
        finally:
            decoder.close()

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
