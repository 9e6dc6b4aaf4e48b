"""The vocabulary of the ledger's state machine: request states, intent and batch
statuses, response statuses, and the one rule for a request's state after a result.

A request's state changes only through ``Ledger``'s methods (``_ledger``)::

    pending ──record_intent──> submitting ──record_batch──> submitted ──apply_results──> done
       ^  │                       │ abandon_intent            │ settle_unanswered      | failed
       │  │                       └──> pending                │
       │  └─ mark_waiting ──> waiting ── answer_from_cache ──> done
       │                        └─ settle_waiting ──> pending | failed (lost)
       └────────── a retryable error / expired / missing, attempts left ─────────┘

The values are the strings stored in the ledger (``StrEnum``: a member equals its string).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ENDED",
    "FINAL_ERRORS",
    "BatchStatus",
    "IntentStatus",
    "RequestState",
    "ResponseStatus",
    "WAIT_TEXT",
    "WaitKind",
    "next_state",
]


class RequestState(StrEnum):
    """Where a request is (``requests.state``)."""

    PENDING = "pending"  # to be sent
    WAITING = "waiting"  # another run has the same content in flight (``_waiting``)
    SUBMITTING = "submitting"  # in an intent whose create may be under way
    SUBMITTED = "submitted"  # in a batch
    DONE = "done"  # answered (by its batch or from the cache)
    FAILED = "failed"  # ended without an answer: its last response says why


ENDED = frozenset({RequestState.DONE, RequestState.FAILED})


class IntentStatus(StrEnum):
    """Where a create is (``intents.status``)."""

    OPEN = "open"  # recorded, the create not sent yet
    SENDING = "sending"  # the create may have reached the API
    CREATED = "created"  # its batch is recorded
    ABANDONED = "abandoned"  # no batch: its requests went back to pending


class BatchStatus(StrEnum):
    """``batches.status``: the API's processing status, or how the batch ended for us."""

    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"
    ARCHIVED = "archived"  # ended past retention: its results are gone
    LOST = "lost"  # 404 and missing from the batch list for ``lost_after``
    LOST_RESENT = "lost, resent"  # lost, its requests re-queued (``--resend-lost``)
    FOREIGN = "foreign"  # adopted, then proved another's by its results


class ResponseStatus(StrEnum):
    """``responses.status``: a result line's type, or why a request got none."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELED = "canceled"
    MISSING = "missing"  # its batch ended without a line for it (or was archived)
    LOST = "lost"  # its batch was lost: not sent again by itself


class WaitKind(StrEnum):
    """Why a run holds requests back after a create was refused with 429
    (``Ledger.note_queue_wait``)."""

    QUEUE = "queue"  # the API's queue of batch requests is full
    RATE_LIMIT = "rate_limit"  # a per-minute rate limit held after the retries


WAIT_TEXT = {
    WaitKind.QUEUE: "waiting for queue room",
    WaitKind.RATE_LIMIT: "rate-limited: waiting to submit",
}
"""What progress lines and ``status`` say while a run waits."""


# Errors that sending the same request again cannot fix.
FINAL_ERRORS = frozenset({"invalid_request_error", "request_too_large"})


def next_state(
    status: str, error_type: str | None, attempts: int, max_attempts: int, canceled: bool
) -> RequestState:
    """A submitted request's state after its attempt ``attempts`` got ``status``."""
    if status == ResponseStatus.SUCCEEDED:
        return RequestState.DONE
    if status == ResponseStatus.CANCELED or (
        status == ResponseStatus.ERRORED and error_type in FINAL_ERRORS
    ):
        return RequestState.FAILED
    if canceled:
        return RequestState.FAILED  # retryable, but the run was canceled: nothing is re-sent
    return RequestState.PENDING if attempts < max_attempts else RequestState.FAILED
