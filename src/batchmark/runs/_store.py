"""Run folders and the response cache (the ledger: ``_ledger``; their schemas: ``_schema``).

A run lives in ``<results root>/<eval name>/<run id>/``::

    run.json          the run's identity: id, eval, config path and hash, endpoint, times
    config.yaml       the config exactly as it was read
    ledger.sqlite     requests, submission intents, batches, responses (the source of truth)
    responses.jsonl   the final response of every request, written when the run completes
    summary.json      counts, tokens and cost per model x variant, written at completion

The ledger and the cache are SQLite databases in WAL mode with append-only named
migrations (``_migrations``: recorded in the file, applied on every open). Every state
change is one transaction, so a process killed at any instant leaves a consistent ledger.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from batchmark._errors import RunNotFound
from batchmark.runs._crashpoints import crashpoint
from batchmark.runs._schema import cache_migrations
from batchmark.runs._sqlite import Transactions, connect_store, store_errors

__all__ = [
    "CACHE_DIRNAME",
    "ResponseCache",
    "RunFolder",
    "atomic_writer",
    "cache_path",
    "resolve_run",
    "write_atomic",
]

CACHE_DIRNAME = ".cache"

# --- the response cache ----------------------------------------------------------------


class ResponseCache(Transactions):
    """Succeeded responses keyed by the hash of the full request content.

    ``fresh_after`` (a ``time.time()``): only entries written since then are served, older
    ones are as good as absent and are replaced by the new answers (``run --refresh``: a
    run sends again what the cache held before it started, yet still takes an answer
    another run, or its own earlier process, collected since).
    """

    def __init__(self, path: Path, *, fresh_after: float | None = None) -> None:
        """Open (or create) the cache; a damaged file, a full disk or a folder that cannot
        be written is a ``StoreError`` naming the file (and ``--no-cache``)."""
        self.fresh_after = fresh_after
        with store_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = connect_store(path)
            try:
                cache_migrations.apply(self.db, path)
            except BaseException:
                self.db.close()
                raise
            # Answers a killed run staged but never merged: whoever opens the cache next
            # (a run, a resume, estimate, score) finds them.
            self.merge_staged()

    def add(self, answers: list[tuple[str, bytes]]) -> None:
        """Store ``(cache_key, stored message JSON)`` answers read from elsewhere (another
        run's batch)."""
        if not answers:
            return
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses (cache_key, data, created_at) VALUES (?, ?, ?)",
                [(k, d, now) for k, d in answers],
            )

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        fresh = "" if self.fresh_after is None else " AND created_at >= ?"
        extra = () if self.fresh_after is None else (self.fresh_after,)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT cache_key, data FROM responses WHERE cache_key IN ({marks}){fresh}"
            for key, data in self.db.execute(sql, (*chunk, *extra)):
                found[key] = orjson.loads(data)
        return found

    def stage_answers_since(self, ledger_file: str, rowid: int) -> None:
        """Stage the successes written into the ledger after its response row ``rowid``
        (a collect's chunk: its rows are the ledger's newest); ``merge_staged`` makes them
        cache entries. Staged answers outlive the process: a run killed before its merge
        leaves them for the next run that opens the cache to merge."""
        self._copy_from(ledger_file, _STAGE_SINCE, {"now": time.time(), "rowid": rowid})

    def merge_staged(self) -> None:
        """Make every staged answer a cache entry, in key order, in one transaction."""
        if self.db.execute("SELECT 1 FROM staged LIMIT 1").fetchone() is None:
            return
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses (cache_key, data, created_at) "
                "SELECT cache_key, data, created_at FROM staged ORDER BY cache_key"
            )
            db.execute("DELETE FROM staged")

    def add_answers_of_batch(self, ledger_file: str, batch_id: str) -> None:
        """Copy every success batch ``batch_id`` brought into the ledger (sorted, direct)."""
        self._copy_from(ledger_file, _ANSWERS_OF_BATCH, {"now": time.time(), "batch": batch_id})

    def _copy_from(self, ledger_file: str, sql: str, params: dict[str, Any]) -> None:
        """One ``INSERT ... SELECT`` over the attached ledger: SQLite copies the stored
        answers (byte for byte what the ledger holds) without a row passing through Python.
        Idempotent: copying the same answers again writes the same rows.
        """
        self.db.execute("ATTACH DATABASE ? AS ledger", (ledger_file,))
        try:
            with self.transaction() as db:
                db.execute(sql, params)
        finally:
            self.db.execute("DETACH DATABASE ledger")


# The successes among the ledger's response rows after a given row id, staged.
_STAGE_SINCE = """
INSERT INTO main.staged (cache_key, data, created_at)
SELECT q.cache_key, r.data, :now FROM ledger.responses r
JOIN ledger.requests q ON q.seq = r.seq
WHERE r.rowid > :rowid AND r.status = 'succeeded'
"""

# A batch's successes, as cache rows: the response written for the request's current
# attempt, by this batch (found through the ledger's batch index).
_ANSWERS_OF_BATCH = """
INSERT OR REPLACE INTO main.responses (cache_key, data, created_at)
SELECT q.cache_key, r.data, :now FROM ledger.requests q
JOIN ledger.responses r ON r.seq = q.seq AND r.attempt = q.attempts
WHERE q.batch_id = :batch AND r.batch_id = q.batch_id AND r.status = 'succeeded'
ORDER BY q.cache_key
"""


# --- run folders -----------------------------------------------------------------------


def cache_path(root: Path, endpoint: str) -> Path:
    """The response cache of one endpoint under a results root."""
    return root / CACHE_DIRNAME / f"responses-{endpoint}.sqlite"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    with atomic_writer(path) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file to stream into that appears at ``path`` whole when the block ends
    (a temporary file beside it, then ``os.replace``), and not at all if it raises.
    The temporary files of writers killed before (their process gone) are removed."""
    for old in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            crashpoint("mid_write")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class RunFolder:
    """The files of one run. ``path`` is ``<root>/<eval>/<run id>``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def eval_name(self) -> str:
        return self.path.parent.name

    @property
    def results_root(self) -> Path:
        return self.path.parent.parent

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.sqlite"

    @property
    def responses_path(self) -> Path:
        return self.path / "responses.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def cache_path(self) -> Path:
        return cache_path(self.results_root, self.read_info().get("endpoint", "emulator"))

    def read_info(self) -> dict[str, Any]:
        return json.loads((self.path / "run.json").read_text())

    def write_info(self, info: dict[str, Any]) -> None:
        write_atomic(self.path / "run.json", json.dumps(info, indent=2) + "\n")

    @classmethod
    def create(cls, root: Path, eval_name: str, run_id: str) -> RunFolder:
        path = root / eval_name / run_id
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)


def iter_run_folders(root: Path) -> Iterator[RunFolder]:
    """Every run folder under a results root, oldest first (by run id, then by
    ``created_at`` within one second). Hidden folders are
    none (``.cache``; a ``.ID.partial`` a run killed while expanding left behind)."""
    if not root.is_dir():
        return
    found = [
        p.parent
        for p in root.glob("*/*/run.json")
        if not p.parent.name.startswith(".") and not p.parent.parent.name.startswith(".")
    ]
    found.sort(key=lambda p: p.name)
    # A run id starts with its creation time to the second: runs made within one second
    # are ordered by run.json's ``created_at`` (microseconds), not by their ids' random
    # tails. Only those run.json files are read.
    i = 0
    while i < len(found):
        j = i + 1
        while j < len(found) and found[j].name[:15] == found[i].name[:15]:
            j += 1
        if j - i > 1:
            found[i:j] = sorted(found[i:j], key=lambda p: (_created_at(p), p.name))
        i = j
    for path in found:
        yield RunFolder(path)


def _created_at(path: Path) -> str:
    try:
        return str(json.loads((path / "run.json").read_bytes()).get("created_at", ""))
    except (OSError, ValueError, AttributeError):
        return ""


LATEST = "latest"
"""The run reference of the newest run under a results root (``latest:EVAL``: of one eval)."""


def resolve_run(ref: str | os.PathLike[str], root: Path) -> RunFolder:
    """A run id (searched under ``root``), a run folder's path, ``latest`` (the newest run
    under ``root``, by run id: ids start with their creation time) or ``latest:EVAL`` (the
    newest of one eval) -> its RunFolder. A folder of that name wins over ``latest``."""
    path = Path(ref)
    if (path / "run.json").is_file():
        return RunFolder(path.resolve())
    name = str(ref)
    if name == LATEST or name.startswith(f"{LATEST}:"):
        return _latest(root, name.partition(":")[2] or None)
    matches = [f for f in iter_run_folders(root) if f.id == str(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        where = ", ".join(str(m.path) for m in matches)
        raise RunNotFound(f"run id {ref!r} is ambiguous under {root}: {where}; pass the folder")
    raise RunNotFound(
        f"no run {str(ref)!r}: not a run folder (no run.json) and no run with that id under "
        f"{root}; `batchmark status --results {root}` lists the runs"
    )


def _latest(root: Path, eval_name: str | None) -> RunFolder:
    runs = [
        f for f in iter_run_folders(root) if eval_name is None or f.path.parent.name == eval_name
    ]
    if runs:
        return runs[-1]  # iter_run_folders: oldest first, to the microsecond
    of = f" of eval {eval_name!r}" if eval_name else ""
    raise RunNotFound(
        f"no run{of} under {root} yet, so `latest` names none; `batchmark status --results "
        f"{root}` lists the runs"
    )
