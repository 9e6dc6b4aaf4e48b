"""``batchmark cache stats | clear | prune``: what the response caches hold, and removing it.

The response cache (``_store.ResponseCache``) is one SQLite file per endpoint under
``<results>/.cache/``. An entry is not tied to an eval, but every run's ledger names the
cache keys of its requests, so the entries "of an eval" are those its runs under the
results root asked for (an entry two evals share belongs to both).

Removing is safe beside running runs: an entry written since the oldest live run under
the root started (a process holds its ``.lock``) is kept, so an answer another run is
waiting for (``_waiting``) never disappears between its merge and its read. Nothing a
run holds depends on the cache afterwards: a hit is copied into the run's ledger.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from batchmark._errors import UsageError
from batchmark.runs._claims import owner_alive
from batchmark.runs._run import command_ref
from batchmark.runs._schema import cache_migrations
from batchmark.runs._sqlite import connect_readonly, store_errors
from batchmark.runs._store import CACHE_DIRNAME, ResponseCache, RunFolder, iter_run_folders

__all__ = ["CacheFile", "EvalShare", "Removal", "cache_files", "cache_stats", "remove_entries"]

_PREFIX = "responses-"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class EvalShare:
    """The entries of one cache file that one eval's runs asked for."""

    eval: str
    runs: int
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class CacheFile:
    """One endpoint's response cache, counted."""

    path: Path
    endpoint: str
    entries: int
    bytes: int  # of stored answers (the file is larger: keys, index, free pages)
    file_bytes: int
    oldest: float | None
    newest: float | None
    staged: int  # answers a killed run staged and the next opener merges
    evals: list[EvalShare] = field(default_factory=list)
    unreferenced: int = 0  # entries no run under the results root asked for


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``remove_entries`` removed from one file (or would, with ``dry_run``)."""

    path: Path
    endpoint: str
    removed: int
    removed_bytes: int
    kept_live: int  # matched, but written since a live run started: kept
    live_runs: list[str]


def cache_files(root: Path, endpoint: str | None = None) -> list[tuple[str, Path]]:
    """``(endpoint, path)`` of every response cache under a results root."""
    folder = root / CACHE_DIRNAME
    found = sorted(folder.glob(f"{_PREFIX}*.sqlite")) if folder.is_dir() else []
    files = [(p.name[len(_PREFIX) : -len(".sqlite")], p) for p in found]
    if endpoint is not None:
        files = [(e, p) for e, p in files if e == endpoint]
        if not files:
            known = ", ".join(e for e, _ in cache_files(root)) or "none"
            raise UsageError(
                f"no response cache for endpoint {endpoint!r} under {folder}",
                hint=f"endpoints with a cache: {known}",
            )
    return files


def _runs_of(
    root: Path, endpoint: str, eval_name: str | None, *, unknown: bool = False
) -> Iterator[RunFolder]:
    """Run folders under ``root`` made against ``endpoint`` (of one eval, if given). A
    folder whose run.json cannot be read (its endpoint unknown) is one of them only
    with ``unknown`` (prune: its ledger may still ask for entries of this cache)."""
    for folder in iter_run_folders(root):
        if eval_name is not None and folder.eval_name != eval_name:
            continue
        try:
            if folder.read_info().get("endpoint", "emulator") != endpoint:
                continue
        except (OSError, ValueError):
            if not unknown:
                continue  # a damaged run.json: `batchmark doctor` is its place
        yield folder


def _load_keys(
    db: sqlite3.Connection, table: str, folders: list[RunFolder], *, strict: Path | None = None
) -> int:
    """Fill the temporary table ``table`` with the cache keys the runs' ledgers name;
    returns how many ledgers could be read. A ledger not written yet (missing, empty, no
    tables: a run being expanded) names no key. One that cannot be read (damaged, no
    permission) names none either, or, with ``strict`` (the cache file pruned: what it
    asks for would be taken for unasked), is a ``UsageError`` naming it."""
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (cache_key TEXT PRIMARY KEY)")
    db.execute(f"DELETE FROM {table}")
    read = 0
    for folder in folders:
        path = folder.ledger_path
        try:
            if not path.is_file() or path.stat().st_size == 0:
                continue  # not written yet
            ledger = connect_readonly(path)
        except (sqlite3.DatabaseError, OSError) as err:
            if strict is not None:
                raise _unreadable(folder, err, strict) from None
            continue
        try:
            if not ledger.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
            ).fetchone():
                continue  # its schema not written yet
            rows = ledger.execute("SELECT DISTINCT cache_key FROM requests")
            while chunk := rows.fetchmany(_CHUNK * 20):
                db.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?)", chunk)
            read += 1
        except sqlite3.DatabaseError as err:
            if strict is not None:
                raise _unreadable(folder, err, strict) from None
            continue
        finally:
            ledger.close()
    return read


def _unreadable(folder: RunFolder, err: BaseException, cache: Path) -> UsageError:
    return UsageError(
        f"{folder.ledger_path}: cannot be read ({err}), so which entries of {cache} the "
        f"run {folder.id} asks for is unknown: none was removed from it",
        hint=f"`batchmark doctor {command_ref(folder.path)}` checks the run; or delete "
        "that run folder, then prune again",
    )


def _check_eval(root: Path, eval_name: str | None) -> None:
    """An ``--eval`` that names no eval folder under ``root`` (``.cache``, ``..`` and
    ``a/b`` are none) is a ``UsageError``."""
    if eval_name is None or (
        eval_name[:1] not in ("", ".") and "/" not in eval_name and (root / eval_name).is_dir()
    ):
        return
    evals = sorted(
        p.name
        for p in (root.iterdir() if root.is_dir() else ())
        if p.is_dir() and not p.name.startswith(".")
    )
    raise UsageError(
        f"no eval {eval_name!r} under {root}",
        hint=f"evals with runs there: {', '.join(evals) or 'none'}",
    )


def cache_stats(root: Path, *, eval_name: str | None = None) -> list[CacheFile]:
    """Every response cache under ``root``: entries, sizes, ages and who asked for them.

    A file of another version of batchmark is a ``StoreError`` (as a run opening it
    would raise); one whose tables were never written (a run killed as it created the
    file) holds nothing."""
    _check_eval(root, eval_name)
    stats = []
    for endpoint, path in cache_files(root):
        with store_errors(path):
            db = connect_readonly(path)
            try:
                cache_migrations.check(db, path)
                stats.append(_stats_of(db, root, endpoint, path, eval_name))
            finally:
                db.close()
    return stats


def _stats_of(
    db: sqlite3.Connection, root: Path, endpoint: str, path: Path, eval_name: str | None
) -> CacheFile:
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in {"responses", "staged"} - tables:  # never set up (a run killed creating it)
        db.execute(f"CREATE TEMP TABLE {table} (cache_key TEXT, data BLOB, created_at REAL)")
    entries, size, oldest, newest = db.execute(
        "SELECT count(*), coalesce(sum(length(data)), 0), min(created_at), max(created_at) "
        "FROM responses"
    ).fetchone()
    staged = db.execute("SELECT count(*) FROM staged").fetchone()[0]
    by_eval: dict[str, list[RunFolder]] = {}
    for folder in _runs_of(root, endpoint, None, unknown=True):  # as prune counts them
        by_eval.setdefault(folder.eval_name, []).append(folder)
    shares = []
    db.execute("CREATE TEMP TABLE any_run (cache_key TEXT PRIMARY KEY)")
    for name, folders in sorted(by_eval.items()):
        _load_keys(db, "of_eval", folders)
        db.execute("INSERT OR IGNORE INTO any_run SELECT cache_key FROM of_eval")
        if eval_name is not None and name != eval_name:
            continue
        n, b = db.execute(
            "SELECT count(*), coalesce(sum(length(r.data)), 0) FROM responses r "
            "JOIN of_eval k ON k.cache_key = r.cache_key"
        ).fetchone()
        shares.append(EvalShare(name, len(folders), n, b))
    unreferenced = db.execute(
        "SELECT count(*) FROM responses WHERE cache_key NOT IN (SELECT cache_key FROM any_run)"
    ).fetchone()[0]
    return CacheFile(
        path=path,
        endpoint=endpoint,
        entries=entries,
        bytes=size,
        file_bytes=sum(
            p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        ),
        oldest=oldest,
        newest=newest,
        staged=staged,
        evals=shares,
        unreferenced=unreferenced,
    )


def _live_since(root: Path) -> tuple[float | None, list[str]]:
    """When the oldest run a process drives now under ``root`` started, and their ids."""
    live = [f for f in iter_run_folders(root) if owner_alive(str(f.path))]
    starts = []
    for folder in live:
        try:
            starts.append(datetime.fromisoformat(folder.read_info()["created_at"]).timestamp())
        except (OSError, ValueError, KeyError):
            starts.append(0.0)  # unreadable: keep everything rather than guess
    return (min(starts) if starts else None), [f.id for f in live]


def remove_entries(
    root: Path,
    *,
    eval_name: str | None = None,
    older_than_days: float | None = None,
    unreferenced: bool = False,
    endpoint: str | None = None,
    dry_run: bool = False,
) -> list[Removal]:
    """Remove response-cache entries under ``root``; returns what each file lost.

    Entries match when all the given filters do: asked for by a run of ``eval_name``;
    written more than ``older_than_days`` ago; asked for by no run under the root
    (``unreferenced``). Matching entries written since the oldest live run started are
    kept (see the module docstring). ``dry_run`` counts and removes nothing.
    """
    if older_than_days is not None and not older_than_days >= 0:  # NaN too
        raise UsageError(f"--older-than {older_than_days}: give a number of days, 0 or more")
    _check_eval(root, eval_name)
    since, live = _live_since(root)
    now = time.time()
    aged = now if older_than_days is None else now - older_than_days * 86400
    cuts = (aged, aged if since is None else min(aged, since))  # asked, safe
    removals = []
    for name, path in cache_files(root, endpoint):
        cache = ResponseCache(path)  # migrated, staged answers merged: all in one table
        try:
            with store_errors(path):
                removals.append(
                    _remove(
                        cache.db, root, name, path, eval_name, unreferenced, cuts, dry_run, live
                    )
                )
        finally:
            cache.close()
    return removals


def _remove(
    db: sqlite3.Connection,
    root: Path,
    endpoint: str,
    path: Path,
    eval_name: str | None,
    unreferenced: bool,
    cuts: tuple[float, float],
    dry_run: bool,
    live: list[str],
) -> Removal:
    where = ["1"]
    if eval_name is not None:
        _load_keys(db, "of_eval", list(_runs_of(root, endpoint, eval_name)))
        where.append("cache_key IN (SELECT cache_key FROM of_eval)")
    if unreferenced:
        runs = list(_runs_of(root, endpoint, None, unknown=True))
        _load_keys(db, "any_run", runs, strict=path)
        where.append("cache_key NOT IN (SELECT cache_key FROM any_run)")
    match = " AND ".join(where)
    aged, cutoff = cuts
    db.execute("BEGIN IMMEDIATE")  # counted and removed under one write lock
    try:
        removed, size = db.execute(
            f"SELECT count(*), coalesce(sum(length(data)), 0) FROM responses "
            f"WHERE {match} AND created_at < ?",
            (cutoff,),
        ).fetchone()
        kept = db.execute(
            f"SELECT count(*) FROM responses WHERE {match} AND created_at >= ? AND created_at < ?",
            (cutoff, aged),
        ).fetchone()[0]
        if not dry_run:
            db.execute(f"DELETE FROM responses WHERE {match} AND created_at < ?", (cutoff,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if removed and not dry_run and not live:
        _shrink(db)
    return Removal(path, endpoint, removed, size, kept, live)


def _shrink(db: sqlite3.Connection) -> None:
    """Give the freed pages back to the file system (no run is in flight: VACUUM copies
    the whole file under the write lock a collecting run would wait for). When another
    process holds the lock just now, the freed pages are kept: the cache reuses them for
    later answers."""
    try:
        db.execute("PRAGMA busy_timeout = 200")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError:
        pass
