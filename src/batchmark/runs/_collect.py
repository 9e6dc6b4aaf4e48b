"""Collecting: an ended batch's results into the ledger (and the response cache), and the
settling of a batch whose results cannot be had.

Results are streamed (``BatchBackend.fetch``) and written ``COLLECT_CHUNK`` lines per
ledger transaction (``Ledger.apply_results``); then the batch is settled at once
(``Ledger.settle_unanswered``): requests without a line are retried or fail, the
successes become ``done``. Each chunk's successes are staged for the response cache
right after its ledger write, and merged once per batch, before the batch's claims are
released, so a run waiting for one of its answers finds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchmark.runs._backend import BatchBackend, ResultLine
from batchmark.runs._claims import Claims
from batchmark.runs._crashpoints import crashpoint
from batchmark.runs._gc import gc_paused
from batchmark.runs._ledger import Ledger
from batchmark.runs._ledger_reads import Expected
from batchmark.runs._states import BatchStatus, ResponseStatus
from batchmark.runs._store import ResponseCache

if TYPE_CHECKING:
    from batchmark.config._schema import BatchConfig

__all__ = ["COLLECT_CHUNK", "Collector"]

# Result lines written per ledger transaction: each commit costs a WAL sync (~20 ms), so
# larger chunks ingest faster; a crash loses at most one chunk's work (re-collected).
COLLECT_CHUNK = 5_000


class Collector:
    """Brings a batch's results into the ledger, or settles a batch that has none."""

    def __init__(
        self,
        ledger: Ledger,
        backend: BatchBackend,
        batch: BatchConfig,
        cache: ResponseCache | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.batch = batch
        self.cache = cache
        self.claims = claims

    def collect(self, batch_id: str) -> None:
        """Stream an ended batch's results into the ledger, then reconcile missing ids.

        Responses are written in ``COLLECT_CHUNK``-line transactions; the requests that
        succeeded stay ``submitted`` until the whole stream has been read, then move to
        ``done`` in one set-based update (a per-row update costs more than the rest of
        ingestion together). Requests that did not succeed (rare) change state with their
        chunk, so that only succeeded ones are left ``submitted`` at the end.

        Idempotent: a stream cut off midway (or a process killed midway) is simply
        collected again; responses already written are replaced by the same data.
        """
        expected = self.ledger.submitted_of_batch(batch_id)
        lines = self.backend.fetch(batch_id)
        buffer: list[ResultLine] = []
        try:
            with gc_paused():
                for line in lines:
                    if line.custom_id not in expected:
                        continue  # settled already, or not ours
                    buffer.append(line)
                    if len(buffer) >= COLLECT_CHUNK:
                        self._apply(batch_id, buffer, expected)
                        buffer = []
                self._apply(batch_id, buffer, expected)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        self._settle(
            batch_id,
            expected,
            ResponseStatus.MISSING,
            "missing",
            "no result line for this custom_id",
            BatchStatus.ENDED,
        )
        if self.cache is not None:
            self.cache.merge_staged()
        if self.claims is not None:  # after the merge: a waiting run finds the answers
            self.claims.release_batch(batch_id)

    def _apply(self, batch_id: str, lines: list[ResultLine], expected: dict[str, Expected]) -> None:
        if not lines:
            return
        newest, succeeded = self.ledger.apply_results(
            batch_id, lines, expected, self.batch.max_attempts
        )
        if self.cache is not None and succeeded:
            # After the ledger: a crash between leaves the chunk to be collected (and
            # staged) again on resume, or to be copied when its batch settles (see
            # _settle), whether or not the batch is still there by then.
            crashpoint("before_cache_copy")
            self.cache.stage_answers_since(self.ledger.file, newest)
        crashpoint("mid_collect")

    def lose(self, batch_id: str, *, archived: bool = False) -> None:
        """A batch whose results cannot be had: settle its unanswered requests.

        Archived (past the 29 days of retention): the results are gone for certain, so
        the requests are retried like any missing answer. Lost (404 on retrieve and
        absent from the list for ``lost_after``): the batch may still exist where we
        cannot see it and be billed, so its requests end ``lost`` and are sent again
        only on ``resume --resend-lost``; a later resume looks for the batch again.
        """
        expected = self.ledger.submitted_of_batch(batch_id)
        if archived:
            message = f"batch {batch_id} is archived: its results are gone"
            self._settle(
                batch_id,
                expected,
                ResponseStatus.MISSING,
                "batch_archived",
                message,
                BatchStatus.ARCHIVED,
            )
        else:
            message = (
                f"batch {batch_id} answered 404 and was missing from the batch list for "
                f"{self.batch.lost_after_seconds:g} s; not sent again (it may still run and be "
                "billed): `batchmark resume RUN --resend-lost` sends it again"
            )
            self._settle(
                batch_id, expected, ResponseStatus.LOST, "batch_lost", message, BatchStatus.LOST
            )
        if self.cache is not None:
            self.cache.merge_staged()
        if self.claims is not None:
            if archived:
                self.claims.release_batch(batch_id)
            else:  # other runs must not send what may still run here either
                self.claims.mark_lost(batch_id)

    def _settle(
        self,
        batch_id: str,
        expected: dict[str, Expected],
        status: ResponseStatus,
        error_type: str,
        message: str,
        batch_status: BatchStatus,
    ) -> None:
        """Requests of a batch that got no result: record why, retry or fail them.

        Requests whose success an interrupted collect already wrote are not among them,
        whatever ``expected`` says: that answer was paid for, so it is kept (and marked
        done with the rest of the batch's successes), never asked again. Such answers are
        copied to the response cache once more: the interruption may have come between
        their chunk's ledger write and its staging.
        """
        kept = False
        if expected:
            for custom_id in self.ledger.answered_in_batch(batch_id):
                kept |= expected.pop(custom_id, None) is not None
        if kept and self.cache is not None:
            self.cache.add_answers_of_batch(self.ledger.file, batch_id)
        self.ledger.settle_unanswered(
            batch_id,
            expected.values(),
            status=status,
            error_type=error_type,
            message=message,
            batch_status=batch_status,
            max_attempts=self.batch.max_attempts,
        )
