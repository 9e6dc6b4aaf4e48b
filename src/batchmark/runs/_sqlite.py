"""The store's SQLite files (a run's ledger, the response cache, the cross-run registry):
opening them (for their one writer, or read-only), transactions, and the failures a user
can fix as one ``StoreError``.

Reading a run (``status``, ``report``) opens its ledger read-only (``mode=ro``), so it
works in a read-only results folder. A WAL database needs its index file (``-shm``)
beside it; where that cannot be created and no WAL is pending, the file alone is the
whole database and is opened as such (``immutable=1``).

A disk that is full, a file or folder that cannot be written, or a damaged file is a
``StoreError`` naming the file and the next command: free space or fix permissions and
resume; ``batchmark doctor RUN`` for a damaged ledger; ``--no-cache`` or moving the file
aside for a damaged cache. Every other database error (a constraint, a lock held too
long) is left as it is: those are bugs. Errors raised by a statement carry the file
they came from (``store_file``), so a failure far from where the file was opened still
names it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from batchmark._errors import StoreError

__all__ = [
    "Connection",
    "Transactions",
    "connect_readonly",
    "connect_store",
    "failure_kind",
    "store_error",
    "store_errors",
]

LEDGER_NAME = "ledger.sqlite"
_TIMEOUT = 30.0


class Connection(sqlite3.Connection):
    """A connection whose statement errors name its file (``err.store_file``)."""

    path: str = ""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as err:
            err.store_file = self.path  # type: ignore[attr-defined]
            raise

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as err:
            err.store_file = self.path  # type: ignore[attr-defined]
            raise


def connect(target: str | Path, path: Path, *, uri: bool = False) -> Connection:
    db = sqlite3.connect(
        target, uri=uri, isolation_level=None, timeout=_TIMEOUT, factory=Connection
    )
    assert isinstance(db, Connection)
    db.path = str(path)
    return db


def connect_readonly(path: Path) -> Connection:
    """A connection that never writes, also in a read-only folder."""
    if not path.is_file() or path.stat().st_size == 0:
        what = "missing" if not path.exists() else "empty"
        raise sqlite3.DatabaseError(f"the file is {what}")
    uri = path.resolve().as_uri()
    db = connect(f"{uri}?mode=ro", path, uri=True)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as err:
        db.close()
        wal = path.with_name(path.name + "-wal")
        if err.sqlite_errorname != "SQLITE_CANTOPEN" or (wal.exists() and wal.stat().st_size):
            raise
    # The folder is read-only and holds no WAL index: with no WAL to replay, the file is
    # the whole database and cannot change under us (nobody can write here either).
    db = connect(f"{uri}?immutable=1", path, uri=True)
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return db


def connect_store(path: Path, *, readonly: bool = False) -> Connection:
    """A connection to one of the store's files, set up for its one writer: WAL mode,
    foreign keys on; ``readonly``: one that never writes (``connect_readonly``)."""
    if readonly:
        return connect_readonly(path)
    db = connect(path, path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL every ~40 MB instead of every 4 MB: ingesting a batch rewrites
    # the same index pages many times, and each checkpoint writes (and syncs) them again.
    db.execute("PRAGMA wal_autocheckpoint=10000")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class Transactions:
    """``with store.transaction():`` — BEGIN IMMEDIATE … COMMIT, ROLLBACK on error."""

    db: sqlite3.Connection

    def transaction(self) -> _Tx:
        return _Tx(self.db)

    def close(self) -> None:
        self.db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


# --- failures -----------------------------------------------------------------------------


def failure_kind(err: BaseException) -> str | None:
    """``full``, ``unwritable``, ``damaged``, ``io``: a failure of the disk or the file;
    None for anything else."""
    if isinstance(err, sqlite3.Error):
        name = getattr(err, "sqlite_errorname", None) or ""
        if name == "SQLITE_FULL":
            return "full"
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return "damaged"
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return "unwritable"
        if name.startswith("SQLITE_IOERR"):
            return "io"
        if type(err) is sqlite3.DatabaseError and not name:  # raised by connect_readonly
            return "damaged"
        return None
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return "full"
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "unwritable"
        if err.errno == errno.EIO:
            return "io"
    return None


_WHY = {
    "full": "the disk is full",
    "unwritable": "it cannot be written (a read-only folder or file?)",
    "io": "a disk error",
}


def store_error(
    err: BaseException, file: str | Path | None = None, run_folder: Path | None = None
) -> StoreError | None:
    """``err`` as a ``StoreError`` naming the file and the next command, or None when it
    is not a failure of the disk or the file (then it stays what it is).

    ``file`` defaults to the one the error carries (``store_file``, an OSError's
    ``filename``); ``run_folder`` (the run the command works on) to the ledger's folder.
    """
    kind = failure_kind(err)
    if kind is None:
        return None
    file = file or getattr(err, "store_file", None) or getattr(err, "filename", None)
    path = Path(file) if file else None
    if path is not None:
        run_folder = _folder_of(path) or run_folder
    run_id = _run_id(run_folder)
    where = str(path) if path is not None else (str(run_folder) if run_folder else "results")
    detail = getattr(err, "strerror", None) or str(err)
    if kind == "damaged" and path is not None and path.name.startswith("responses-"):
        return StoreError(
            f"{where}: the response cache is damaged ({detail})",
            hint=f"run with --no-cache, or move the file aside (`mv {where} {where}.bad`): "
            "the next run starts a new cache; nothing of any run is lost",
        )
    if kind == "damaged":
        doctor = f"batchmark doctor {run_id}" if run_id else "batchmark doctor RUN"
        what = "the run's ledger is" if path is not None else "a file of the run is"
        return StoreError(
            f"{where}: {what} damaged ({detail})",
            hint=f"`{doctor}` checks the run's files, salvages the batch ids the ledger "
            "still holds and lists the API key's recent batches",
            run_id=run_id,
        )
    return StoreError(
        f"{where}: {_WHY[kind]} ({detail})",
        hint=f"free space or check permissions, then {_next_step(run_folder, run_id)}",
        run_id=run_id,
    )


@contextlib.contextmanager
def store_errors(file: Path) -> Iterator[None]:
    """Failures of the disk or the file inside the block become a ``StoreError``."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as err:
        failure = store_error(err, getattr(err, "store_file", None) or file)
        if failure is None:
            raise
        raise failure from None


def _folder_of(path: Path) -> Path | None:
    """The run folder ``path`` is (or is in): one with a run.json, or one being made."""
    for folder in (path, path.parent):
        if folder.name.endswith(".partial") or (folder / "run.json").is_file():
            return folder
    return None


def _run_id(run_folder: Path | None) -> str | None:
    """How to name an existing run folder on the command line (a run still being
    expanded has no folder yet)."""
    from batchmark.runs._run import command_ref

    if run_folder is None or not (run_folder / "run.json").is_file():
        return None
    return command_ref(run_folder)


def _next_step(run_folder: Path | None, run_id: str | None) -> str:
    if run_folder is not None and run_folder.name.startswith("."):  # still being expanded
        return "run the command again (the run was not created: nothing was sent)"
    if run_folder is None or run_id is None:
        return "run the command again"
    try:
        emulated = json.loads((run_folder / "run.json").read_text()).get("emulated")
    except (OSError, ValueError):
        emulated = False
    if emulated:
        return (
            "run the command again (a run made with --emulate cannot be resumed: its "
            "emulator stopped with it; the answers it collected are in the cache)"
        )
    return f"`batchmark resume {run_id}` (nothing the run recorded is lost)"
