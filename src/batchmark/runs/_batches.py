"""Submit, poll, collect, retry, resume: the one batch machine.

``BatchRunner`` drives the requests recorded in a ledger to an end. It serves the
candidate requests of a run and, later, judge requests alike: all it knows is the
ledger's ``requests`` table and a ``BatchBackend``.

Request states::

    pending ──intent──> submitting ──create returned──> submitted ──result──> done | failed
       ^  │                 │ (create lost: adopt the batch, or back to pending)  │
       │  └─> waiting ──────┼── another run's answer, from the cache ──> done    │
       │         (another run has the same content in flight: ``check_waiting``)  │
       └──────────── retryable error / expired / missing, attempts left ──────────┘

Across runs (``_claims``): a chunk's cache keys are claimed before its intent; keys
another run holds wait instead of being sent. ``recover`` adopts only batches no other run
recorded, and an adopted batch (``adopted = 1``) is verified by its results before
anything of it is written or it is canceled (``adopted = 2``, or ``foreign`` and undone).
A batch answering 404 is never written off while the batch list shows it; after
``lost_after`` seconds of 404s and absence its requests end ``lost`` and are not re-sent
(``relook_lost`` looks again on every drive; ``resend_lost`` re-queues them).

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

import fcntl
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import anthropic
import orjson

from batchmark._errors import BatchmarkError, BatchNotFound, ResultsStreamError
from batchmark.runs._backend import BatchBackend, BatchInfo, ResultLine
from batchmark.runs._claims import Claim, Claims, owner_alive, owner_sending
from batchmark.runs._gc import gc_paused
from batchmark.runs._packing import API_MAX_BYTES, API_MAX_REQUESTS, ENTRY_OVERHEAD, BatchPacker
from batchmark.runs._store import Ledger, ResponseCache

__all__ = ["BatchRunner", "BatchSettings", "Progress"]

# A batch we created may 404 for a while (SDK issue #1432). It is never written off while
# the batch list still shows it; after ``BatchSettings.lost_after`` seconds of 404s and
# absence from the list, its requests are reported lost, and not sent again by themselves.
# How far before an intent a matching batch's created_at may lie (clock skew).
ADOPT_SKEW_SECONDS = 300.0
# A batch created at most this long before its intent still counts as "after" it (the
# local and the server clock differ a little); older look-alikes are a last resort.
ADOPT_CLOCK_TOLERANCE = 1.0
# Results stay downloadable this long after a batch's creation.
RETENTION_SECONDS = 29 * 86400.0
FINAL_ERRORS = {"invalid_request_error", "request_too_large"}
MAX_CONSECUTIVE_FAILURES = 8
# Result lines written per ledger transaction: each commit costs a WAL sync (~20 ms), so
# larger chunks ingest faster; a crash loses at most one chunk's work (re-collected).
COLLECT_CHUNK = 10_000
_first = itemgetter(0)
# Requests of a batch that ended ``lost`` (their current attempt's response says so).
_LOST_OF_BATCH = (
    "SELECT q.seq FROM requests q JOIN responses r "
    "ON r.seq = q.seq AND r.attempt = q.attempts AND r.status = 'lost' "
    "WHERE q.batch_id = ? AND q.state = 'failed'"
)
# Requests that ended ``lost`` while waiting for another run's batch (no batch of ours).
_LOST_ELSEWHERE = (
    "SELECT q.seq FROM requests q JOIN responses r "
    "ON r.seq = q.seq AND r.attempt = q.attempts AND r.status = 'lost' "
    "WHERE r.batch_id IS NULL"
)
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
    lost_after: float = 900.0


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
    # Created before the intent (beyond the clock tolerance): another run's, never ours.
    return None


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
    token: float | None = None  # its requests' claim (``Claims.claim``), if any


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
        claims: Claims | None = None,
        resend_lost: bool = False,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.settings = settings
        self.cache = cache
        self.on_progress = on_progress
        self.sleep = sleep
        # What other runs under the same results root hold: their batches (never adopted)
        # and the request contents they have in flight (waited for, not sent again).
        # Waiting needs the cache (the answers arrive there), so no cache, no waiting.
        self.claims = claims
        self.resend_lost = resend_lost
        self.submitted_now = 0
        self._creates = 0  # intents recorded in this pass: the next chunk's index
        # Batches answering 404 now: local time of the first 404 in a row (per process:
        # a resume starts the count again, the conservative side).
        self._not_found_since: dict[str, float] = {}
        # Unverified adopted batches left alone by ``cancel_open_batches``.
        self.not_canceled: list[str] = []

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
                if not reached:
                    self.relook_lost()
                if not reached or self.ledger.open_intents():
                    self.recover()
                if not reached and self.canceled:
                    self.cancel_open_batches()  # e.g. a batch adopted just now
                changed = self.check_waiting()
                changed |= self.submit_available()
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

    # --- requests another run has in flight ---------------------------------------------

    def _claim(self, seqs: list[int]) -> tuple[list[int], float | None]:
        """Claim the chunk's request contents; returns the seqs to send now.

        A request whose cache key another run has in flight (under the same results root
        and endpoint) goes to ``waiting``: its answer is taken once that run collects it
        (``check_waiting``). A key this run wins is looked up in the cache once more: the
        answer may have arrived since the request was written (another run collected it,
        then let go of it; owners merge answers before they release claims).
        """
        if self.claims is None or self.cache is None or not seqs:
            return seqs, None  # no cache: nothing to wait for (``--no-cache`` pays again)
        keys = self._keys(seqs)
        held, token = self.claims.claim(
            ((keys[q][0], keys[q][1]) for q in seqs), take_lost=self.resend_lost
        )
        won = [q for q in seqs if keys[q][0] not in held]
        hits = self.cache.get_many([keys[q][0] for q in won])
        waiting = [q for q in seqs if keys[q][0] in held]
        if waiting:
            with self.ledger.transaction() as db:
                db.executemany(
                    "UPDATE requests SET state = 'waiting' WHERE seq = ? AND state = 'pending'",
                    [(q,) for q in waiting],
                )
        if hits:
            cached = [(q, keys[q][0], keys[q][2]) for q in won if keys[q][0] in hits]
            self._take_cached(cached, hits)
            self.claims.release(list(hits))
        return [q for q in won if keys[q][0] not in hits], token

    def _keys(self, seqs: list[int]) -> dict[int, tuple[str, str, int]]:
        """``{seq: (cache_key, custom_id, attempts)}`` of ascending ``seqs`` (a chunk),
        read as one range of the requests table (seq is its row id), not key by key."""
        wanted = set(seqs)
        rows = self.ledger.db.execute(
            "SELECT seq, cache_key, custom_id, attempts FROM requests WHERE seq BETWEEN ? AND ?",
            (min(wanted), max(wanted)),
        )
        return {seq: (key, cid, tried) for seq, key, cid, tried in rows if seq in wanted}

    def _take_cached(
        self, items: list[tuple[int, str, int]], hits: dict[str, dict[str, Any]]
    ) -> None:
        """Requests ``(seq, cache_key, attempts)`` answered from the cache: done, ``cached``.

        A request tried before gets an attempt of its own (the earlier attempt's error
        stays history); one never tried gets attempt 0, like any cache hit."""
        rows = [
            (seq, tried + 1 if tried else 0, orjson.dumps({**hits[key], "cached": True}))
            for seq, key, tried in items
        ]
        with self.ledger.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, NULL, 'succeeded', ?)", rows
            )
            db.executemany(
                "UPDATE requests SET state = 'done', attempts = ? WHERE seq = ?",
                [(a, q) for q, a, _ in rows],
            )

    def check_waiting(self) -> bool:
        """Settle requests waiting for another run's answer; True if any settled.

        In this order, so that a claim released right after its answer was cached is
        never taken for a loss: who holds the keys now, then the cache. A cached answer
        makes the request done (``cached``); a key nobody holds any more, or held by a
        run that stopped before sending it, goes back to the queue; a key in the batch
        of a run that stopped (``--detach``, killed) is read from that batch here; a key
        whose batch the other run reported lost ends ``lost`` here too (never re-sent by
        itself); a run that stopped in the middle of a create is settled first
        (``settle_stopped``), as its own resume would.
        """
        if self.claims is None or self.cache is None:
            return False
        rows = self.ledger.db.execute(
            "SELECT seq, cache_key, attempts FROM requests WHERE state = 'waiting'"
        ).fetchall()
        if not rows:
            return False
        keys = [k for _, k, _ in rows]
        holders = self.claims.holders(keys)
        hits = self.cache.get_many(keys)
        cached: list[tuple[int, str, int]] = []
        back: list[int] = []
        lost: list[tuple[int, int, str]] = []
        harvest: dict[str, tuple[Claim, dict[str, str]]] = {}  # batch id -> its claims
        stopped: set[str] = set()
        alive: dict[str, bool] = {}
        shared = self.claims.shared_batches
        for seq, key, attempts in rows:
            if key in hits:
                cached.append((seq, key, attempts))
                continue
            claim = holders.get(key)
            if claim is None:
                back.append(seq)
                continue
            if claim.lost:
                if self.resend_lost or not Path(claim.owner).is_dir():
                    back.append(seq)  # ``_claim`` takes it over and sends it
                else:
                    lost.append((seq, attempts, claim.owner))
                continue
            if claim.owner not in alive:
                alive[claim.owner] = owner_alive(claim.owner)
            if alive[claim.owner]:
                continue
            if claim.batch_id is not None and shared:
                harvest.setdefault(claim.batch_id, (claim, {}))[1][claim.custom_id] = key
            elif shared and owner_sending(claim.owner):
                stopped.add(claim.owner)
            else:
                back.append(seq)  # stopped before sending: ``_claim`` takes it over
        if cached:
            self._take_cached(cached, hits)
        with self.ledger.transaction() as db:
            db.executemany(
                "UPDATE requests SET state = 'pending' WHERE seq = ?", [(q,) for q in back]
            )
            for seq, attempts, owner in lost:
                data = orjson.dumps(
                    {
                        "error_type": "batch_lost",
                        "error_message": f"the run {owner} had this request in flight and "
                        "lost its batch (404, missing from the batch list); not sent again "
                        "here either: `batchmark resume RUN --resend-lost` sends it",
                    }
                )
                db.execute(  # an attempt of its own: an earlier attempt's error stays
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, NULL, 'lost', ?)",
                    (seq, attempts + 1, data),
                )
                db.execute(
                    "UPDATE requests SET state = 'failed', attempts = ? WHERE seq = ?",
                    (attempts + 1, seq),
                )
        for owner in stopped:
            self.settle_stopped(owner)
        for batch_id, (claim, wanted) in harvest.items():
            self._harvest(batch_id, claim, wanted)
        return bool(cached or back or lost)

    def settle_stopped(self, owner: str) -> None:
        """Settle the open intents of the stopped run ``owner`` as its resume would: adopt
        the batch a create of it made, or return the chunk to its queue. Under its lock,
        so that its own resume cannot run meanwhile; skipped while that one runs."""
        folder = Path(owner)
        try:
            fh = open(folder / ".lock", "rb")  # noqa: SIM115  (flock needs no write access)
        except OSError:
            return
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # its resume runs now
            try:
                ledger = Ledger(folder / "ledger.sqlite")
            except (sqlite3.Error, OSError, BatchmarkError):
                return  # cannot be settled from here: its claims keep holding
            claims = Claims(self.claims.path, owner) if self.claims is not None else None
            try:
                BatchRunner(ledger, self.backend, self.settings, claims=claims).recover()
            finally:
                if claims is not None:
                    claims.close()
                ledger.close()
        finally:
            fh.close()

    def _harvest(self, batch_id: str, claim: Claim, wanted: dict[str, str]) -> None:
        """Read the answers of a stopped run's batch into the cache (once it ended).

        ``wanted`` maps that run's custom_ids to cache keys. A batch the stopped run did
        not record as its own (adopted, unverified) is first checked against that run's
        ledger, like ``_verify``. Answers that did not succeed (or never came) drop the
        stopped run's claims, so the keys are sent again here.
        """
        assert self.claims is not None and self.cache is not None
        try:
            info = self.backend.check(batch_id)
        except BatchNotFound:
            listed = self._listed_id(batch_id, claim.claimed_at - ADOPT_SKEW_SECONDS)
            if listed is None and self._lost(batch_id):
                self.claims.drop_foreign(batch_id, list(wanted.values()))
            return
        self._not_found_since.pop(batch_id, None)
        if info.status != "ended":
            return
        expected = None
        if batch_id not in self.claims.owned_by(claim.owner):
            expected = _custom_ids_in(Path(claim.owner) / "ledger.sqlite", batch_id)
            if expected is None:
                return  # its ledger cannot be read now: trust nothing, drop nothing
        answers: list[tuple[str, bytes]] = []
        try:
            if not info.archived:
                lines = self.backend.fetch(batch_id)
                try:
                    for line in lines:
                        if expected is not None and line.custom_id not in expected:
                            answers = []  # not the stopped run's batch: trust none of it
                            break
                        key = wanted.get(line.custom_id)
                        if key is not None and line.status == "succeeded":
                            answers.append((key, orjson.dumps(line.message or {})))
                finally:
                    close = getattr(lines, "close", None)
                    if close is not None:
                        close()
        except (BatchNotFound, ResultsStreamError):
            return  # deleted since the check, or cut off: the next look decides
        self.cache.add(answers)
        answered = {k for k, _ in answers}
        self.claims.drop_foreign(batch_id, [k for k in wanted.values() if k not in answered])

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
        while len(intents) < slots:
            chunk = self._next_chunk(self._creates)
            seqs, token = self._claim(chunk)
            if chunk and not seqs:
                continue  # all of it waits for other runs: the next chunk
            if not seqs or len(seqs) in taken:
                break
            taken.add(len(seqs))
            intents.append(_Intent(self._record_intent(seqs), len(seqs), token))
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
        # From here on a create may reach the API. An intent still 'open' after a crash
        # never sent its create: ``recover`` returns it to the queue without looking for
        # a batch, so no look-alike batch of another run can be taken for it.
        self._mark_sending([i.id for i in intents])
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
                    self._record_batch(intent.id, info, adopted=False, token=intent.token)
                except Exception as err:  # e.g. the ledger locked: recover() adopts it
                    unsettled = True
                    errors[intent.id] = err
                    continue
                self.submitted_now += intent.n_requests
        if unsettled:
            self.recover()
        if errors:
            raise errors[min(errors)]

    def _mark_sending(self, intent_ids: list[int]) -> None:
        with self.ledger.transaction() as db:
            db.executemany(
                "UPDATE intents SET status = 'sending' WHERE id = ?", [(i,) for i in intent_ids]
            )

    def _record_batch(
        self,
        intent_id: int | None,
        info: BatchInfo,
        *,
        adopted: bool,
        token: float | None = None,
    ) -> None:
        """The intent's create made batch ``info`` (its create returned, or ``recover``
        adopted it: then ``adopted`` is 1, unverified, until its results prove it ours)."""
        with self.ledger.transaction() as db:
            _retire_id(db, info.id)
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
        if self.claims is not None:
            self.claims.record_batch(info.id, verified=not adopted)
            if token is not None:  # claimed together in this process: one statement
                self.claims.set_batch_of(token, info.id)
            else:  # adopted after a restart: key by key
                keys = self.ledger.db.execute(
                    "SELECT cache_key FROM requests WHERE batch_id = ?", (info.id,)
                )
                self.claims.set_batch([k for (k,) in keys], info.id)

    def _abandon_intent(self, intent_id: int | None) -> None:
        with self.ledger.transaction() as db:
            db.execute("UPDATE intents SET status = 'abandoned' WHERE id = ?", (intent_id,))
            db.execute(
                "UPDATE requests SET state = 'pending', attempts = attempts - 1, "
                "intent_id = NULL WHERE intent_id = ? AND state = 'submitting'",
                (intent_id,),
            )

    def recover(self) -> None:
        """Settle open intents: adopt the batch a lost create made, or un-send the chunk.

        An intent whose create was never sent (still ``open``) goes back to the queue at
        once; only one whose create may have reached the API (``sending``) is matched
        against the batch list.
        """
        intents = []
        for intent in self.ledger.open_intents():
            if intent["status"] == "open":
                self._abandon_intent(intent["id"])
            else:
                intents.append(intent)
        if not intents:
            return
        if self.claims is not None:
            # A stopped run's create may have made a batch nobody recorded: settle it
            # first, so that batch is recorded as that run's, never matched for ours.
            for owner in self.claims.stopped_sending_owners():
                self.settle_stopped(owner)
        since = min(i["created_at"] for i in intents) - ADOPT_SKEW_SECONDS
        known = self.ledger.known_batch_ids()
        if self.claims is not None:  # another run's batch is never ours
            known |= self.claims.owned_by_others()
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
            batch_id = batch["batch_id"]
            try:
                info = self.backend.check(batch_id)
            except BatchNotFound:
                info = self._listed(batch)
                if info is None:  # 404, and not in the list either
                    if self._lost(batch_id):
                        self._lose_batch(batch_id)
                        changed = True
                    continue
            self._not_found_since.pop(batch_id, None)  # it is there
            self._update_batch(info)
            if info.status != "ended":
                continue
            if info.archived:  # past retention: its results are gone, retry its requests
                self._lose_batch(batch_id, archived=True)
                changed = True
                continue
            try:
                if batch["adopted"] == 1 and not self._verify(batch_id):
                    self._disown(batch_id)
                    changed = True
                    continue
                self.collect(batch_id)
            except BatchNotFound:
                # The results 404 (SDK issue #1432 again, or deleted since the check) of
                # a batch that was there a moment ago: try again at the next poll, where a
                # batch deleted meanwhile is missing from the list too.
                continue
            changed = True
        return changed

    def _listed(self, batch: dict[str, Any]) -> BatchInfo | None:
        """The batch as the batch list shows it, or None: a 404 on retrieve is not the
        end of a batch the list still holds."""
        created = datetime.fromisoformat(batch["created_at"]).timestamp()
        return self._listed_id(batch["batch_id"], created - ADOPT_SKEW_SECONDS)

    def _listed_id(self, batch_id: str, since: float | None = None) -> BatchInfo | None:
        """Batch ``batch_id`` as the list shows it (created after ``since``, else within
        the results' 29 days of retention), or None."""
        if since is None:
            since = _now() - RETENTION_SECONDS
        for info in self.backend.list_recent(datetime.fromtimestamp(since, UTC)):
            if info.id == batch_id:
                return info
        return None

    def _lost(self, batch_id: str) -> bool:
        """Whether a batch that answers 404 and is missing from the batch list has been
        so for ``lost_after`` seconds now (counted from the first such answer in this
        process). A batch the list shows is never lost, however long retrieve says 404:
        it exists, it may answer, and it is billed."""
        now = _now()
        first = self._not_found_since.setdefault(batch_id, now)
        return now - first >= self.settings.lost_after

    def _verify(self, batch_id: str) -> bool:
        """Whether an adopted batch is ours: every result line names a request the ledger
        put in it (read before anything of it is trusted). Verified batches are recorded
        as ours in the shared registry."""
        expected = {
            c
            for (c,) in self.ledger.db.execute(
                "SELECT custom_id FROM requests WHERE batch_id = ?", (batch_id,)
            )
        }
        seen = 0
        lines = self.backend.fetch(batch_id)
        try:
            for line in lines:
                if line.custom_id not in expected:
                    return False
                seen += 1
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        if not seen:
            return False
        self.ledger.db.execute("UPDATE batches SET adopted = 2 WHERE batch_id = ?", (batch_id,))
        if self.claims is not None:
            self.claims.record_batch(batch_id)
        return True

    def _disown(self, batch_id: str) -> None:
        """Undo a wrong adoption: the batch is another's (its results name requests that
        are not ours). Nothing of it was written; its intent opens again, so ``recover``
        looks for the right batch, or returns the requests to the queue."""
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE batches SET status = 'foreign', collected = 1 WHERE batch_id = ?",
                (batch_id,),
            )
            db.execute(
                "UPDATE intents SET status = 'sending', batch_id = NULL WHERE batch_id = ?",
                (batch_id,),
            )
            db.execute(
                "UPDATE requests SET state = 'submitting', batch_id = NULL "
                "WHERE batch_id = ? AND state = 'submitted'",
                (batch_id,),
            )

    def relook_lost(self) -> None:
        """Look again for batches written off as lost (at the start of every drive).

        One that answers now is collected like any other batch: its requests were never
        sent again. With ``resend_lost``, the requests of one still not found go back to
        the queue: the user has said the batch is gone.
        """
        for batch in self.ledger.lost_batches():
            batch_id = batch["batch_id"]
            try:
                info: BatchInfo | None = self.backend.check(batch_id)
            except BatchNotFound:
                info = self._listed(batch)
            if info is None and not self.resend_lost:
                continue
            with self.ledger.transaction() as db:
                seqs = [(q,) for (q,) in db.execute(_LOST_OF_BATCH, (batch_id,))]
                if info is not None:  # it exists after all: collect it as usual
                    db.executemany("DELETE FROM responses WHERE seq = ? AND status = 'lost'", seqs)
                    db.executemany("UPDATE requests SET state = 'submitted' WHERE seq = ?", seqs)
                    db.execute(
                        "UPDATE batches SET status = ?, collected = 0 WHERE batch_id = ?",
                        (info.status, batch_id),
                    )
                else:
                    db.executemany("UPDATE requests SET state = 'pending' WHERE seq = ?", seqs)
                    db.execute(
                        "UPDATE batches SET status = 'lost, resent' WHERE batch_id = ?",
                        (batch_id,),
                    )
            if info is not None and self.claims is not None:  # ours again, in flight
                keys = self.ledger.db.execute(
                    "SELECT cache_key FROM requests WHERE batch_id = ?", (batch_id,)
                )
                self.claims.set_batch([k for (k,) in keys], batch_id)
        if self.resend_lost:  # requests that waited for a batch another run lost
            with self.ledger.transaction() as db:
                db.execute(
                    "UPDATE requests SET state = 'pending' WHERE state = 'failed' "
                    f"AND seq IN ({_LOST_ELSEWHERE})"
                )

    def _update_batch(self, info: BatchInfo) -> None:
        self.ledger.db.execute(
            "UPDATE batches SET status = ?, counts = ? WHERE batch_id = ?",
            (info.status, orjson.dumps(info.counts).decode(), info.id),
        )

    def cancel_open_batches(self) -> list[str]:
        """Ask the backend to cancel every batch not yet ended; their results still count.

        A batch adopted after a lost create and not yet verified as ours (its results are
        read only once it ends) is left alone: it may be another run's. Such batches are
        listed in ``not_canceled``.
        """
        canceled = []
        self.not_canceled = []
        for batch in self.ledger.open_batches():
            if batch["status"] == "ended":
                continue
            if batch["adopted"] == 1:
                self.not_canceled.append(batch["batch_id"])
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
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT cache_key FROM requests WHERE state IN ('pending', 'waiting')"
                )
            ]
            db.execute(
                "INSERT OR REPLACE INTO responses "
                "SELECT seq, attempts + 1, NULL, 'canceled', ? FROM requests "
                "WHERE state IN ('pending', 'waiting')",
                (data,),
            )
            failed = db.execute(
                "UPDATE requests SET state = 'failed' WHERE state IN ('pending', 'waiting')"
            )
        if self.claims is not None:
            self.claims.release(keys)
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
        if self.claims is not None:  # after the merge: a waiting run finds the answers
            self.claims.release_batch(batch_id)

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

    def _lose_batch(self, batch_id: str, *, archived: bool = False) -> None:
        """A batch whose results cannot be had: settle its unanswered requests.

        Archived (past the 29 days of retention): the results are gone for certain, so
        the requests are retried like any missing answer. Lost (404 on retrieve and
        absent from the list for ``lost_after``): the batch may still exist where we
        cannot see it and be billed, so its requests end ``lost`` and are sent again
        only on ``resume --resend-lost``; a later resume looks for the batch again.
        """
        self._not_found_since.pop(batch_id, None)
        if archived:
            message = f"batch {batch_id} is archived: its results are gone"
            self._settle_unanswered(
                batch_id, self._expected(batch_id), "batch_archived", message, "archived"
            )
        else:
            message = (
                f"batch {batch_id} answered 404 and was missing from the batch list for "
                f"{self.settings.lost_after:g} s; not sent again (it may still run and be "
                "billed): `batchmark resume RUN --resend-lost` sends it again"
            )
            self._settle_unanswered(
                batch_id, self._expected(batch_id), "batch_lost", message, "lost", lost=True
            )
        if self.cache is not None:
            self.cache.merge_staged()
        if self.claims is not None:
            if archived:
                self.claims.release_batch(batch_id)
            else:  # other runs must not send what may still run here either
                self.claims.mark_lost(batch_id)

    def _settle_unanswered(
        self,
        batch_id: str,
        expected: dict[str, _Expected],
        error_type: str,
        message: str,
        batch_status: str,
        *,
        lost: bool = False,
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
        status = "lost" if lost else "missing"
        with self.ledger.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                [(s, a, batch_id, status, data) for s, a in expected.values()],
            )
            db.executemany(
                "UPDATE requests SET state = ? WHERE seq = ?",
                [
                    ("failed" if lost else self._next_state(status, None, a, canceled), s)
                    for s, a in expected.values()
                ],
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


def _retire_id(db: sqlite3.Connection, batch_id: str) -> None:
    """Make room for a batch id the ledger already holds (inside the caller's transaction).

    Ids are unique on a real service, but an emulator restarted with the same seed hands
    out the ids of its earlier life again. The older batch is gone from that service (it
    restarted), so its rows keep their history under ``<id>~<n>`` and the new batch takes
    the id: nothing is re-sent, nothing is overwritten.
    """
    if db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone() is None:
        return
    (n,) = db.execute(
        "SELECT count(*) FROM batches WHERE batch_id LIKE ? ESCAPE '\\'",
        (batch_id.replace("_", "\\_") + "~%",),
    ).fetchone()
    old = f"{batch_id}~{n + 1}"
    db.execute("UPDATE batches SET batch_id = ? WHERE batch_id = ?", (old, batch_id))
    db.execute("UPDATE intents SET batch_id = ? WHERE batch_id = ?", (old, batch_id))
    db.execute("UPDATE requests SET batch_id = ? WHERE batch_id = ?", (old, batch_id))
    db.execute("UPDATE responses SET batch_id = ? WHERE batch_id = ?", (old, batch_id))


def _custom_ids_in(ledger_file: Path, batch_id: str) -> set[str] | None:
    """The custom_ids another run's ledger put in ``batch_id`` (read-only; None when it
    cannot be read)."""
    try:
        db = sqlite3.connect(ledger_file.as_uri() + "?mode=ro", uri=True, timeout=30.0)
        try:
            rows = db.execute("SELECT custom_id FROM requests WHERE batch_id = ?", (batch_id,))
            return {c for (c,) in rows}
        finally:
            db.close()
    except sqlite3.Error:
        return None
