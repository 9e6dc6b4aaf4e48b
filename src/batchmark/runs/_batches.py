"""Submit, poll, collect, retry, resume: the one batch machine.

``BatchRunner`` drives the requests recorded in a ledger to an end. It serves the
candidate requests of a run and, later, judge requests alike: all it knows is a
``Ledger`` (whose methods are the requests' state machine: ``_ledger``) and a
``BatchBackend``. It is orchestration: the loop, submitting and polling live here; it
writes nothing to the ledger but through the ledger's methods, and leans on

- ``_collect``: an ended batch's results into the ledger (``Collector``);
- ``_recovery``: lost creates, 404s and lost batches, adoption (``Recovery``, ``Lookout``);
- ``_waiting``: requests another run has in flight (``Waiting``).

Nothing is ever sent twice by accident: before ``create`` the chunk is recorded as an
*intent*; right after ``create`` returns, the batch id is committed; a process killed
between the two leaves an open intent for ``recover()`` (see ``_recovery``).

Every chunk is submitted at once by default (``max_in_flight`` unset; else up to that
many batches in flight): ``submit_available`` records the intents of a round of chunks
one by one in its own thread, sends their creates from a pool of ``CREATE_THREADS``
threads (each worker streams its body from its own read-only ledger connection:
SQLite connections belong to one thread) and records each batch id in its own thread as
its create returns. A batch is matched to its intent by its number of requests (and
creation time), so the chunks of one round, and any intent still open, hold pairwise
distinct numbers of requests: after a crash, two open intents of one size could each
adopt the other's batch, since their creates raced. The packing's staggered request
caps (``_packing``) make full chunks differ; a chunk whose size is taken anyway waits
for the next round.

The API's queue of batch requests is limited (per organization, by tier): a create it
refuses with 429 made no batch, so its intent is abandoned at once and its requests go
back to ``pending``, never matched by ``recover()``. The run then waits for room: it
polls and collects its own batches as usual, sends no create before the ``retry-after``
the API gave, and tries again at a later pass (``Ledger.note_queue_wait`` tells
``status`` meanwhile). A batch refused twice while the queue holds nothing at all (none
of ours, none listed) can never fit: ``QueueTooSmall``. The number of our requests the
queue held when it refused (``_queue_limit``) is then kept as the bound: later rounds
submit only chunks that fit under it (one chunk whenever none of ours is queued), so a
full queue is not asked again and again; a create that succeeds above it raises it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anthropic

from batchmark._errors import BatchNotFound, QueueTooSmall, ResultsStreamError
from batchmark.config._schema import BatchConfig
from batchmark.runs._backend import (
    BatchBackend,
    BatchInfo,
    QueueFull,
    api_message,
    retry_after,
)
from batchmark.runs._claims import Claims
from batchmark.runs._collect import COLLECT_CHUNK, Collector
from batchmark.runs._crashpoints import crashpoint
from batchmark.runs._ledger import Ledger
from batchmark.runs._packing import API_MAX_REQUESTS, ENTRY_OVERHEAD, BatchPacker
from batchmark.runs._recovery import Lookout, Recovery
from batchmark.runs._states import WAIT_TEXT, BatchStatus, RequestState, WaitKind
from batchmark.runs._store import ResponseCache
from batchmark.runs._waiting import Waiting

# COLLECT_CHUNK (``_collect``) is re-exported: the kill -9 tests read it here.
__all__ = ["COLLECT_CHUNK", "BatchRunner", "Progress"]

MAX_CONSECUTIVE_FAILURES = 8
# How far back the batch list is read to see what holds the queue: a batch ends (or
# expires) at most 24 hours after its creation; an hour more for clock skew.
QUEUE_LOOKBACK_SECONDS = 25 * 3600.0
# Refusals in a row, with nothing in the queue, after which a batch can never fit.
EMPTY_QUEUE_REFUSALS = 2
# Creates sent at once, at most: each streams its body (up to 256 MB) from the ledger.
CREATE_THREADS = 8


@dataclass(slots=True)
class Progress:
    """A snapshot for progress displays: request states and each batch's status."""

    total: int
    states: dict[str, int]
    batches: list[dict[str, Any]] = field(default_factory=list)
    submitted_now: int = 0
    waiting: str | None = None
    """Why requests are held back, for people: "waiting for queue room" while the API's
    queue of batch requests is full (``_states.WAIT_TEXT``); None when nothing is."""

    @property
    def ended(self) -> int:
        return self.states.get(RequestState.DONE, 0) + self.states.get(RequestState.FAILED, 0)


def _now() -> float:
    return time.time()


def _api_retry_after(err: Exception) -> float | None:
    return retry_after(err) if isinstance(err, anthropic.APIStatusError) else None


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
        batch: BatchConfig,
        cache: ResponseCache | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        claims: Claims | None = None,
        resend_lost: bool = False,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.batch = batch  # the config's batch: section (see BatchConfig)
        self.cache = cache
        self.on_progress = on_progress
        self.sleep = sleep
        # What other runs under the same results root hold: their batches (never adopted)
        # and the request contents they have in flight (waited for, not sent again).
        self.claims = claims
        self.resend_lost = resend_lost
        self.submitted_now = 0
        self._creates = 0  # intents recorded in this pass: the next chunk's index
        self.lookout = Lookout(backend, batch.lost_after_seconds)
        self.recovery = Recovery(ledger, backend, self.lookout, claims, resend_lost)
        self.collector = Collector(ledger, backend, batch, cache, claims)
        self.waiting = Waiting(ledger, backend, self.recovery, cache, claims, resend_lost)
        # Unverified adopted batches left alone by ``cancel_open_batches``.
        self.not_canceled: list[str] = []
        # Waiting for room after a refused create: no create before ``_retry_at``
        # (``time.time()``); refusals in a row while the queue held nothing.
        wait = ledger.queue_wait()
        self._waiting = wait is not None
        self._retry_at = 0.0
        self._empty_queue_refusals = 0
        # Our requests the queue held when it last refused a create (None: never refused):
        # a round submits only what fits under it (see the module docstring).
        self._queue_limit: int | None = None

    # --- the loop ----------------------------------------------------------------------

    def run(self, *, submit_only: bool = False, deadline: float | None = None) -> bool:
        """Submit, poll and collect until every request ended; True when all have.

        ``submit_only`` returns once nothing is left to submit (``--detach``);
        ``deadline`` (a ``time.time()`` value) returns False when passed.
        """
        interval = self.batch.poll_interval
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
                if not reached and self.ledger.canceled:
                    self.cancel_open_batches()  # e.g. a batch adopted just now
                changed = self.check_waiting()
                changed |= self.submit_available()
                if submit_only and not self.ledger.has_unsent():
                    self._report()
                    return self.ledger.all_ended()
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
            if self.ledger.all_ended():
                return True
            if deadline is not None and _now() >= deadline:
                return False
            interval = (
                self.batch.poll_interval
                if changed
                else min(interval * 1.5, self.batch.max_poll_interval)
            )
            self.sleep(interval)

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    def progress(self) -> Progress:
        wait = self.ledger.queue_wait() if self._waiting else None
        return Progress(
            total=self.ledger.total_requests(),
            states=self.ledger.state_counts(),
            batches=self.ledger.batches(),
            submitted_now=self.submitted_now,
            waiting=WAIT_TEXT.get(wait["kind"]) if wait else None,
        )

    # --- the steps of a pass (each also callable alone) ----------------------------------

    def recover(self) -> None:
        """Settle open intents (``Recovery.recover``)."""
        self.recovery.recover()

    def relook_lost(self) -> None:
        """Look again for batches written off as lost (``Recovery.relook_lost``)."""
        self.recovery.relook_lost()

    def check_waiting(self) -> bool:
        """Settle requests waiting for another run (``Waiting.check``); True if any."""
        return self.waiting.check()

    def collect(self, batch_id: str) -> None:
        """Stream an ended batch's results into the ledger (``Collector.collect``)."""
        self.collector.collect(batch_id)

    # --- submitting --------------------------------------------------------------------

    def submit_available(self) -> bool:
        """Submit chunks of pending requests: all of them, or while fewer than
        ``max_in_flight`` batches run, and under the queue limit learned from refusals.

        Each round records the intents of its chunks, then sends their creates at once
        (see the module docstring)."""
        if self.ledger.canceled:  # a canceled run never sends again: what is left fails
            return self.fail_pending("the run was canceled before this request was submitted") > 0
        if self._waiting and not self.ledger.has_unsent():
            self._end_wait()
        if _now() < self._retry_at:
            return False  # the queue (or a rate limit) has no room yet: poll meanwhile
        submitted = False
        while (slots := self._slots()) > 0:
            intents = self._prepare(slots)
            if not intents:
                break
            created = self._create_all(intents)
            submitted = submitted or created > 0
            if created < len(intents):
                break  # refused: wait for room
        return submitted

    def _slots(self) -> int:
        """How many batches this round may create: ``max_in_flight`` less the open ones,
        or, without a cap, as many as there are chunks."""
        cap = self.batch.max_in_flight
        return API_MAX_REQUESTS if cap is None else cap - len(self.ledger.open_batches())

    def _queued(self) -> int:
        """Our requests in the API's queue now: those of our unfinished batches."""
        unfinished = (BatchStatus.IN_PROGRESS, BatchStatus.CANCELING)
        return sum(b["n_requests"] for b in self.ledger.open_batches() if b["status"] in unfinished)

    def _prepare(self, slots: int) -> list[_Intent]:
        """Record the intents of up to ``slots`` chunks to create at once.

        Their sizes are pairwise distinct and distinct from any intent still open, or
        ``recover()`` could not tell their batches apart. A chunk whose size is taken
        is left for the next round, where it comes first: deferring, rather than
        trimming it, keeps the chunks exactly as ``_packing`` (and ``estimate``) packs
        them.
        """
        taken = {i["n_requests"] for i in self.ledger.open_intents()}
        queued = self._queued() if self._queue_limit is not None else 0
        intents: list[_Intent] = []
        while len(intents) < slots:
            chunk = self._next_chunk(self._creates)
            seqs, token = self.waiting.claim(chunk)
            if chunk and not seqs:
                continue  # all of it waits for other runs: the next chunk
            if not seqs or len(seqs) in taken:
                break
            if self._queue_limit is not None and queued and queued + len(seqs) > self._queue_limit:
                break  # the queue refused at this level: wait for ours to end first
            queued += len(seqs)
            taken.add(len(seqs))
            intents.append(_Intent(self.ledger.record_intent(seqs), len(seqs), token))
            self._creates += 1
            crashpoint("before_create")
        return intents

    def _next_chunk(self, index: int) -> list[int]:
        """The seqs of the next pending requests (oldest first) that fit in the
        ``index``-th batch of this pass (its request cap depends on the index).

        Only ids and sizes are read here; the params are streamed from the ledger into the
        create body, so a 100,000-request chunk is never held in memory.
        """
        packer = BatchPacker.for_config(self.batch, first=index)
        chunk: list[int] = []
        rows = self.ledger.pending_sizes()
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
        message = f"request is {size} bytes; a batch may hold at most {limit}"
        self.ledger.fail_unsendable(seq, message)

    def _create(self, intent_id: int) -> BatchInfo:
        """Send one intent's create (in a worker thread, with its own ledger connection)."""
        with self.ledger.intent_requests(intent_id) as requests:
            return self.backend.create(requests)

    def _create_all(self, intents: list[_Intent]) -> int:
        """Send the intents' creates at once; record each batch as its create returns.
        Returns how many batches were made.

        A create refused with 400 made no batch: its intent is abandoned. So did one
        refused with 429 (the queue is full, or a rate limit held after the backend's
        retries): its intent is abandoned and the run waits for room (``_wait_for_room``).
        After any other failure it may or may not have made one: once every create of the
        round has returned and the others are recorded, ``recover()`` settles it from the
        batch list. Then the first failure (in the intents' order) is raised.
        """
        errors: dict[int, Exception] = {}
        refused: list[tuple[_Intent, Exception]] = []
        created = 0
        unsettled = False
        # From here on a create may reach the API. An intent still 'open' after a crash
        # never sent its create: ``recover`` returns it to the queue without looking for
        # a batch, so no look-alike batch of another run can be taken for it.
        self.ledger.mark_sending([i.id for i in intents])
        threads = min(len(intents), CREATE_THREADS)
        with ThreadPoolExecutor(threads, thread_name_prefix="batchmark-create") as pool:
            futures: dict[Future[BatchInfo], _Intent] = {
                pool.submit(self._create, intent.id): intent for intent in intents
            }
            for future in as_completed(futures):
                intent = futures[future]
                try:
                    info = future.result()
                except (QueueFull, anthropic.RateLimitError) as err:
                    # Refused before anything was made: its requests wait for room.
                    crashpoint("create_refused")
                    self.ledger.abandon_intent(intent.id)
                    refused.append((intent, err))
                    continue
                except anthropic.BadRequestError as err:
                    # The API refused the envelope synchronously: no batch exists.
                    self.ledger.abandon_intent(intent.id)
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
                    self.recovery.record_batch(intent.id, info, adopted=False, token=intent.token)
                except Exception as err:  # e.g. the ledger locked: recover() adopts it
                    unsettled = True
                    errors[intent.id] = err
                    continue
                self.submitted_now += intent.n_requests
                created += 1
        if unsettled:
            self.recover()
        self._learn_queue_limit(refused, created)
        if refused:
            self._wait_for_room(refused)
        elif created and self._waiting:
            self._end_wait()
        if errors:
            raise errors[min(errors)]
        return created

    # --- waiting for room in the queue --------------------------------------------------

    def _learn_queue_limit(self, refused: list[tuple[_Intent, Exception]], created: int) -> None:
        """After a round: a queue-full refusal while ours held requests sets the bound to
        what ours held; a create that went through above the bound raises it."""
        if not refused and (self._queue_limit is None or not created):
            return
        queued = self._queued()
        if any(isinstance(err, QueueFull) for _, err in refused):
            if queued:  # else others hold the queue: nothing of ours to go by
                self._queue_limit = queued
        elif self._queue_limit is not None and queued > self._queue_limit:
            self._queue_limit = queued

    def _wait_for_room(self, refused: list[tuple[_Intent, Exception]]) -> None:
        """Creates were refused with 429 (their intents abandoned): no create is sent
        before the ``retry-after`` they gave (else the first poll interval), and the wait
        is noted for ``status``. A queue that refuses a batch while it holds nothing can
        never take it: ``QueueTooSmall`` once that happened ``EMPTY_QUEUE_REFUSALS`` times
        in a row."""
        waits = [
            err.retry_after if isinstance(err, QueueFull) else _api_retry_after(err)
            for _, err in refused
        ]
        wait = max((w for w in waits if w is not None), default=self.batch.poll_interval)
        self._retry_at = _now() + wait
        queue = [(i, e) for i, e in refused if isinstance(e, QueueFull)]
        intent, err = min(queue or refused, key=lambda pair: pair[0].n_requests)
        message = (
            err.message
            if isinstance(err, QueueFull)
            else api_message(err)
            if isinstance(err, anthropic.APIStatusError)
            else str(err)
        )
        kind = WaitKind.QUEUE if queue else WaitKind.RATE_LIMIT
        self.ledger.note_queue_wait(kind, intent.n_requests, message, self._retry_at)
        self._waiting = True
        crashpoint("queue_wait")
        if queue:
            self._check_fits(intent.n_requests, message)

    def _check_fits(self, n_requests: int, message: str) -> None:
        """Raise ``QueueTooSmall`` when the queue keeps refusing a batch of ``n_requests``
        while it holds nothing: none of our batches is unfinished and the batch list
        shows none of anyone's (read only then)."""
        unfinished = (BatchStatus.IN_PROGRESS, BatchStatus.CANCELING)
        if any(b["status"] in unfinished for b in self.ledger.open_batches()):
            self._empty_queue_refusals = 0  # ours end in time, and make room
            return
        since = datetime.fromtimestamp(_now() - QUEUE_LOOKBACK_SECONDS, UTC)
        if any(b.status != BatchStatus.ENDED for b in self.backend.list_recent(since)):
            self._empty_queue_refusals = 0  # another run's (or user's) batches hold it
            return
        self._empty_queue_refusals += 1
        if self._empty_queue_refusals < EMPTY_QUEUE_REFUSALS:
            return
        raise QueueTooSmall(
            f"the API refused a batch of {n_requests:,} requests {EMPTY_QUEUE_REFUSALS} "
            "times while its queue of batch requests held nothing (no batch of this run or "
            f"any other was in progress): the batch is larger than the whole queue. The "
            f"API said: {message}",
            hint="set batch.max_requests below your organization's queue limit and run the "
            "config again (answers already collected come from the cache); nothing was "
            "sent twice",
        )

    def _end_wait(self) -> None:
        self.ledger.end_queue_wait()
        self._waiting = False
        self._empty_queue_refusals = 0

    # --- polling -----------------------------------------------------------------------

    def poll(self) -> bool:
        """Check every open batch once; collect those that ended. True if any ended."""
        changed = False
        for batch in self.ledger.open_batches():
            batch_id = batch["batch_id"]
            try:
                info = self.backend.check(batch_id)
            except BatchNotFound:
                info = self.lookout.listed(batch)
                if info is None:  # 404, and not in the list either
                    if self.lookout.lost(batch_id):
                        self.lookout.seen(batch_id)  # settled: its count ends
                        self.collector.lose(batch_id)
                        changed = True
                    continue
            self.lookout.seen(batch_id)  # it is there
            self.ledger.update_batch(info)
            if info.status != BatchStatus.ENDED:
                continue
            if info.archived:  # past retention: its results are gone, retry its requests
                self.collector.lose(batch_id, archived=True)
                changed = True
                continue
            try:
                if batch["adopted"] == 1 and not self.recovery.verify(batch_id):
                    self.recovery.disown(batch_id)
                    changed = True
                    continue
                self.collector.collect(batch_id)
            except BatchNotFound:
                # The results 404 (SDK issue #1432 again, or deleted since the check) of
                # a batch that was there a moment ago: try again at the next poll, where a
                # batch deleted meanwhile is missing from the list too.
                continue
            changed = True
        return changed

    def cancel_open_batches(self) -> list[str]:
        """Ask the backend to cancel every batch not yet ended; their results still count.

        A batch adopted after a lost create and not yet verified as ours (its results are
        read only once it ends) is left alone: it may be another run's. Such batches are
        listed in ``not_canceled``.
        """
        canceled = []
        self.not_canceled = []
        for batch in self.ledger.open_batches():
            if batch["status"] == BatchStatus.ENDED:
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
            self.ledger.update_batch(info)
            canceled.append(info.id)
        return canceled

    def fail_pending(self, reason: str) -> int:
        """Mark every request not yet submitted as failed and the run as canceled.

        From then on the runner submits nothing: results that would be retried end as
        failures, and requests returned to the queue (an abandoned intent) fail too.
        """
        failed, keys = self.ledger.fail_pending(reason)
        if self.claims is not None:
            self.claims.release(keys)
        return failed
