"""What runs sharing one results root (and one endpoint) know of each other.

Two runs, two CI jobs or a run and its own resume may work under one results root with
one API key at the same time. The ledger of each is its own; this registry, one SQLite
file per endpoint beside the response cache (``<root>/.cache/claims-<endpoint>.sqlite``),
is what they share:

``batches``
    every batch id a run recorded as its own (its create returned, or its contents proved
    it). ``recover()`` never adopts a batch another run recorded: a lost create is matched
    only among batches nobody owns.
``inflight``
    one row per request content (cache key) that a run has submitted or is about to:
    ``(cache_key, owner, custom_id, batch_id)``. A run whose request has the same key
    does not send it again; it waits for the answer to reach the response cache, or,
    when the owner stopped with the batch in flight (``--detach``, killed), reads the
    owner's batch itself. A claim whose owner stopped before any batch existed is taken
    over.

An owner is a run folder; it is alive while a process holds its ``.lock`` (``_driver``
takes it around every drive; the OS drops it when the process dies, kill -9 included).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from batchmark.runs._ledger_reads import sending_intent
from batchmark.runs._migrations import Migrations
from batchmark.runs._sqlite import Transactions, connect_store
from batchmark.runs._store import CACHE_DIRNAME

__all__ = ["Claim", "Claims", "claims_path", "owner_alive"]


def claims_path(root: Path, endpoint: str, api_key: str | None = None) -> Path:
    """The registry shared by every run under ``root`` against ``endpoint`` with one API
    key: a batch is visible only to its own key (workspace), so runs with other keys must
    neither wait for, read nor settle each other's batches. The key is never written: the
    file is named by 12 hex digits of its SHA-256 (a fingerprint, as key ids are)."""
    print_ = hashlib.sha256((api_key or "").encode()).hexdigest()[:12]
    return root / CACHE_DIRNAME / f"claims-{endpoint}-{print_}.sqlite"


migrations = Migrations(
    "registry of runs in flight",
    hint="stop the runs under this results root, then move the file aside "
    "(`mv {file} {file}.old`): the next run starts a new registry",
)


@migrations.migration("k001_initial")
def _k001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "recorded_at REAL NOT NULL, verified INTEGER NOT NULL DEFAULT 1)"
    )
    db.execute(
        "CREATE TABLE inflight (cache_key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "custom_id TEXT NOT NULL, batch_id TEXT, claimed_at REAL NOT NULL, "
        "lost INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX inflight_by_batch ON inflight (owner, batch_id)")


_CHUNK = 500  # keys per IN (...) list


def owner_alive(owner: str) -> bool:
    """Whether a process drives the run folder ``owner`` now (holds its ``.lock``).

    In doubt, alive: a lock file that cannot be opened (another user's folder) or locked
    for another reason keeps its claims, so nothing is sent twice; only a folder that is
    gone, or a lock nobody holds, means the owner stopped.
    """
    folder = Path(owner)
    if not folder.is_dir():
        return False  # the run folder is gone: nobody drives it
    try:
        fh = open(folder / ".lock", "rb")  # noqa: SIM115
    except FileNotFoundError:
        return False  # never driven
    except OSError:
        return True
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        fh.close()  # also releases a shared lock taken just now
    return False


def owner_sending(owner: str) -> bool:
    """Whether the stopped run ``owner`` died with a create that may have reached the API
    (an intent ``sending`` in its ledger): its claims without a batch may be in a batch
    nobody recorded, so they are not taken over until that is settled."""
    ledger = Path(owner) / "ledger.sqlite"
    if not ledger.is_file():
        return False
    return sending_intent(ledger)


@dataclass(frozen=True, slots=True)
class Claim:
    """Another run's claim on a request content."""

    cache_key: str
    owner: str
    custom_id: str
    batch_id: str | None
    lost: bool = False
    claimed_at: float = 0.0


class Claims(Transactions):
    """The registry of one endpoint under one results root; ``owner`` is this run."""

    def __init__(
        self, path: Path, owner: str | os.PathLike[str], *, shared_batches: bool = True
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.owner = str(Path(owner).resolve())
        # False when a stopped owner's batches cannot be read by anyone else (an
        # in-process emulator stops with its run): its claims are then taken over.
        self.shared_batches = shared_batches
        self._last_token = 0.0
        self.db = connect_store(path)
        try:
            migrations.apply(self.db, path)
        except BaseException:  # a refused or damaged registry: leave no connection open
            self.db.close()
            raise

    # --- batches ----------------------------------------------------------------------

    def record_batch(self, batch_id: str, *, verified: bool = True) -> None:
        """``batch_id`` is ours: created by us or verified by its contents, or (not
        ``verified``) adopted after a lost create and not proved yet. Either way no other
        run adopts it."""
        self.db.execute(
            "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
            (batch_id, self.owner, time.time(), int(verified)),
        )

    def owned_by(self, owner: str) -> set[str]:
        """Batch ids ``owner`` recorded as its own and proved (created or verified)."""
        rows = self.db.execute(
            "SELECT batch_id FROM batches WHERE owner = ? AND verified = 1", (owner,)
        )
        return {r[0] for r in rows}

    def stopped_sending_owners(self) -> list[str]:
        """Other runs that hold claims without a batch and stopped with a create that may
        have reached the API: settled (``BatchRunner.settle_stopped``) before this run
        matches a lost create of its own, so their unrecorded batches are theirs."""
        owners = self.db.execute(
            "SELECT DISTINCT owner FROM inflight WHERE owner != ? AND batch_id IS NULL",
            (self.owner,),
        ).fetchall()
        return [o for (o,) in owners if not owner_alive(o) and owner_sending(o)]

    def owned_by_others(self) -> set[str]:
        """Batch ids some other run recorded as its own."""
        rows = self.db.execute("SELECT batch_id FROM batches WHERE owner != ?", (self.owner,))
        found = {r[0] for r in rows}
        rows = self.db.execute(
            "SELECT DISTINCT batch_id FROM inflight WHERE owner != ? AND batch_id IS NOT NULL",
            (self.owner,),
        )
        return found | {r[0] for r in rows}

    # --- request contents in flight ---------------------------------------------------

    def claim(
        self, wanted: Iterable[tuple[str, str]], *, take_lost: bool = False
    ) -> tuple[set[str], float]:
        """Claim ``(cache_key, custom_id)`` pairs for this run, atomically.

        Returns the keys another run holds: claimed by a live owner, or by one that
        stopped with the request in a batch (its answer will come from that batch).
        A claim whose owner stopped before any batch held it is taken over; so is a claim
        in a batch reported lost when ``take_lost`` (``--resend-lost``: the user chose to
        pay again) or when its owner's folder is gone.

        Also returns the claim's token (its ``claimed_at``, unique per call and shared by
        every key it claimed): ``set_batch_of`` records their batch with one statement.
        The keys pass through a temporary table in key order: the ones already claimed
        are found by one join and the rest written by one statement.
        """
        held: set[str] = set()
        alive: dict[str, bool] = {}  # owner -> still holds its claims
        now = self._last_token = max(time.time(), self._last_token + 1e-6)
        with self.transaction() as db:
            self._fill_wanted(db, wanted)
            others = db.execute(
                "SELECT w.cache_key, i.owner, i.batch_id, i.lost FROM temp.wanted w "
                "JOIN inflight i ON i.cache_key = w.cache_key WHERE i.owner != ?",
                (self.owner,),
            ).fetchall()
            for key, owner, batch_id, lost in others:
                if lost and (take_lost or not Path(owner).is_dir()):
                    continue  # taken over: the user said so, or nobody can resend it
                if self._holds(owner, batch_id, alive):
                    held.add(key)
            if held:
                db.executemany("DELETE FROM temp.wanted WHERE cache_key = ?", [(k,) for k in held])
            db.execute(
                "INSERT OR REPLACE INTO inflight (cache_key, owner, custom_id, claimed_at) "
                "SELECT cache_key, ?, custom_id, ? FROM temp.wanted ORDER BY cache_key",
                (self.owner, now),
            )
        return held, now

    def _fill_wanted(self, db: sqlite3.Connection, wanted: Iterable[tuple[str, str]]) -> None:
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS wanted "
            "(cache_key TEXT PRIMARY KEY, custom_id TEXT NOT NULL)"
        )
        db.execute("DELETE FROM temp.wanted")
        db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?, ?)", sorted(wanted))

    def _holds(self, owner: str, batch_id: str | None, memo: dict[str, bool]) -> bool:
        """Whether ``owner``'s claim still holds: the owner runs, or it stopped with the
        request in a batch another run can read, or with a create that may have made one
        (``owner_sending``: settled by ``BatchRunner.settle_stopped``)."""
        if owner not in memo:
            memo[owner] = owner_alive(owner)
        if memo[owner]:
            return True
        if batch_id is not None:
            return self.shared_batches
        if not self.shared_batches:
            return False
        key = "sending:" + owner
        if key not in memo:
            memo[key] = owner_sending(owner)
        return memo[key]

    def set_batch(self, keys: Iterable[str], batch_id: str) -> None:
        """Our claims on ``keys`` are now in batch ``batch_id``."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE inflight SET batch_id = ?, lost = 0 WHERE cache_key = ? AND owner = ?",
                [(batch_id, k, self.owner) for k in keys],
            )

    def set_batch_of(self, token: float, batch_id: str) -> None:
        """The keys claimed together under ``token`` (``claim``) and still ours without a
        batch are in batch ``batch_id``: one statement, not one per key."""
        self.db.execute(
            "UPDATE inflight SET batch_id = ?, lost = 0 "
            "WHERE owner = ? AND claimed_at = ? AND batch_id IS NULL",
            (batch_id, self.owner, token),
        )

    def mark_lost(self, batch_id: str) -> None:
        """Our claims in ``batch_id`` stay, marked lost: the batch may still run and be
        billed, so runs waiting for those requests do not send them either."""
        self.db.execute(
            "UPDATE inflight SET lost = 1 WHERE owner = ? AND batch_id = ?", (self.owner, batch_id)
        )

    def release(self, keys: Iterable[str]) -> None:
        """Drop our claims on ``keys`` (their requests ended, or went back to the queue)."""
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM inflight WHERE cache_key = ? AND owner = ?",
                [(k, self.owner) for k in keys],
            )

    def release_batch(self, batch_id: str) -> None:
        """Drop our claims on every request of ``batch_id`` (it is settled)."""
        self.db.execute(
            "DELETE FROM inflight WHERE owner = ? AND batch_id = ?", (self.owner, batch_id)
        )

    def drop_foreign(self, batch_id: str, keys: list[str]) -> None:
        """Drop a stopped run's claims on ``keys`` in its batch ``batch_id``: no answer
        will come from there (it failed, or the batch is gone)."""
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM inflight WHERE cache_key = ? AND batch_id = ? AND owner != ?",
                [(k, batch_id, self.owner) for k in keys],
            )

    def holders(self, keys: list[str]) -> dict[str, Claim]:
        """Who else holds each of ``keys`` now (keys nobody else holds are absent)."""
        found: dict[str, Claim] = {}
        for start in range(0, len(keys), _CHUNK):
            part = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            for key, owner, custom_id, batch_id, lost, at in self.db.execute(
                "SELECT cache_key, owner, custom_id, batch_id, lost, claimed_at FROM inflight "
                f"WHERE cache_key IN ({marks}) AND owner != ?",
                [*part, self.owner],
            ):
                found[key] = Claim(key, owner, custom_id, batch_id, bool(lost), at)
        return found
