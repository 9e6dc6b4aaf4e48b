"""The ledger: one run's requests, intents, batches, responses and scores, and the one
place that changes them.

The ledger is a SQLite file in WAL mode (``_schema`` holds its tables). It owns its state
machine (``_states``): every change of a request's state is one of ``Ledger``'s methods
below, each one transaction, so a process killed at any instant leaves a consistent
ledger; the code that drives batches (``_batches``, ``_collect``, ``_recovery``,
``_waiting``) calls them and writes no SQL of its own. Reads are ``LedgerReads``'
(``_ledger_reads``). The hot paths (``insert_requests``, ``apply_results``) write a
chunk of rows per statement (``executemany``) in one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchmark.runs._blobs import sent_size
from batchmark.runs._ledger_reads import Expected, LedgerReads
from batchmark.runs._schema import ledger_migrations
from batchmark.runs._sqlite import connect_store, store_errors
from batchmark.runs._states import BatchStatus, RequestState, ResponseStatus, next_state

if TYPE_CHECKING:
    from batchmark.runs._backend import BatchInfo, ResultLine

__all__ = ["Ledger"]

# Plain strings of the states the hot paths bind per row (a str subclass binds slower).
_PENDING, _DONE = RequestState.PENDING.value, RequestState.DONE.value
_SUCCEEDED = ResponseStatus.SUCCEEDED.value
_first = itemgetter(0)


def _error(error_type: str | None, message: str | None) -> bytes:
    return orjson.dumps({"error_type": error_type, "error_message": message})


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


class Ledger(LedgerReads):
    """The run's SQLite ledger. One writer: the process running or resuming the run."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (or create) the ledger; ``readonly`` for a reader that never writes (a
        ledger missing a migration is still migrated first). A damaged file, a full disk,
        a folder that cannot be written or a ledger of another version is a ``StoreError``
        naming the file and what to do."""
        self.path = path
        with store_errors(path):
            if path.exists() and path.stat().st_size == 0:  # a new ledger has no file yet
                raise sqlite3.DatabaseError("the file is empty")
            self.db = connect_store(path, readonly=readonly)
            try:
                if readonly:
                    ledger_migrations.check(self.db, path)
                    if ledger_migrations.pending(self.db):
                        self.db.close()
                        self.db, readonly = connect_store(path), False
                if not readonly:
                    ledger_migrations.apply(self.db, path)
            except BaseException:
                self.db.close()
                raise
            # The absolute path of the file opened (whatever the working directory
            # becomes): for other connections to it (``reader``, the cache's ATTACH).
            self.file: str = next(
                str(file)
                for _, name, file in self.db.execute("PRAGMA database_list")
                if name == "main"
            )

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- new requests -------------------------------------------------------------------

    def next_seq(self) -> int:
        """The seq the next request written gets (grid order continues after the last)."""
        return self.db.execute("SELECT coalesce(max(seq), -1) + 1 FROM requests").fetchone()[0]

    def insert_requests(
        self,
        requests: Sequence[Any],
        first_seq: int,
        hits: dict[str, dict[str, Any]],
        *,
        kind: str = "candidate",
    ) -> None:
        """Write ``requests`` (grid ``Request``s or ``JudgeRequest``s) with seqs from
        ``first_seq``, in one transaction: ``pending``, or ``done`` with a response of
        attempt 0 when ``hits`` (cache key -> stored message) holds its answer.

        A custom_id already in the ledger raises ``sqlite3.IntegrityError`` and writes
        nothing of the chunk.
        """
        rows: list[tuple[Any, ...]] = []
        params: list[tuple[int, bytes, int | None]] = []
        responses: list[tuple[Any, ...]] = []
        dumps = orjson.dumps
        seq = first_seq
        for r in requests:
            hit = hits.get(r.cache_key)
            rows.append(
                (
                    r.custom_id,
                    seq,
                    r.variant,
                    r.model_key,
                    r.model,
                    r.row_id,
                    r.epoch,
                    r.cache_key,
                    _DONE if hit else _PENDING,
                    kind,
                    getattr(r, "parent_id", None),
                    getattr(r, "scorer", None),
                )
            )
            stored = dumps(r.params)
            params.append((seq, stored, sent_size(stored)))
            if hit:
                data = dumps({**hit, "cached": True})
                responses.append((seq, 0, None, _SUCCEEDED, data))
            seq += 1
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO requests (custom_id, seq, variant, model_key, model, row_id, "
                "epoch, cache_key, state, kind, parent_id, scorer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany("INSERT INTO params (seq, params, sent_size) VALUES (?, ?, ?)", params)
            db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?)", responses)

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Keep an image's or PDF's base64 text once, by the sha256 of its bytes (its own
        transaction: committed before any request that references it is written)."""
        self.db.execute("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (sha256, data))

    # --- before a create ----------------------------------------------------------------

    def mark_waiting(self, seqs: Iterable[int]) -> None:
        """``pending`` -> ``waiting``: another run has these contents in flight."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE requests SET state = 'waiting' WHERE seq = ? AND state = 'pending'",
                [(q,) for q in seqs],
            )

    def answer_from_cache(
        self, items: Iterable[tuple[int, str, int]], hits: dict[str, dict[str, Any]]
    ) -> None:
        """Requests ``(seq, cache_key, attempts)`` answered from the cache (``hits``):
        ``done``, their response marked ``cached``.

        A request tried before gets an attempt of its own (the earlier attempt's error
        stays history); one never tried gets attempt 0, like any cache hit."""
        rows = [
            (seq, tried + 1 if tried else 0, orjson.dumps({**hits[key], "cached": True}))
            for seq, key, tried in items
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, NULL, 'succeeded', ?)", rows
            )
            db.executemany(
                "UPDATE requests SET state = 'done', attempts = ? WHERE seq = ?",
                [(a, q) for q, a, _ in rows],
            )

    def settle_waiting(self, requeue: Iterable[int], lost: Iterable[tuple[int, int, str]]) -> None:
        """Requests that waited for another run: ``requeue`` (seqs) back to ``pending``;
        ``lost`` ``(seq, attempts, message)``: their content's batch was lost over there,
        so they end ``failed`` with a ``lost`` response of an attempt of their own (an
        earlier attempt's error stays)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE requests SET state = 'pending' WHERE seq = ?", [(q,) for q in requeue]
            )
            for seq, attempts, message in lost:
                db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, NULL, 'lost', ?)",
                    (seq, attempts + 1, _error("batch_lost", message)),
                )
                db.execute(
                    "UPDATE requests SET state = 'failed', attempts = ? WHERE seq = ?",
                    (attempts + 1, seq),
                )

    def fail_unsendable(self, seq: int, message: str) -> None:
        """A request too large for any batch: ``failed`` (``request_too_large``), unsent."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, 0, NULL, 'errored', ?)",
                (seq, _error("request_too_large", message)),
            )
            db.execute("UPDATE requests SET state = 'failed' WHERE seq = ?", (seq,))

    def fail_pending(self, reason: str) -> tuple[int, list[str]]:
        """Mark the run canceled and every request not yet submitted (``pending``,
        ``waiting``) ``failed`` with a ``canceled`` response; returns how many, and their
        cache keys (to release their claims)."""
        data = _error("canceled", reason)
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('canceled', ?)", (reason,))
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT cache_key FROM requests WHERE state IN ('pending', 'waiting')"
                )
            ]
            # attempts + 1: a request retried once already keeps its attempt's response
            # (an errored attempt 1 is history, not to be overwritten by the cancel).
            db.execute(
                "INSERT OR REPLACE INTO responses "
                "SELECT seq, attempts + 1, NULL, 'canceled', ? FROM requests "
                "WHERE state IN ('pending', 'waiting')",
                (data,),
            )
            failed = db.execute(
                "UPDATE requests SET state = 'failed' WHERE state IN ('pending', 'waiting')"
            )
        return failed.rowcount, keys

    # --- intents and batches ------------------------------------------------------------

    def record_intent(self, seqs: Sequence[int]) -> int:
        """Record the chunk ``seqs`` as an ``open`` intent (before its create is sent):
        its requests go ``submitting``, one attempt more. Returns the intent's id."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO intents (created_at, n_requests, status) VALUES (?, ?, 'open')",
                (time.time(), len(seqs)),
            )
            intent_id = cur.lastrowid
            assert intent_id is not None
            db.executemany(
                "UPDATE requests SET state = 'submitting', intent_id = ?, "
                "attempts = attempts + 1 WHERE seq = ?",
                [(intent_id, s) for s in seqs],
            )
        return intent_id

    def mark_sending(self, intent_ids: Iterable[int]) -> None:
        """From here on the intents' creates may reach the API (``sending``)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE intents SET status = 'sending' WHERE id = ?", [(i,) for i in intent_ids]
            )

    def record_batch(self, intent_id: int | None, info: BatchInfo, *, adopted: bool) -> None:
        """The intent's create made batch ``info``: the batch is recorded, the intent
        ``created``, its requests ``submitted`` in it. ``adopted``: found by ``recover``
        after a lost create (``adopted = 1``, unverified until its results prove it ours).
        An id the ledger already holds is retired first (``_retire_id``)."""
        with self.transaction() as db:
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
                    time.time(),
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

    def abandon_intent(self, intent_id: int | None) -> None:
        """No batch came of the intent: ``abandoned``, its requests back to ``pending``
        (the attempt it counted undone)."""
        with self.transaction() as db:
            db.execute("UPDATE intents SET status = 'abandoned' WHERE id = ?", (intent_id,))
            db.execute(
                "UPDATE requests SET state = 'pending', attempts = attempts - 1, "
                "intent_id = NULL WHERE intent_id = ? AND state = 'submitting'",
                (intent_id,),
            )

    def note_queue_wait(self, kind: str, n_requests: int, message: str, retry_at: float) -> None:
        """A create of ``n_requests`` was refused (429) and its intent abandoned: the run
        holds its requests back until ``retry_at`` (``kind``: ``queue``, the API's queue
        of batch requests is full; ``rate_limit``, a per-minute limit). Kept for
        ``status`` until ``end_queue_wait``; ``since`` is the first refusal of the wait."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'queue_wait'").fetchone()
            since = orjson.loads(row[0])["since"] if row else time.time()
            value = {
                "kind": kind,
                "since": since,
                "n_requests": n_requests,
                "message": message,
                "retry_at": retry_at,
            }
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('queue_wait', ?)",
                (orjson.dumps(value).decode(),),
            )

    def end_queue_wait(self) -> None:
        """The run no longer waits for room (a create went through, or nothing is left)."""
        self.db.execute("DELETE FROM meta WHERE key = 'queue_wait'")

    def update_batch(self, info: BatchInfo) -> None:
        """The batch's status and request counts as the API reports them now."""
        self.db.execute(
            "UPDATE batches SET status = ?, counts = ? WHERE batch_id = ?",
            (info.status, orjson.dumps(info.counts).decode(), info.id),
        )

    def mark_verified(self, batch_id: str) -> None:
        """An adopted batch proved ours by its results (``adopted = 2``)."""
        self.db.execute("UPDATE batches SET adopted = 2 WHERE batch_id = ?", (batch_id,))

    def disown_batch(self, batch_id: str) -> None:
        """Undo a wrong adoption: the batch is ``foreign`` (settled, nothing of it
        written); its intent is ``sending`` again and its requests ``submitting``, so
        ``recover`` looks for the right batch, or returns them to the queue."""
        with self.transaction() as db:
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

    # --- results ------------------------------------------------------------------------

    def apply_results(
        self,
        batch_id: str,
        lines: Sequence[ResultLine],
        expected: dict[str, Expected],
        max_attempts: int,
    ) -> tuple[int, bool]:
        """Write a chunk of the batch's result lines, in one transaction.

        Each line's request is popped from ``expected``. Its response is written for its
        current attempt; a success leaves the request ``submitted`` (all of the batch's
        successes become ``done`` at once in ``settle_unanswered``, a per-row update costs
        more than the rest of ingestion together); any other result moves it on
        (``next_state``). Returns the responses' row id before the chunk (its rows are
        the newer ones) and whether any line succeeded.
        """
        if not lines:
            return 0, False
        responses = []
        updates = []
        canceled = self.canceled
        dumps = orjson.dumps
        pop = expected.pop
        for line in lines:
            seq, attempts = pop(line.custom_id)
            status = line.status
            if status == _SUCCEEDED:
                data = dumps(line.message or {})
            else:
                data = _error(line.error_type, line.error_message)
                state = next_state(status, line.error_type, attempts, max_attempts, canceled)
                updates.append((state.value, seq))
            responses.append((seq, attempts, batch_id, status, data))
        # In seq order (the API returns results in any order): the rows then sit on disk in
        # roughly the order scoring reads them back, which halves that read.
        responses.sort(key=_first)
        with self.transaction() as db:
            (newest,) = db.execute("SELECT coalesce(max(rowid), 0) FROM responses").fetchone()
            db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", responses)
            if updates:
                db.executemany("UPDATE requests SET state = ? WHERE seq = ?", updates)
        return newest, len(updates) < len(responses)

    def settle_unanswered(
        self,
        batch_id: str,
        unanswered: Iterable[Expected],
        *,
        status: ResponseStatus,
        error_type: str,
        message: str,
        batch_status: BatchStatus,
        max_attempts: int,
    ) -> None:
        """Settle the batch, in one transaction: its ``unanswered`` requests ``(seq,
        attempts)`` get a ``missing`` response and are retried or fail (``next_state``),
        or a ``lost`` one and fail (not re-sent by themselves); every request still
        ``submitted`` in it is exactly one that succeeded, and is ``done``; the batch
        takes ``batch_status`` and is collected."""
        rows = list(unanswered)
        data = _error(error_type, message)
        canceled = self.canceled
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                [(s, a, batch_id, status.value, data) for s, a in rows],
            )
            db.executemany(
                "UPDATE requests SET state = ? WHERE seq = ?",
                [
                    (
                        RequestState.FAILED.value
                        if status == ResponseStatus.LOST
                        else next_state(status, None, a, max_attempts, canceled).value,
                        s,
                    )
                    for s, a in rows
                ],
            )
            db.execute(
                "UPDATE requests SET state = 'done' WHERE batch_id = ? AND state = 'submitted'",
                (batch_id,),
            )
            db.execute(
                "UPDATE batches SET status = ?, collected = 1 WHERE batch_id = ?",
                (batch_status.value, batch_id),
            )

    # --- lost batches -------------------------------------------------------------------

    def restore_lost_batch(self, batch_id: str, status: str) -> None:
        """A batch written off as lost answers again: the requests it lost are
        ``submitted`` in it once more (their ``lost`` responses deleted), the batch open
        with ``status``, to be collected like any other."""
        with self.transaction() as db:
            seqs = [(q,) for (q,) in db.execute(_LOST_OF_BATCH, (batch_id,))]
            db.executemany("DELETE FROM responses WHERE seq = ? AND status = 'lost'", seqs)
            db.executemany("UPDATE requests SET state = 'submitted' WHERE seq = ?", seqs)
            db.execute(
                "UPDATE batches SET status = ?, collected = 0 WHERE batch_id = ?",
                (status, batch_id),
            )

    def resend_lost_batch(self, batch_id: str) -> None:
        """The user says the lost batch is gone (``--resend-lost``): the requests it lost
        go back to ``pending``; the batch is ``lost, resent``."""
        with self.transaction() as db:
            seqs = [(q,) for (q,) in db.execute(_LOST_OF_BATCH, (batch_id,))]
            db.executemany("UPDATE requests SET state = 'pending' WHERE seq = ?", seqs)
            db.execute("UPDATE batches SET status = 'lost, resent' WHERE batch_id = ?", (batch_id,))

    def resend_lost_elsewhere(self) -> None:
        """Requests that ended ``lost`` waiting for another run's batch go back to
        ``pending`` (``--resend-lost``)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE requests SET state = 'pending' WHERE state = 'failed' "
                f"AND seq IN ({_LOST_ELSEWHERE})"
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
