"""Run folders, the ledger and the response cache.

A run lives in ``<results root>/<eval name>/<run id>/``::

    run.json          the run's identity: id, eval, config path and hash, endpoint, times
    config.yaml       the config exactly as it was read
    ledger.sqlite     requests, submission intents, batches, responses (the source of truth)
    responses.jsonl   the final response of every request, written when the run completes
    summary.json      counts, tokens and cost per model x variant, written at completion

The ledger and the cache are SQLite databases in WAL mode with append-only named
migrations (recorded in ``_migrations``, applied on every open). Every state change is
one transaction, so a process killed at any instant leaves a consistent ledger.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from batchmark._errors import RunNotFound

__all__ = [
    "CACHE_DIRNAME",
    "Ledger",
    "ResponseCache",
    "RunFolder",
    "cache_path",
    "endpoint_name",
    "redact_url",
    "resolve_run",
    "write_atomic",
]

CACHE_DIRNAME = ".cache"

Migration = Callable[[sqlite3.Connection], None]


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection whose errors name its file; ``readonly``: one that never writes (see
    ``batchmark.runs._sqlite``: it also opens a ledger in a read-only folder)."""
    from batchmark.runs._sqlite import connect, connect_readonly

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


def _migrate(db: sqlite3.Connection, migrations: list[tuple[str, Migration]]) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    for name, fn in migrations:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class _Transactions:
    """``with db.transaction():`` — BEGIN IMMEDIATE … COMMIT, ROLLBACK on error."""

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


# --- the ledger -----------------------------------------------------------------------


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    (``executescript`` would COMMIT first, breaking the migration's atomicity.)
    """
    for statement in sql.split(";"):
        lines = [ln.split("--")[0] for ln in statement.splitlines()]
        if "".join(lines).strip():
            db.execute("\n".join(lines))


def _m001_initial(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE requests (
            custom_id TEXT PRIMARY KEY,
            seq       INTEGER NOT NULL,
            variant   TEXT NOT NULL,
            model_key TEXT NOT NULL,
            model     TEXT NOT NULL,
            row_id    TEXT NOT NULL,
            epoch     INTEGER NOT NULL,
            cache_key TEXT NOT NULL,
            params    BLOB NOT NULL,
            state     TEXT NOT NULL,      -- pending | submitting | submitted | done | failed
            attempts  INTEGER NOT NULL DEFAULT 0,
            intent_id INTEGER,
            batch_id  TEXT
        );
        CREATE INDEX requests_by_state ON requests (state, seq);
        CREATE INDEX requests_by_batch ON requests (batch_id);
        CREATE INDEX requests_by_intent ON requests (intent_id);
        CREATE TABLE intents (
            id          INTEGER PRIMARY KEY,
            created_at  REAL NOT NULL,    -- local clock, just before create was sent
            n_requests  INTEGER NOT NULL,
            status      TEXT NOT NULL,    -- open | created | abandoned
            batch_id    TEXT
        );
        CREATE TABLE batches (
            batch_id     TEXT PRIMARY KEY,
            intent_id    INTEGER,
            created_at   TEXT,
            n_requests   INTEGER NOT NULL,
            status       TEXT NOT NULL,   -- in_progress | canceling | ended | lost
            counts       TEXT,
            collected    INTEGER NOT NULL DEFAULT 0,
            adopted      INTEGER NOT NULL DEFAULT 0,
            recorded_at  REAL NOT NULL
        );
        CREATE TABLE responses (
            custom_id  TEXT NOT NULL,
            attempt    INTEGER NOT NULL,
            batch_id   TEXT,
            status     TEXT NOT NULL,    -- succeeded | errored | expired | canceled | missing
            data       BLOB NOT NULL,
            PRIMARY KEY (custom_id, attempt)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )


def _m002_judges_and_scores(db: sqlite3.Connection) -> None:
    """Judge requests share the requests table (and so the batch machinery); scores."""
    _script(
        db,
        """
        ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'candidate';
        ALTER TABLE requests ADD COLUMN parent_id TEXT;   -- a judge request's candidate
        ALTER TABLE requests ADD COLUMN scorer TEXT;      -- a judge request's judge
        CREATE INDEX requests_by_kind ON requests (kind, seq);
        CREATE TABLE scores (
            custom_id   TEXT NOT NULL,    -- the candidate request
            scorer      TEXT NOT NULL,
            value       REAL,
            passed      INTEGER,
            invalid     INTEGER NOT NULL DEFAULT 0,
            explanation TEXT NOT NULL DEFAULT '',
            answer      TEXT,             -- JSON of what was extracted / compared
            PRIMARY KEY (custom_id, scorer)
        );
        """,
    )


def _m003_params_apart(db: sqlite3.Connection) -> None:
    """Params move to their own table; ``seq`` becomes the requests table's row id and
    the key of responses.

    Every state change rewrites a request's whole row: with its ~400-byte params inside,
    marking 100,000 requests done rewrote ~50 MB and took most of ingestion's time.
    Narrow rows, stored in grid order (``seq`` is the row id), make those updates
    sequential and 5x cheaper. Params are read only to build a create body and to score.

    Responses are keyed by ``(seq, attempt)`` instead of ``(custom_id, attempt)``: results
    arrive in random order, and a random insert into an integer B-tree costs less than
    one into a text B-tree of ~60-byte keys; reading them back joins on an integer too.
    """
    _script(
        db,
        """
        CREATE TABLE params (
            seq    INTEGER PRIMARY KEY,   -- requests.seq
            params BLOB NOT NULL          -- the Messages API params, as JSON
        );
        INSERT INTO params (seq, params) SELECT seq, params FROM requests;
        CREATE TABLE requests_narrow (
            seq       INTEGER PRIMARY KEY,
            custom_id TEXT NOT NULL UNIQUE,
            variant   TEXT NOT NULL,
            model_key TEXT NOT NULL,
            model     TEXT NOT NULL,
            row_id    TEXT NOT NULL,
            epoch     INTEGER NOT NULL,
            cache_key TEXT NOT NULL,
            state     TEXT NOT NULL,      -- pending | submitting | submitted | done | failed
            attempts  INTEGER NOT NULL DEFAULT 0,
            intent_id INTEGER,
            batch_id  TEXT,
            kind      TEXT NOT NULL DEFAULT 'candidate',
            parent_id TEXT,               -- a judge request's candidate
            scorer    TEXT                -- a judge request's judge
        );
        INSERT INTO requests_narrow (seq, custom_id, variant, model_key, model, row_id, epoch,
            cache_key, state, attempts, intent_id, batch_id, kind, parent_id, scorer)
        SELECT seq, custom_id, variant, model_key, model, row_id, epoch, cache_key, state,
            attempts, intent_id, batch_id, kind, parent_id, scorer
        FROM requests ORDER BY seq;
        DROP TABLE requests;
        ALTER TABLE requests_narrow RENAME TO requests;
        CREATE INDEX requests_by_state ON requests (state, seq);
        CREATE INDEX requests_by_batch ON requests (batch_id) WHERE batch_id IS NOT NULL;
        CREATE INDEX requests_by_intent ON requests (intent_id) WHERE intent_id IS NOT NULL;
        CREATE INDEX requests_by_kind ON requests (kind, seq);
        CREATE TABLE responses_by_seq (
            seq        INTEGER NOT NULL,  -- requests.seq
            attempt    INTEGER NOT NULL,
            batch_id   TEXT,
            status     TEXT NOT NULL,     -- succeeded | errored | expired | canceled | missing
            data       BLOB NOT NULL,
            PRIMARY KEY (seq, attempt)
        );
        -- Every response was written for a request of the ledger (none is ever deleted):
        -- the join finds each one's seq. One without a request would be dropped, but no
        -- reader could reach it anyway (they all join requests).
        INSERT INTO responses_by_seq (seq, attempt, batch_id, status, data)
        SELECT q.seq, r.attempt, r.batch_id, r.status, r.data
        FROM responses r JOIN requests q ON q.custom_id = r.custom_id
        ORDER BY q.seq, r.attempt;
        DROP TABLE responses;
        ALTER TABLE responses_by_seq RENAME TO responses
        """,
    )


def _m004_scores_by_seq(db: sqlite3.Connection) -> None:
    """Scores are keyed by ``(seq, scorer)`` instead of ``(custom_id, scorer)``.

    Scoring writes a row per item and scorer in grid order: with an integer key that is an
    append to the key index instead of an insert into a text B-tree of ~60-byte keys, and
    reports join scores to requests on the requests' row id. Each item keeps its scorers'
    order (the row ids are copied in the order they were).
    """
    _script(
        db,
        """
        CREATE TABLE scores_by_seq (
            seq         INTEGER NOT NULL,  -- requests.seq of the candidate
            scorer      TEXT NOT NULL,
            value       REAL,
            passed      INTEGER,
            invalid     INTEGER NOT NULL DEFAULT 0,
            explanation TEXT NOT NULL DEFAULT '',
            answer      TEXT,              -- JSON of what was extracted / compared
            PRIMARY KEY (seq, scorer)
        );
        INSERT INTO scores_by_seq (seq, scorer, value, passed, invalid, explanation, answer)
        SELECT q.seq, s.scorer, s.value, s.passed, s.invalid, s.explanation, s.answer
        FROM scores s JOIN requests q ON q.custom_id = s.custom_id
        ORDER BY q.seq, s.rowid;
        DROP TABLE scores;
        ALTER TABLE scores_by_seq RENAME TO scores
        """,
    )


def _m005_scores_spec_hash(db: sqlite3.Connection) -> None:
    """Each score records the spec hash of the scorer config that made it (``NULL`` for
    scores written before)."""
    db.execute("ALTER TABLE scores ADD COLUMN spec_hash TEXT")


LEDGER_MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", _m001_initial),
    ("m002_judges_and_scores", _m002_judges_and_scores),
    ("m003_params_apart", _m003_params_apart),
    ("m004_scores_by_seq", _m004_scores_by_seq),
    ("m005_scores_spec_hash", _m005_scores_spec_hash),
]


class Ledger(_Transactions):
    """The run's SQLite ledger. One writer: the process running or resuming the run."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (or create) the ledger; ``readonly`` for a reader that never writes (an
        older ledger is still migrated first). A damaged file, a full disk or a folder
        that cannot be written is a ``StoreError`` naming the file and what to do."""
        from batchmark.runs._sqlite import pending_migrations, store_errors

        self.path = path
        with store_errors(path):
            if path.exists() and path.stat().st_size == 0:  # a new ledger has no file yet
                raise sqlite3.DatabaseError("the file is empty")
            self.db = _connect(path, readonly=readonly)
            if readonly and pending_migrations(self.db, [n for n, _ in LEDGER_MIGRATIONS]):
                self.db.close()
                self.db, readonly = _connect(path), False
            if not readonly:
                _migrate(self.db, LEDGER_MIGRATIONS)
            # The absolute path of the file opened (whatever the working directory
            # becomes): for other connections to it (``reader``, the cache's ATTACH).
            self.file: str = next(
                str(file)
                for _, name, file in self.db.execute("PRAGMA database_list")
                if name == "main"
            )

    def reader(self) -> sqlite3.Connection:
        """A new read-only connection, for another thread to read through and close.

        ``self.db`` belongs to the thread that opened the ledger (SQLite connections are
        per thread); in WAL mode readers run beside that one writer without blocking it.
        """
        uri = Path(self.file).as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    # meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # counts
    def state_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, count(*) FROM requests GROUP BY state")
        return {state: n for state, n in rows}

    def total_requests(self) -> int:
        return self.db.execute("SELECT count(*) FROM requests").fetchone()[0]

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

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, tuple(args))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# --- the response cache ----------------------------------------------------------------


def _c001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE responses (cache_key TEXT PRIMARY KEY, data BLOB NOT NULL, "
        "created_at REAL NOT NULL)"
    )


def _c002_staged(db: sqlite3.Connection) -> None:
    """Answers staged by collects still running, merged into ``responses`` per batch.

    The key index of ``responses`` is a B-tree of hashes: each insert lands on a random
    page. Copied 10,000 at a time as a collect goes, a large cache rewrote most of its
    index pages for every chunk; staged (an append, no index) and merged once per batch,
    in key order, each page is written about once per batch.
    """
    db.execute(
        "CREATE TABLE staged (cache_key TEXT NOT NULL, data BLOB NOT NULL, "
        "created_at REAL NOT NULL)"
    )


CACHE_MIGRATIONS: list[tuple[str, Migration]] = [
    ("c001_initial", _c001_initial),
    ("c002_staged", _c002_staged),
]


class ResponseCache(_Transactions):
    """Succeeded responses keyed by the hash of the full request content."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the cache; a damaged file, a full disk or a folder that cannot
        be written is a ``StoreError`` naming the file (and ``--no-cache``)."""
        from batchmark.runs._sqlite import store_errors

        with store_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = _connect(path)
            _migrate(self.db, CACHE_MIGRATIONS)
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
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT cache_key, data FROM responses WHERE cache_key IN ({marks})"
            for key, data in self.db.execute(sql, chunk):
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


def endpoint_name(base_url: str | None, emulated: bool) -> str:
    """The identity of where responses come from: caches never mix endpoints.

    An emulated run must never serve its stand-in answers to a run against the real
    API, so each endpoint (``emulator``, ``api.anthropic.com``, a gateway's host:port)
    has its own cache file.
    """
    if emulated:
        return "emulator"
    if not base_url:
        return "api.anthropic.com"
    parts = urlsplit(base_url)
    netloc = parts.netloc.rpartition("@")[2] if parts.netloc else redact_url(base_url)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", netloc)


REDACTED = "***"


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials, to be written down: user info and query values are
    replaced by ``***`` (a proxy's ``https://user:token@host/`` or ``?key=...``).

    The API key itself is never in a URL batchmark builds; this guards what users pass.
    """
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{pair.partition('=')[0]}={REDACTED}" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def cache_path(root: Path, endpoint: str) -> Path:
    """The response cache of one endpoint under a results root."""
    return root / CACHE_DIRNAME / f"responses-{endpoint}.sqlite"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    """Every run folder under a results root, oldest first by run id."""
    if not root.is_dir():
        return
    found = [p.parent for p in root.glob("*/*/run.json")]
    for path in sorted(found, key=lambda p: p.name):
        yield RunFolder(path)


def resolve_run(ref: str | os.PathLike[str], root: Path) -> RunFolder:
    """A run id (searched under ``root``) or a run folder's path -> its RunFolder."""
    path = Path(ref)
    if (path / "run.json").is_file():
        return RunFolder(path.resolve())
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
