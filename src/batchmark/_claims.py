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
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from batchmark._store import CACHE_DIRNAME, _Transactions
from batchmark._store import _connect as connect
from batchmark._store import _migrate as migrate

__all__ = ["Claim", "Claims", "claims_path", "owner_alive"]


def claims_path(root: Path, endpoint: str) -> Path:
    """The registry shared by every run under ``root`` against ``endpoint``."""
    return root / CACHE_DIRNAME / f"claims-{endpoint}.sqlite"


def _k001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "recorded_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE inflight (cache_key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "custom_id TEXT NOT NULL, batch_id TEXT, claimed_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX inflight_by_batch ON inflight (owner, batch_id)")


MIGRATIONS = [("k001_initial", _k001_initial)]

_CHUNK = 500  # keys per IN (...) list


def owner_alive(owner: str) -> bool:
    """Whether a process drives the run folder ``owner`` now (holds its ``.lock``)."""
    lock = Path(owner) / ".lock"
    try:
        fh = open(lock, "a")  # noqa: SIM115
    except OSError:
        return False  # the folder is gone: nobody drives it
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # also releases a shared lock taken just now
    return False


@dataclass(frozen=True, slots=True)
class Claim:
    """Another run's claim on a request content."""

    cache_key: str
    owner: str
    custom_id: str
    batch_id: str | None


class Claims(_Transactions):
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
        self.db = connect(path)
        migrate(self.db, MIGRATIONS)

    # --- batches ----------------------------------------------------------------------

    def record_batch(self, batch_id: str) -> None:
        """``batch_id`` is ours (created by us, or verified by its contents)."""
        self.db.execute(
            "INSERT OR REPLACE INTO batches VALUES (?, ?, ?)", (batch_id, self.owner, time.time())
        )

    def owned_by_others(self) -> set[str]:
        """Batch ids some other run recorded as its own."""
        rows = self.db.execute("SELECT batch_id FROM batches WHERE owner != ?", (self.owner,))
        return {r[0] for r in rows}

    # --- request contents in flight ---------------------------------------------------

    def claim(self, wanted: Iterable[tuple[str, str]]) -> set[str]:
        """Claim ``(cache_key, custom_id)`` pairs for this run, atomically.

        Returns the keys another run holds: claimed by a live owner, or by one that
        stopped with the request in a batch (its answer will come from that batch).
        A claim whose owner stopped before any batch held it is taken over.
        """
        pairs = list(wanted)
        held: set[str] = set()
        now = time.time()
        with self.transaction() as db:
            for start in range(0, len(pairs), _CHUNK):
                part = pairs[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT cache_key, owner, batch_id FROM inflight WHERE cache_key IN ({marks})",
                    [k for k, _ in part],
                ).fetchall()
                others = {k: (o, b) for k, o, b in rows if o != self.owner}
                alive: dict[str, bool] = {}
                take = []
                for key, custom_id in part:
                    if key in others:
                        owner, batch_id = others[key]
                        if owner not in alive:
                            alive[owner] = owner_alive(owner)
                        if alive[owner] or (batch_id is not None and self.shared_batches):
                            held.add(key)
                            continue
                    take.append((key, self.owner, custom_id, now))
                db.executemany(
                    "INSERT OR REPLACE INTO inflight (cache_key, owner, custom_id, claimed_at) "
                    "VALUES (?, ?, ?, ?)",
                    take,
                )
        return held

    def set_batch(self, keys: Iterable[str], batch_id: str) -> None:
        """Our claims on ``keys`` are now in batch ``batch_id``."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE inflight SET batch_id = ? WHERE cache_key = ? AND owner = ?",
                [(batch_id, k, self.owner) for k in keys],
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
            for key, owner, custom_id, batch_id in self.db.execute(
                "SELECT cache_key, owner, custom_id, batch_id FROM inflight "
                f"WHERE cache_key IN ({marks}) AND owner != ?",
                [*part, self.owner],
            ):
                found[key] = Claim(key, owner, custom_id, batch_id)
        return found
