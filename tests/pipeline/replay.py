"""A batch backend that replays canned answers: ``BatchBackend`` in a few lines, no HTTP.

Not a mock of the SDK (which the end-to-end tests run against the emulator): a small
implementation of the runner's own backend interface (``runs._backend.BatchBackend``),
so ``BatchRunner`` can be driven through exact sequences of answers, lost creates and
vanished batches, over a real ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from batchmark._errors import BatchNotFound
from batchmark.runs._backend import BatchInfo, BatchRequests, ResultLine


def ok(text: str = "yes") -> ResultLine:
    return ResultLine("", "succeeded", message={"text": text})


def errored(error_type: str) -> ResultLine:
    return ResultLine("", "errored", error_type=error_type, error_message=error_type)


EXPIRED = ResultLine("", "expired")
NO_LINE = None  # the batch ends without a line for the request


@dataclass
class _Batch:
    info: BatchInfo
    lines: list[ResultLine]
    vanished: bool = False


class ReplayBackend:
    """Answers each request's n-th submission with ``answers[custom_id][n - 1]`` (a
    result line, or ``NO_LINE``); a request with no answer left succeeds. Batches end at
    their first check.

    ``lose_create_answers``: that many creates make their batch, then fail as if the
    connection dropped before the answer came back. ``vanish``: batches created then
    answer 404 and are missing from the batch list, as if deleted.
    """

    def __init__(
        self, answers: dict[str, list[ResultLine | None]], *, lose_create_answers: int = 0
    ) -> None:
        self.answers = answers
        self.lose_create_answers = lose_create_answers
        self.vanish = False
        self.sent: Counter[str] = Counter()  # times each custom_id was in a created batch
        self.batches: dict[str, _Batch] = {}

    # --- BatchBackend ------------------------------------------------------------------

    def create(self, requests: BatchRequests) -> BatchInfo:
        custom_ids = [custom_id for custom_id, _params in requests]
        lines = []
        for custom_id in custom_ids:
            self.sent[custom_id] += 1
            script = self.answers.get(custom_id, [])
            n = self.sent[custom_id]
            line = script[n - 1] if n <= len(script) else ok()
            if line is not None:
                lines.append(ResultLine(custom_id, *_fields(line)))
        batch_id = f"msgbatch_replay{len(self.batches) + 1}"
        info = BatchInfo(batch_id, "in_progress", {"processing": len(custom_ids)}, _now())
        self.batches[batch_id] = _Batch(info, lines, vanished=self.vanish)
        if self.lose_create_answers > 0:
            self.lose_create_answers -= 1
            raise ConnectionResetError("the create's answer was lost")
        return info

    def check(self, batch_id: str) -> BatchInfo:
        batch = self._batch(batch_id)
        counts = Counter(line.status for line in batch.lines)
        counts["expired"] += batch.info.total - len(batch.lines)
        batch.info = BatchInfo(batch_id, "ended", dict(counts), batch.info.created_at)
        return batch.info

    def fetch(self, batch_id: str) -> Iterator[ResultLine]:
        return iter(self._batch(batch_id).lines)

    def list_recent(self, since: datetime) -> Iterator[BatchInfo]:
        for batch in self.batches.values():
            if not batch.vanished and batch.info.created_at >= since:
                yield batch.info

    def cancel(self, batch_id: str) -> BatchInfo:
        return self.check(batch_id)

    # --- what was sent -----------------------------------------------------------------

    @property
    def creates(self) -> list[int]:
        """The number of requests of each batch created, in order."""
        return [batch.info.total for batch in self.batches.values()]

    def _batch(self, batch_id: str) -> _Batch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.vanished:
            raise BatchNotFound(batch_id)
        return batch


def _fields(line: ResultLine) -> tuple:
    return line.status, line.message, line.error_type, line.error_message


def _now() -> datetime:
    return datetime.now(UTC)
