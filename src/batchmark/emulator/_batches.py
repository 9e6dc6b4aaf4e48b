"""Message batches: their lifecycle, counts, listing, and the outcome of each request.

Time is the emulator's clock. A batch ends ``processing_seconds`` after creation (each
request finishes at a seeded fraction of that), or at ``expires_at`` (unfinished requests
``expired``), or ``cancel_seconds`` after a cancel (unfinished requests ``canceled``).
Its status is computed when asked; outcomes are settled once, the first time anyone
observes the batch ended, and never change afterwards.
"""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass, field
from typing import Any

from batchmark.emulator._cache import CacheUsage, PromptCache
from batchmark.emulator._clock import Clock, rfc3339
from batchmark.emulator._faults import Faults, request_fault
from batchmark.emulator._http import ApiError
from batchmark.emulator._messages import params_error
from batchmark.emulator._models import ModelRules
from batchmark.emulator._ratelimits import retry_after_header
from batchmark.emulator._seeded import Seeded

__all__ = ["Batch", "BatchStore", "Outcomes", "SubmittedBatch"]

DAY = 86400.0
RETENTION_SECONDS = 29 * DAY
KINDS = ("succeeded", "errored", "canceled", "expired")
SUCCEEDED, ERRORED, CANCELED, EXPIRED = range(4)


@dataclass(frozen=True)
class SubmittedBatch:
    """What was submitted in one create (for tests: prove nothing was sent twice)."""

    id: str
    requests: tuple[dict[str, Any], ...]
    anthropic_version: str

    @property
    def custom_ids(self) -> list[str]:
        """The custom_ids in submission order."""
        return [r["custom_id"] for r in self.requests]


@dataclass
class Outcomes:
    """The settled result of every request of an ended batch (compact: one byte each)."""

    kinds: bytearray
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Index → (error type, message) of the errored requests."""
    cache: dict[int, CacheUsage] = field(default_factory=dict)
    """Index → input usage of succeeded requests that carry cache breakpoints."""

    def counts(self) -> dict[str, int]:
        """The final ``request_counts``."""
        return {
            "processing": 0,
            **{kind: self.kinds.count(code) for code, kind in enumerate(KINDS)},
        }


@dataclass
class Batch:
    """One batch: what was submitted, its timeline, and (once ended) its outcomes."""

    id: str
    seq: int
    requests: list[dict[str, Any]]
    anthropic_version: str
    created_at: float
    processing_seconds: float
    expires_at: float
    faults: Faults
    not_found_left: int
    cancel_initiated_at: float | None = None
    cancel_ends_at: float | None = None
    outcomes: Outcomes | None = None
    counts: dict[str, int] | None = None

    def ends_at(self) -> float:
        """When processing ends (all resolved, expired, or canceled)."""
        end = min(self.created_at + self.processing_seconds, self.expires_at)
        if self.cancel_ends_at is not None:
            end = min(end, self.cancel_ends_at)
        return end

    def status(self, now: float) -> str:
        """``in_progress``, ``canceling`` or ``ended`` at time ``now``."""
        if now >= self.ends_at():
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"

    def finish_time(self, seeded: Seeded, index: int) -> float:
        """When request ``index`` finishes (a seeded point of the processing window)."""
        if not self.processing_seconds:
            return self.created_at  # every share of nothing is nothing (and draws are pure)
        custom_id = self.requests[index]["custom_id"]
        share = 1.0 - seeded.fraction("finish", self.id, custom_id)  # in (0, 1]
        return self.created_at + self.processing_seconds * share


class BatchStore:
    """All batches of one emulator, guarded by one lock (the server thread and tests
    share it)."""

    def __init__(self, clock: Clock, seeded: Seeded, cache: PromptCache) -> None:
        self.clock = clock
        self.seeded = seeded
        self.cache = cache
        self.cancel_seconds = 0.0
        self.rules: ModelRules | None = None
        """The model catalog's request rules (set by the ``Emulator``)."""
        self._batches: dict[str, Batch] = {}
        self._seq_of: dict[str, int] = {}  # every id ever created, for list cursors
        self._submitted: list[SubmittedBatch] = []
        self._lock = threading.RLock()

    def create(
        self,
        requests: list[dict[str, Any]],
        *,
        anthropic_version: str,
        processing_seconds: float,
        ttl_seconds: float,
        faults: Faults,
        queue_limit: int | None = None,
    ) -> dict[str, Any]:
        """Store a new batch; its JSON as of creation (always ``in_progress``).

        With ``queue_limit``, a create whose requests would bring the requests of
        unfinished batches above it is refused with 429 (``_queue_full``)."""
        with self._lock:
            now = self.clock.now()
            if queue_limit is not None:
                self._admit(len(requests), queue_limit, now)
            seq = len(self._seq_of)
            batch_id = self.seeded.ident("msgbatch", "batch", seq)
            batch = Batch(
                id=batch_id,
                seq=seq,
                requests=requests,
                anthropic_version=anthropic_version,
                created_at=now,
                processing_seconds=processing_seconds,
                expires_at=now + ttl_seconds,
                faults=faults,
                not_found_left=faults.not_found_after_create,
            )
            self._batches[batch_id] = batch
            self._seq_of[batch_id] = seq
            self._submitted.append(SubmittedBatch(batch_id, tuple(requests), anthropic_version))
            return self._wire(batch, now, base_url=None, fresh=True)

    def queued(self) -> int:
        """Requests in unfinished (``in_progress`` or ``canceling``) batches now."""
        with self._lock:
            now = self.clock.now()
            return sum(len(b.requests) for b in self._unfinished(now))

    def _unfinished(self, now: float) -> list[Batch]:
        return [b for b in self._batches.values() if b.status(now) != "ended"]

    def _admit(self, n: int, limit: int, now: float) -> None:
        """Refuse (429) a create of ``n`` requests that the queue has no room for.

        The real API limits "the number of requests within a batch waiting to be
        processed" per organization [docs batch-processing]; the per-tier figures and
        the wording of its 429 are [unverified]: the message follows the API's other
        rate-limit messages. ``retry-after`` is when enough of the queue will have
        ended for this create to fit; for a create larger than the whole queue (it
        never fits: also a 429 here, as the real answer is unknown) when the queue is
        empty.
        """
        unfinished = sorted(self._unfinished(now), key=Batch.ends_at)
        queued = sum(len(b.requests) for b in unfinished)
        if queued + n <= limit:
            return
        left, room_at = queued, now
        for batch in unfinished:
            left -= len(batch.requests)
            room_at = batch.ends_at()
            if left + n <= limit:
                break
        message = (
            f"This request would exceed your organization's limit of {limit:,} batch "
            f"requests in the processing queue ({queued:,} queued, {n:,} in this "
            "request). For details, refer to: https://docs.claude.com/en/api/rate-limits. "
            "Please wait for batches in progress to end, or try again later."
        )
        retry_after = retry_after_header(max(room_at - now, 1.0))
        raise ApiError(429, "rate_limit_error", message, {"retry-after": retry_after})

    def get(self, batch_id: str, *, transient_404: bool = False) -> Batch:
        """The batch, or a 404 ``ApiError`` (also while a transient-404 fault lasts)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and transient_404 and batch.not_found_left > 0:
                batch.not_found_left -= 1
                batch = None
            if batch is None:
                raise ApiError(404, "not_found_error", f"message batch {batch_id!r} not found")
            return batch

    def retrieve(self, batch_id: str, base_url: str) -> dict[str, Any]:
        """The batch's JSON now."""
        with self._lock:
            batch = self.get(batch_id, transient_404=True)
            return self._wire(batch, self.clock.now(), base_url)

    def cancel(self, batch_id: str, base_url: str) -> dict[str, Any]:
        """Start canceling; 400 if the batch has ended [unverified status code]."""
        with self._lock:
            batch = self.get(batch_id)
            now = self.clock.now()
            if batch.status(now) == "ended":
                raise ApiError(400, "invalid_request_error", f"batch {batch_id} has already ended")
            if batch.cancel_initiated_at is None:
                batch.cancel_initiated_at = now
                batch.cancel_ends_at = now + self.cancel_seconds
            return self._wire(batch, now, base_url, fresh=True)

    def delete(self, batch_id: str) -> dict[str, Any]:
        """Delete an ended batch; 400 while it is processing [unverified status code]."""
        with self._lock:
            batch = self.get(batch_id)
            if batch.status(self.clock.now()) != "ended":
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"batch {batch_id} is still processing; cancel it and wait for it to end",
                )
            del self._batches[batch_id]
            return {"id": batch_id, "type": "message_batch_deleted"}

    def ended(self, batch_id: str) -> Batch:
        """The batch for a results download: settled, or 400/404 [unverified codes]."""
        with self._lock:
            batch = self.get(batch_id, transient_404=True)
            now = self.clock.now()
            if batch.status(now) != "ended":
                raise ApiError(400, "invalid_request_error", f"batch {batch_id} has not ended")
            if now >= batch.created_at + RETENTION_SECONDS:
                raise ApiError(404, "not_found_error", f"results of {batch_id} were archived")
            self._settle(batch)
            return batch

    def page(
        self, limit: int, after_id: str | None, before_id: str | None, base_url: str
    ) -> dict[str, Any]:
        """One page of the newest-first list, as the SDK's cursor pagination expects."""
        with self._lock:
            now = self.clock.now()
            newest_first = sorted(self._batches.values(), key=lambda b: -b.seq)
            if after_id is not None:
                cursor = self._cursor(after_id)
                rest = [b for b in newest_first if b.seq < cursor]
                chosen, has_more = rest[:limit], len(rest) > limit
            elif before_id is not None:
                cursor = self._cursor(before_id)
                rest = [b for b in newest_first if b.seq > cursor]
                chosen, has_more = rest[-limit:], len(rest) > limit
            else:
                chosen, has_more = newest_first[:limit], len(newest_first) > limit
            data = [self._wire(b, now, base_url) for b in chosen]
            first_id = data[0]["id"] if data else None
            last_id = data[-1]["id"] if data else None
            return {"data": data, "has_more": has_more, "first_id": first_id, "last_id": last_id}

    def _cursor(self, batch_id: str) -> int:
        if batch_id not in self._seq_of:  # [unverified] the service's answer to a bad cursor
            raise ApiError(400, "invalid_request_error", f"unknown cursor id {batch_id!r}")
        return self._seq_of[batch_id]

    def submitted(self) -> list[SubmittedBatch]:
        """Every create so far, oldest first."""
        with self._lock:
            return list(self._submitted)

    def _wire(
        self, batch: Batch, now: float, base_url: str | None, fresh: bool = False
    ) -> dict[str, Any]:
        if fresh:  # the answer to a create or a cancel, even if the clock has passed the end
            status = "in_progress" if batch.cancel_initiated_at is None else "canceling"
        else:
            status = batch.status(now)
        ended = status == "ended"
        if ended:
            self._settle(batch)
        counts = batch.counts if ended and batch.counts else _processing(len(batch.requests))
        archived = batch.created_at + RETENTION_SECONDS
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": rfc3339(batch.created_at),
            "expires_at": rfc3339(batch.expires_at),
            "ended_at": rfc3339(batch.ends_at()) if ended else None,
            "cancel_initiated_at": _maybe_time(batch.cancel_initiated_at),
            "archived_at": rfc3339(archived) if now >= archived else None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results"
            if ended and base_url
            else None,
        }

    def _settle(self, batch: Batch) -> None:
        if batch.outcomes is None:
            batch.outcomes = settle(batch, self.seeded, self.cache, self.rules)
            batch.counts = batch.outcomes.counts()


def _processing(total: int) -> dict[str, int]:
    return {"processing": total, **dict.fromkeys(KINDS, 0)}


def _maybe_time(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def _has_breakpoint(params: dict[str, Any]) -> bool:
    if isinstance(params.get("cache_control"), dict):  # automatic caching
        return True
    system = params.get("system")
    blocks = [*(params.get("tools") or []), *(system if isinstance(system, list) else [])]
    for message in params.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            blocks.extend(content)
    return any(isinstance(b, dict) and b.get("cache_control") for b in blocks)


def settle(
    batch: Batch, seeded: Seeded, cache: PromptCache, rules: ModelRules | None = None
) -> Outcomes:
    """Decide every request's outcome (``rules``: the model catalog's); apply the cache
    in finish order."""
    n = len(batch.requests)
    outcomes = Outcomes(kinds=bytearray(n))
    finish = [batch.finish_time(seeded, i) for i in range(n)]
    cached: list[int] = []
    today = rules.today() if rules else None  # one date for the whole batch
    for i, request in enumerate(batch.requests):
        kind = _outcome(batch, seeded, request, finish[i], outcomes, i, rules, today)
        outcomes.kinds[i] = kind
        if kind == SUCCEEDED and _has_breakpoint(request["params"]):
            cached.append(i)
    for i in sorted(cached, key=finish.__getitem__):
        outcomes.cache[i] = cache.usage(batch.requests[i]["params"], at=finish[i])
    return outcomes


def _outcome(
    batch: Batch,
    seeded: Seeded,
    request: dict[str, Any],
    finish: float,
    outcomes: Outcomes,
    index: int,
    rules: ModelRules | None = None,
    today: _dt.date | None = None,
) -> int:
    if batch.cancel_initiated_at is not None and finish > batch.cancel_initiated_at:
        return CANCELED
    if finish > batch.expires_at:
        return EXPIRED
    problem = params_error(request["params"], batch.anthropic_version, in_batch=True)
    if problem:
        outcomes.errors[index] = ("invalid_request_error", problem)
        return ERRORED
    refused = rules.refusal(request["params"], batch.anthropic_version, today) if rules else None
    if refused is not None:  # the model catalog's rules: the same error as /v1/messages
        outcomes.errors[index] = (refused.error_type, refused.message)
        return ERRORED
    fault = request_fault(batch.faults, seeded, batch.id, request["custom_id"])
    if fault == "expired":
        return EXPIRED  # reported when the batch ends, not at 24 h [unverified shortcut]
    if fault is not None:
        outcomes.errors[index] = (fault, f"{fault} (emulated fault)")
        return ERRORED
    return SUCCEEDED
