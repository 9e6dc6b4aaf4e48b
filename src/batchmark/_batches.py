"""Submit, poll, collect, retry, resume: the one batch machine.

``BatchRunner`` drives the requests recorded in a ledger to an end. It serves the
candidate requests of a run and, later, judge requests alike: all it knows is the
ledger's ``requests`` table and a ``BatchBackend``.

Request states::

    pending ──intent──> submitting ──create returned──> submitted ──result──> done | failed
       ^                    │ (create lost: adopt the batch, or back to pending)  │
       └──────────── retryable error / expired / missing, attempts left ──────────┘

Nothing is ever sent twice by accident: before ``create`` the chunk is recorded as an
*intent*; right after ``create`` returns, the batch id is committed. A process killed
between the two leaves an open intent, which ``recover()`` settles by listing the
batches created since the intent and adopting the one that matches, or, when none
exists, returning the requests to ``pending``.

Creates run concurrently, up to ``max_in_flight`` at once: ``submit_available`` records
the intents of a round of chunks one by one in its own thread, sends their creates from
a thread pool (each worker streams its body from its own read-only ledger connection:
SQLite connections belong to one thread) and records each batch id in its own thread as
its create returns. A batch is matched to its intent by its number of requests (and
creation time), so the chunks of one round, and any intent still open, hold pairwise
distinct numbers of requests: after a crash, two open intents of one size could each
adopt the other's batch, since their creates raced. The packing's staggered request
caps (``_packing``) make full chunks differ; a chunk whose size is taken anyway waits
for the next round.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import anthropic
import orjson

from batchmark._backend import (
    BatchBackend,
    BatchInfo,
    BatchNotFound,
    ResultLine,
    ResultsStreamError,
)
from batchmark._gc import gc_paused
from batchmark._packing import API_MAX_BYTES, API_MAX_REQUESTS, ENTRY_OVERHEAD, BatchPacker
from batchmark._store import Ledger, ResponseCache

__all__ = ["BatchRunner", "BatchSettings", "Progress"]

# A batch we created may 404 for a moment (SDK issue #1432); after this long, a 404
# means the batch is gone (deleted, archived, or an emulator that restarted).
TRANSIENT_404_SECONDS = 60.0
# How far before an intent a matching batch's created_at may lie (clock skew).
ADOPT_SKEW_SECONDS = 300.0
# A batch created at most this long before its intent still counts as "after" it (the
# local and the server clock differ a little); older look-alikes are a last resort.
ADOPT_CLOCK_TOLERANCE = 1.0
FINAL_ERRORS = {"invalid_request_error", "request_too_large"}
MAX_CONSECUTIVE_FAILURES = 8
# Result lines written per ledger transaction: each commit costs a WAL sync (~20 ms), so
# larger chunks ingest faster; a crash loses at most one chunk's work (re-collected).
COLLECT_CHUNK = 10_000
_first = itemgetter(0)
# A batch's requests still 'submitted' whose success for the current attempt is written
# (an interrupted collect leaves them so until the batch's stream has been read whole).
_ANSWERED_IN_BATCH = """
SELECT q.custom_id FROM requests q JOIN responses r
  ON r.seq = q.seq AND r.attempt = q.attempts AND r.status = 'succeeded'
WHERE q.batch_id = ? AND q.state = 'submitted'
"""


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How requests become batches; validated against the API's limits by the config."""

    max_requests: int = API_MAX_REQUESTS
    max_bytes: int = API_MAX_BYTES
    max_in_flight: int = 4
    poll_interval: float = 5.0
    max_poll_interval: float = 60.0
    max_attempts: int = 3


@dataclass(slots=True)
class Progress:
    """A snapshot for progress displays: request states and each batch's status."""

    total: int
    states: dict[str, int]
    batches: list[dict[str, Any]] = field(default_factory=list)
    submitted_now: int = 0

    @property
    def ended(self) -> int:
        return self.states.get("done", 0) + self.states.get("failed", 0)


def _now() -> float:
    return time.time()


def crashpoint(name: str) -> None:
    """Die here with SIGKILL when ``BATCHMARK_CRASHPOINT`` names this point.

    The kill -9 tests use it to stop a real run at exact instants (between the intent
    and the create, between the create and its record, midway through collecting).
    ``name@N`` dies at the N-th time the point is reached (``after_create@2``: the
    second batch, e.g. the judges' one).
    """
    wanted = os.environ.get("BATCHMARK_CRASHPOINT")
    if not wanted or wanted.split("@")[0] != name:
        return
    _CRASH_HITS[name] = _CRASH_HITS.get(name, 0) + 1
    nth = int(wanted.split("@")[1]) if "@" in wanted else 1
    if _CRASH_HITS[name] >= nth:
        os.kill(os.getpid(), signal.SIGKILL)


_CRASH_HITS: dict[str, int] = {}


def _adoptable(candidates: list[BatchInfo], n_requests: int, at: float) -> BatchInfo | None:
    """The batch an intent recorded at local time ``at`` most plausibly created."""
    fits = [
        b
        for b in candidates
        if b.total == n_requests and b.created_at.timestamp() >= at - ADOPT_SKEW_SECONDS
    ]
    after = [b for b in fits if b.created_at.timestamp() >= at - ADOPT_CLOCK_TOLERANCE]
    if after:
        return min(after, key=lambda b: b.created_at)
    return max(fits, key=lambda b: b.created_at, default=None)  # closest before: skew


_CHUNK_ROWS = (
    "FROM requests q JOIN params p ON p.seq = q.seq "
    "WHERE q.intent_id = ? AND q.state = 'submitting' ORDER BY q.seq"
)


@dataclass(frozen=True, slots=True)
class _IntentRequests:
    """The requests of one intent as ``BatchBackend.create`` reads them: straight from
    the ledger, through ``db`` (a connection of the thread that sends the create), with
    a fresh cursor on every pass, so the body is never held in memory and a refused
    create can be sent again."""

    db: sqlite3.Connection
    intent_id: int

    def sizes(self) -> Iterator[tuple[str, int]]:
        return iter(
            self.db.execute(
                f"SELECT q.custom_id, length(p.params) {_CHUNK_ROWS}", (self.intent_id,)
            )
        )

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(
            self.db.execute(f"SELECT q.custom_id, p.params {_CHUNK_ROWS}", (self.intent_id,))
        )


# A submitted request as collect needs it: (seq, attempts).
_Expected = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Intent:
    id: int
    n_requests: int


class BatchRunner:
    """Drives a ledger's requests through a backend until each has ended."""

    def __init__(
        self,
        ledger: Ledger,
        backend: BatchBackend,
        settings: BatchSettings,
        cache: ResponseCache | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.settings = settings
        self.cache = cache
        self.on_progress = on_progress
        self.sleep = sleep
        self.submitted_now = 0
        self._creates = 0  # intents recorded in this pass: the next chunk's index

    # --- the loop ----------------------------------------------------------------------

    def run(self, *, submit_only: bool = False, deadline: float | None = None) -> bool:
        """Submit, poll and collect until every request ended; True when all have.

        ``submit_only`` returns once nothing is left to submit (``--detach``);
        ``deadline`` (a ``time.time()`` value) returns False when passed.
        """
        interval = self.settings.poll_interval
        failures = 0
        self._creates = 0  # a new pass: request caps start over (as ``estimate`` counts)
        # Until one pass has gone through, a connection failure means a wrong endpoint or
        # no network rather than a passing outage: give up at once (the SDK has retried).
        reached = False
        while True:
            try:
                # A create that failed and whose batch list failed too leaves an open
                # intent: settle it before anything else, or its requests would stay
                # 'submitting' (never sent, never ended) for the rest of the run.
                if not reached or self.ledger.open_intents():
                    self.recover()
                if not reached and self.canceled:
                    self.cancel_open_batches()  # e.g. a batch adopted just now
                changed = self.submit_available()
                if submit_only and not self._has_pending():
                    self._report()
                    return self._all_ended()
                changed |= self.poll()
                failures = 0
                reached = True
            except (
                anthropic.APIConnectionError,
                anthropic.APIStatusError,
                ResultsStreamError,
            ) as err:
                if (
                    isinstance(err, anthropic.APIStatusError)
                    and err.status_code < 500
                    and (err.status_code not in (404, 408, 409, 429))
                ):
                    raise
                failures += 1
                unreachable = not reached and isinstance(err, anthropic.APIConnectionError)
                if unreachable or failures >= MAX_CONSECUTIVE_FAILURES:
                    raise
                changed = False
            self._report()
            if self._all_ended():
                return True
            if deadline is not None and _now() >= deadline:
                return False
            interval = (
                self.settings.poll_interval
                if changed
                else min(interval * 1.5, self.settings.max_poll_interval)
            )
            self.sleep(interval)

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    def progress(self) -> Progress:
        return Progress(
            total=self.ledger.total_requests(),
            states=self.ledger.state_counts(),
            batches=self.ledger.batches(),
            submitted_now=self.submitted_now,
        )

    @property
    def canceled(self) -> bool:
        """Whether the run was canceled (``fail_pending`` marks the ledger)."""
        return self.ledger.get_meta("canceled") is not None

    def _all_ended(self) -> bool:
        states = self.ledger.state_counts()
        return all(s in ("done", "failed") for s, n in states.items() if n)

    def _has_pending(self) -> bool:
        return (
            self.ledger.db.execute(
                "SELECT 1 FROM requests WHERE state IN ('pending', 'submitting') LIMIT 1"
            ).fetchone()
            is not None
        )

    # --- submitting --------------------------------------------------------------------

    def submit_available(self) -> bool:
        """Submit chunks of pending requests while fewer than max_in_flight batches run.

        Each round records the intents of up to (max_in_flight - open batches) chunks,
        then sends their creates at once (see the module docstring)."""
        if self.canceled:  # a canceled run never sends again: what is left fails
            return self.fail_pending("the run was canceled before this request was submitted") > 0
        submitted = False
        while (slots := self.settings.max_in_flight - len(self.ledger.open_batches())) > 0:
            intents = self._prepare(slots)
            if not intents:
                break
            self._create_all(intents)
            submitted = True
        return submitted

    def _prepare(self, slots: int) -> list[_Intent]:
        """Record the intents of up to ``slots`` chunks to create at once.

        Their sizes are pairwise distinct and distinct from any intent still open, or
        ``recover()`` could not tell their batches apart. A chunk whose size is taken
        is left for the next round, where it comes first: deferring, rather than
        trimming it, keeps the chunks exactly as ``_packing`` (and ``estimate``) packs
        them.
        """
        taken = {i["n_requests"] for i in self.ledger.open_intents()}
        intents: list[_Intent] = []
        for _ in range(slots):
            seqs = self._next_chunk(self._creates)
            if not seqs or len(seqs) in taken:
                break
            taken.add(len(seqs))
            intents.append(_Intent(self._record_intent(seqs), len(seqs)))
            self._creates += 1
            crashpoint("before_create")
        return intents

    def _next_chunk(self, index: int) -> list[int]:
        """The seqs of the next pending requests (oldest first) that fit in the
        ``index``-th batch of this pass (its request cap depends on the index).

        Only ids and sizes are read here; the params are streamed from the ledger into the
        create body, so a 100,000-request chunk is never held in memory.
        """
        s = self.settings
        packer = BatchPacker(s.max_requests, s.max_bytes, s.max_in_flight, first=index)
        chunk: list[int] = []
        rows = self.ledger.db.execute(
            "SELECT q.seq, q.custom_id, length(p.params) "
            "FROM requests q JOIN params p ON p.seq = q.seq "
            "WHERE q.state = 'pending' ORDER BY q.seq"
        )
        too_large: list[tuple[int, int]] = []
        for seq, custom_id, params_size in rows:
            entry = ENTRY_OVERHEAD + len(custom_id) + params_size
            opens = packer.add(entry)
            if opens is None:
                too_large.append((seq, entry + 1))
            elif opens and chunk:
                break  # the next batch starts here
            else:
                chunk.append(seq)
        rows.close()
        for seq, item in too_large:
            self._fail_unsendable(seq, item, packer.max_bytes)
        return chunk

    def _fail_unsendable(self, seq: int, size: int, limit: int) -> None:
        data = {
            "error_type": "request_too_large",
            "error_message": f"request is {size} bytes; a batch may hold at most {limit}",
        }
        with self.ledger.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, 0, NULL, 'errored', ?)",
                (seq, orjson.dumps(data)),
            )
            db.execute("UPDATE requests SET state = 'failed' WHERE seq = ?", (seq,))

    def _record_intent(self, seqs: list[int]) -> int:
        with self.ledger.transaction() as db:
            cur = db.execute(
                "INSERT INTO intents (created_at, n_requests, status) VALUES (?, ?, 'open')",
                (_now(), len(seqs)),
            )
            intent_id = cur.lastrowid
            assert intent_id is not None
            db.executemany(
                "UPDATE requests SET state = 'submitting', intent_id = ?, "
                "attempts = attempts + 1 WHERE seq = ?",
                [(intent_id, s) for s in seqs],
            )
        return intent_id

    def _create(self, intent_id: int) -> BatchInfo:
        """Send one intent's create (in a worker thread, with its own ledger connection)."""
        db = self.ledger.reader()
        try:
            return self.backend.create(_IntentRequests(db, intent_id))
        finally:
            db.close()

    def _create_all(self, intents: list[_Intent]) -> None:
        """Send the intents' creates at once; record each batch as its create returns.

        A create refused with 400 made no batch: its intent is abandoned. After any
        other failure it may or may not have made one: once every create of the round
        has returned and the others are recorded, ``recover()`` settles it from the batch
        list. Then the first failure (in the intents' order) is raised.
        """
        errors: dict[int, Exception] = {}
        unsettled = False
        with ThreadPoolExecutor(len(intents), thread_name_prefix="batchmark-create") as pool:
            futures: dict[Future[BatchInfo], _Intent] = {
                pool.submit(self._create, intent.id): intent for intent in intents
            }
            for future in as_completed(futures):
                intent = futures[future]
                try:
                    info = future.result()
                except anthropic.BadRequestError as err:
                    # The API refused the envelope synchronously: no batch exists.
                    self._abandon_intent(intent.id)
                    errors[intent.id] = err
                    continue
                except (anthropic.APIConnectionError, anthropic.APIStatusError) as err:
                    unsettled = True  # the create may or may not have happened
                    errors[intent.id] = err
                    continue
                except Exception as err:  # left open: the next recover() settles it
                    errors[intent.id] = err
                    continue
                crashpoint("after_create")
                try:
                    self._record_batch(intent.id, info, adopted=False)
                except Exception as err:  # e.g. the ledger locked: recover() adopts it
                    unsettled = True
                    errors[intent.id] = err
                    continue
                self.submitted_now += intent.n_requests
        if unsettled:
            self.recover()
        if errors:
            raise errors[min(errors)]

    def _record_batch(self, intent_id: int | None, info: BatchInfo, *, adopted: bool) -> None:
        with self.ledger.transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, intent_id, created_at, n_requests, status, "
                "counts, adopted, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    intent_id,
                    info.created_at.isoformat(),
                    info.total,
                    info.status,
                    orjson.dumps(info.counts).decode(),
                    int(adopted),
                    _now(),
                ),
            )
            db.execute(
                "UPDATE intents SET status = 'created', batch_id = ? WHERE id = ?",
                (info.id, intent_id),
            )
            db.execute(
                "UPDATE requests SET state = 'submitted', batch_id = ? "
                "WHERE intent_id = ? AND state = 'submitting'",
                (info.id, intent_id),
            )

    def _abandon_intent(self, intent_id: int | None) -> None:
        with self.ledger.transaction() as db:
            db.execute("UPDATE intents SET status = 'abandoned' WHERE id = ?", (intent_id,))
            db.execute(
                "UPDATE requests SET state = 'pending', attempts = attempts - 1, "
                "intent_id = NULL WHERE intent_id = ? AND state = 'submitting'",
                (intent_id,),
            )

    def recover(self) -> None:
        """Settle open intents: adopt the batch a lost create made, or un-send the chunk."""
        intents = self.ledger.open_intents()
        if not intents:
            return
        since = min(i["created_at"] for i in intents) - ADOPT_SKEW_SECONDS
        known = self.ledger.known_batch_ids()
        candidates = [
            b
            for b in self.backend.list_recent(datetime.fromtimestamp(since, UTC))
            if b.id not in known
        ]
        # Newest intent first: each create was sent after its intent was committed, so
        # the batch it made is the first one of its size created at or after the intent.
        # A same-size batch created before the intent belongs to someone else (another
        # run on the account, an earlier intent) unless only clock skew explains it.
        for intent in sorted(intents, key=lambda i: i["created_at"], reverse=True):
            match = _adoptable(candidates, intent["n_requests"], intent["created_at"])
            if match is None:
                self._abandon_intent(intent["id"])
            else:
                candidates.remove(match)
                self._record_batch(intent["id"], match, adopted=True)

    # --- polling and collecting -------------------------------------------------------

    def poll(self) -> bool:
        """Check every open batch once; collect those that ended. True if any ended."""
        changed = False
        for batch in self.ledger.open_batches():
            try:
                info = self.backend.check(batch["batch_id"])
            except BatchNotFound:
                if _now() - batch["recorded_at"] > TRANSIENT_404_SECONDS:
                    self._lose_batch(batch["batch_id"])
                    changed = True
                continue
            self._update_batch(info)
            if info.status != "ended":
                continue
            if info.archived:  # past retention: its results are gone, retry its requests
                self._lose_batch(batch["batch_id"])
                changed = True
                continue
            try:
                self.collect(batch["batch_id"])
            except BatchNotFound:
                # The results 404 (SDK issue #1432 again, or deleted since the check):
                # like a 404 on the check, transient at first, then the batch is lost.
                if _now() - batch["recorded_at"] > TRANSIENT_404_SECONDS:
                    self._lose_batch(batch["batch_id"])
                continue
            changed = True
        return changed

    def _update_batch(self, info: BatchInfo) -> None:
        self.ledger.db.execute(
            "UPDATE batches SET status = ?, counts = ? WHERE batch_id = ?",
            (info.status, orjson.dumps(info.counts).decode(), info.id),
        )

    def cancel_open_batches(self) -> list[str]:
        """Ask the backend to cancel every batch not yet ended; their results still count."""
        canceled = []
        for batch in self.ledger.open_batches():
            if batch["status"] == "ended":
                continue
            try:
                info = self.backend.cancel(batch["batch_id"])
            except BatchNotFound:
                continue
            except anthropic.BadRequestError:
                continue  # ended meanwhile
            self._update_batch(info)
            canceled.append(info.id)
        return canceled

    def fail_pending(self, reason: str) -> int:
        """Mark every request not yet submitted as failed and the run as canceled.

        From then on the runner submits nothing: results that would be retried end as
        failures, and requests returned to the queue (an abandoned intent) fail too.
        """
        data = orjson.dumps({"error_type": "canceled", "error_message": reason})
        with self.ledger.transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('canceled', ?)", (reason,))
            # attempts + 1: a request retried once already keeps its attempt's response
            # (an errored attempt 1 is history, not to be overwritten by the cancel).
            db.execute(
                "INSERT OR REPLACE INTO responses "
                "SELECT seq, attempts + 1, NULL, 'canceled', ? FROM requests "
                "WHERE state = 'pending'",
                (data,),
            )
            failed = db.execute("UPDATE requests SET state = 'failed' WHERE state = 'pending'")
        return failed.rowcount

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
        expected = self._expected(batch_id)
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
        self._settle_missing(batch_id, expected)
        if self.cache is not None:
            self.cache.merge_staged()

    def _expected(self, batch_id: str) -> dict[str, _Expected]:
        """The batch's requests still ``submitted``: ``{custom_id: (seq, attempts)}`` (the
        result lines name a custom_id, the ledger keys by seq)."""
        rows = self.ledger.db.execute(
            "SELECT custom_id, seq, attempts FROM requests "
            "WHERE batch_id = ? AND state = 'submitted'",
            (batch_id,),
        )
        return {c: (s, a) for c, s, a in rows}

    def _next_state(
        self, status: str, error_type: str | None, attempts: int, canceled: bool = False
    ) -> str:
        if status == "succeeded":
            return "done"
        if status == "canceled" or (status == "errored" and error_type in FINAL_ERRORS):
            return "failed"
        if canceled:
            return "failed"  # retryable, but the run was canceled: nothing is sent again
        return "pending" if attempts < self.settings.max_attempts else "failed"

    def _apply(
        self, batch_id: str, lines: list[ResultLine], expected: dict[str, _Expected]
    ) -> None:
        if not lines:
            return
        responses = []
        updates = []
        canceled = self.canceled
        dumps = orjson.dumps
        pop = expected.pop
        for line in lines:
            seq, attempts = pop(line.custom_id)
            status = line.status
            if status == "succeeded":
                data = dumps(line.message or {})
            else:
                data = dumps({"error_type": line.error_type, "error_message": line.error_message})
                updates.append((self._next_state(status, line.error_type, attempts, canceled), seq))
            responses.append((seq, attempts, batch_id, status, data))
        # In seq order (the API returns results in any order): the rows then sit on disk in
        # roughly the order scoring reads them back, which halves that read.
        responses.sort(key=_first)
        with self.ledger.transaction() as db:
            (newest,) = db.execute("SELECT coalesce(max(rowid), 0) FROM responses").fetchone()
            db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", responses)
            if updates:
                db.executemany("UPDATE requests SET state = ? WHERE seq = ?", updates)
        if self.cache is not None and len(updates) < len(responses):  # some succeeded
            # After the ledger: a crash between leaves the chunk to be collected (and
            # staged) again on resume, or to be copied when its batch settles (see
            # _settle_unanswered), whether or not the batch is still there by then.
            crashpoint("before_cache_copy")
            self.cache.stage_answers_since(self.ledger.file, newest)
        crashpoint("mid_collect")

    def _settle_missing(self, batch_id: str, expected: dict[str, _Expected]) -> None:
        self._settle_unanswered(
            batch_id, expected, "missing", "no result line for this custom_id", "ended"
        )

    def _lose_batch(self, batch_id: str) -> None:
        """A batch that stays 404: its unsettled requests count an attempt and go back."""
        self._settle_unanswered(
            batch_id,
            self._expected(batch_id),
            "batch_not_found",
            f"batch {batch_id} is gone",
            "lost",
        )

    def _settle_unanswered(
        self,
        batch_id: str,
        expected: dict[str, _Expected],
        error_type: str,
        message: str,
        batch_status: str,
    ) -> None:
        """Requests of a batch that got no result: record why, retry or fail them.

        Requests whose success an interrupted collect already wrote are not among them,
        whatever ``expected`` says: that answer was paid for, so it is kept (and marked
        done with the rest of the batch's successes below), never asked again. Such answers
        are copied to the response cache once more: the interruption may have come between
        their chunk's ledger write and its staging.
        """
        kept = False
        if expected:
            for (custom_id,) in self.ledger.db.execute(_ANSWERED_IN_BATCH, (batch_id,)):
                kept |= expected.pop(custom_id, None) is not None
        if kept and self.cache is not None:
            self.cache.add_answers_of_batch(self.ledger.file, batch_id)
        data = orjson.dumps({"error_type": error_type, "error_message": message})
        canceled = self.canceled
        with self.ledger.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, 'missing', ?)",
                [(s, a, batch_id, data) for s, a in expected.values()],
            )
            db.executemany(
                "UPDATE requests SET state = ? WHERE seq = ?",
                [(self._next_state("missing", None, a, canceled), s) for s, a in expected.values()],
            )
            # What is still 'submitted' now is exactly what succeeded (see ``collect``).
            db.execute(
                "UPDATE requests SET state = 'done' WHERE batch_id = ? AND state = 'submitted'",
                (batch_id,),
            )
            db.execute(
                "UPDATE batches SET status = ?, collected = 1 WHERE batch_id = ?",
                (batch_status, batch_id),
            )
