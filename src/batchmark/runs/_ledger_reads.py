"""What a ledger holds, read: counts, batches, intents, the requests of a chunk or a
batch, final responses. ``LedgerReads`` is the read side of ``Ledger`` (``_ledger``),
which adds opening and the transitions; the functions at the end read another run's
ledger without opening it as ours.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from batchmark._errors import StoreError
from batchmark.runs._blobs import splice
from batchmark.runs._sqlite import Transactions
from batchmark.runs._states import ENDED

__all__ = ["Expected", "IntentRequests", "LedgerReads", "custom_ids_in_batch", "sending_intent"]

# A submitted request as collecting needs it: (seq, attempts).
Expected = tuple[int, int]

# The rows of one intent, as its create body streams them.
_CHUNK_ROWS = (
    "FROM requests q JOIN params p ON p.seq = q.seq "
    "WHERE q.intent_id = ? AND q.state = 'submitting' ORDER BY q.seq"
)
# A batch's requests still 'submitted' whose success for the current attempt is written
# (an interrupted collect leaves them so until the batch's stream has been read whole).
_ANSWERED_IN_BATCH = """
SELECT q.custom_id FROM requests q JOIN responses r
  ON r.seq = q.seq AND r.attempt = q.attempts AND r.status = 'succeeded'
WHERE q.batch_id = ? AND q.state = 'submitted'
"""
# The final response (last attempt) of every ended request of a kind, in seq order.
_FINAL_SQL = """
SELECT q.custom_id, q.variant, q.model_key, q.model, q.row_id, q.epoch, q.attempts,
       r.attempt, r.batch_id, r.status, r.data, {params}, q.seq
FROM requests q JOIN responses r ON r.seq = q.seq {join}
WHERE q.kind = ? AND (? IS NULL OR q.scorer = ?) AND q.state IN ('done', 'failed')
  AND r.attempt = (SELECT max(attempt) FROM responses r2 WHERE r2.seq = q.seq)
ORDER BY q.seq
"""


@dataclass(frozen=True, slots=True)
class IntentRequests:
    """The requests of one intent as ``BatchBackend.create`` reads them: straight from
    the ledger, through ``db`` (a connection of the thread that sends the create), with
    a fresh cursor on every pass, so the body is never held in memory and a refused
    create can be sent again."""

    db: sqlite3.Connection
    intent_id: int

    def sizes(self) -> Iterator[tuple[str, int]]:
        """``(custom_id, size of its params as sent)``: blobs counted in (``_blobs``)."""
        return iter(
            self.db.execute(
                f"SELECT q.custom_id, coalesce(p.sent_size, length(p.params)) {_CHUNK_ROWS}",
                (self.intent_id,),
            )
        )

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """``(custom_id, params as sent)``: each blob reference replaced by its data,
        read from the ledger's ``blobs`` one request at a time."""
        rows = self.db.execute(
            f"SELECT q.custom_id, p.params, p.sent_size {_CHUNK_ROWS}", (self.intent_id,)
        )
        for custom_id, params, size in rows:
            yield custom_id, (params if size is None else splice(params, self._blob))

    def _blob(self, sha256: str, length: int) -> bytes:
        row = self.db.execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None or len(row[0]) != length:
            found = "missing" if row is None else f"{len(row[0])} bytes, not {length}"
            raise StoreError(
                f"the ledger's blob {sha256} is {found}: the request that names it cannot be sent",
                hint="the ledger is damaged; run the config again (`batchmark run CONFIG`)",
            )
        return bytes(row[0])


class LedgerReads(Transactions):
    """The reads of a run's ledger (``db``, opened by ``Ledger``)."""

    db: sqlite3.Connection
    file: str  # the absolute path of the file opened

    def reader(self) -> sqlite3.Connection:
        """A new read-only connection, for another thread to read through and close.

        ``self.db`` belongs to the thread that opened the ledger (SQLite connections are
        per thread); in WAL mode readers run beside that one writer without blocking it.
        """
        uri = Path(self.file).as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    # --- meta -----------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def canceled(self) -> bool:
        """Whether the run was canceled (``fail_pending`` marks the ledger)."""
        return self.get_meta("canceled") is not None

    def queue_wait(self) -> dict[str, Any] | None:
        """Why the run holds requests back, if it does (``Ledger.note_queue_wait``):
        ``kind``, ``since``, ``n_requests``, ``message``, ``retry_at``."""
        raw = self.get_meta("queue_wait")
        return orjson.loads(raw) if raw else None

    # --- counts and reads -------------------------------------------------------------

    def state_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, count(*) FROM requests GROUP BY state")
        return {state: n for state, n in rows}

    def total_requests(self) -> int:
        return self.db.execute("SELECT count(*) FROM requests").fetchone()[0]

    def all_ended(self) -> bool:
        """Whether every request is ``done`` or ``failed``."""
        return all(s in ENDED for s, n in self.state_counts().items() if n)

    def has_unsent(self) -> bool:
        """Whether a request is ``pending`` or ``submitting`` (not in a batch yet)."""
        return (
            self.db.execute(
                "SELECT 1 FROM requests WHERE state IN ('pending', 'submitting') LIMIT 1"
            ).fetchone()
            is not None
        )

    def open_batches(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM batches WHERE collected = 0 ORDER BY recorded_at")

    def batches(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM batches ORDER BY recorded_at")

    def lost_batches(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM batches WHERE status = 'lost' ORDER BY recorded_at")

    def lost_requests(self) -> int:
        """Requests that ended ``lost`` (their batch could not be found; not re-sent)."""
        return self.db.execute(
            "SELECT count(*) FROM requests q JOIN responses r "
            "ON r.seq = q.seq AND r.attempt = q.attempts AND r.status = 'lost' "
            "WHERE q.state = 'failed'"
        ).fetchone()[0]

    def open_intents(self) -> list[dict[str, Any]]:
        """Intents not settled yet: ``open`` (recorded, create not sent yet) or ``sending``
        (the create may have reached the API)."""
        return self._rows("SELECT * FROM intents WHERE status IN ('open', 'sending') ORDER BY id")

    def known_batch_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT batch_id FROM batches")}

    def custom_ids_of_batch(self, batch_id: str) -> set[str]:
        """Every custom_id the ledger put in ``batch_id`` (whatever its state now)."""
        rows = self.db.execute("SELECT custom_id FROM requests WHERE batch_id = ?", (batch_id,))
        return {c for (c,) in rows}

    def cache_keys_of_batch(self, batch_id: str) -> list[str]:
        rows = self.db.execute("SELECT cache_key FROM requests WHERE batch_id = ?", (batch_id,))
        return [k for (k,) in rows]

    def request_keys(self, seqs: Sequence[int]) -> dict[int, tuple[str, str, int]]:
        """``{seq: (cache_key, custom_id, attempts)}`` of ascending ``seqs`` (a chunk),
        read as one range of the requests table (seq is its row id), not key by key."""
        wanted = set(seqs)
        rows = self.db.execute(
            "SELECT seq, cache_key, custom_id, attempts FROM requests WHERE seq BETWEEN ? AND ?",
            (min(wanted), max(wanted)),
        )
        return {seq: (key, cid, tried) for seq, key, cid, tried in rows if seq in wanted}

    def pending_sizes(self) -> sqlite3.Cursor:
        """``(seq, custom_id, size of params as sent)`` of every pending request in seq order: a
        cursor, read as far as the next chunk goes (the caller closes it)."""
        return self.db.execute(
            "SELECT q.seq, q.custom_id, coalesce(p.sent_size, length(p.params)) "
            "FROM requests q JOIN params p ON p.seq = q.seq "
            "WHERE q.state = 'pending' ORDER BY q.seq"
        )

    def waiting_requests(self) -> list[tuple[int, str, int]]:
        """``(seq, cache_key, attempts)`` of every request ``waiting`` for another run."""
        return self.db.execute(
            "SELECT seq, cache_key, attempts FROM requests WHERE state = 'waiting'"
        ).fetchall()

    def submitted_of_batch(self, batch_id: str) -> dict[str, Expected]:
        """The batch's requests still ``submitted``: ``{custom_id: (seq, attempts)}`` (the
        result lines name a custom_id, the ledger keys by seq)."""
        rows = self.db.execute(
            "SELECT custom_id, seq, attempts FROM requests "
            "WHERE batch_id = ? AND state = 'submitted'",
            (batch_id,),
        )
        return {c: (s, a) for c, s, a in rows}

    def answered_in_batch(self, batch_id: str) -> list[str]:
        """The custom_ids of the batch's requests still ``submitted`` whose success for the
        current attempt is written (an interrupted collect leaves them so)."""
        return [c for (c,) in self.db.execute(_ANSWERED_IN_BATCH, (batch_id,))]

    @contextlib.contextmanager
    def intent_requests(self, intent_id: int) -> Iterator[IntentRequests]:
        """The requests of intent ``intent_id`` for a create sent from another thread:
        read through a connection of that thread, closed when the block ends."""
        db = self.reader()
        try:
            yield IntentRequests(db, intent_id)
        finally:
            db.close()

    def iter_final(
        self, kind: str, scorer: str | None, *, with_params: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """The final response of every ended request of ``kind`` (one ``scorer``'s, if
        given), in seq order: ``(custom_id, variant, model_key, model, row_id, epoch,
        attempts, attempt, batch_id, status, data, params or None, seq)``."""
        if with_params:
            sql = _FINAL_SQL.format(params="p.params", join="JOIN params p ON p.seq = q.seq")
        else:
            sql = _FINAL_SQL.format(params="NULL", join="")
        return iter(self.db.execute(sql, (kind, scorer, scorer)))

    def iter_requests(self, kind: str = "candidate") -> Iterator[dict[str, Any]]:
        """Every request of ``kind`` in seq order: ids, cell coordinates, state, attempts,
        batch and the stored params (JSON bytes)."""
        cur = self.db.execute(
            "SELECT q.custom_id, q.variant, q.model_key, q.model, q.row_id, q.epoch, "
            "q.cache_key, q.state, q.attempts, q.batch_id, p.params "
            "FROM requests q JOIN params p ON p.seq = q.seq "
            "WHERE q.kind = ? ORDER BY q.seq",
            (kind,),
        )
        cols = [c[0] for c in cur.description]
        for row in cur:
            yield dict(zip(cols, row, strict=True))

    def iter_answered(self, kind: str = "candidate") -> Iterator[tuple[Any, ...]]:
        """Every request of ``kind`` in seq order with its final response, in one pass:
        ``(custom_id, variant, model_key, row_id, epoch, state, params, status, data)``,
        the last two ``None`` until the request has ended (the report's item view)."""
        return iter(
            self.db.execute(
                "SELECT q.custom_id, q.variant, q.model_key, q.row_id, q.epoch, q.state, "
                "p.params, r.status, r.data "
                "FROM requests q JOIN params p ON p.seq = q.seq "
                "LEFT JOIN responses r ON r.seq = q.seq AND q.state IN ('done', 'failed') "
                "AND r.attempt = (SELECT max(attempt) FROM responses r2 WHERE r2.seq = q.seq) "
                "WHERE q.kind = ? ORDER BY q.seq",
                (kind,),
            )
        )

    def failed_errors(self) -> Iterator[bytes]:
        """The stored data of each failed request's last response."""
        rows = self.db.execute(
            "SELECT r.data FROM requests q JOIN responses r "
            "ON r.seq = q.seq WHERE q.state = 'failed' "
            "AND r.attempt = (SELECT max(attempt) FROM responses r2 WHERE r2.seq = q.seq)"
        )
        return (data for (data,) in rows)

    def judge_names(self) -> list[str]:
        """The judges that have requests in the ledger."""
        rows = self.db.execute("SELECT DISTINCT scorer FROM requests WHERE kind = 'judge'")
        return [name for (name,) in rows]

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, tuple(args))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# --- other runs' ledgers, read without opening them as ours ---------------------------------


def custom_ids_in_batch(ledger_file: Path, batch_id: str) -> set[str] | None:
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


def sending_intent(ledger_file: Path) -> bool:
    """Whether another run's ledger holds an intent ``sending`` (a create that may have
    reached the API); True when it cannot be read (in doubt, it may have sent)."""
    try:
        db = sqlite3.connect(ledger_file.as_uri() + "?mode=ro", uri=True, timeout=30.0)
        try:
            row = db.execute("SELECT 1 FROM intents WHERE status = 'sending' LIMIT 1")
            return row.fetchone() is not None
        finally:
            db.close()
    except sqlite3.Error:
        return True
