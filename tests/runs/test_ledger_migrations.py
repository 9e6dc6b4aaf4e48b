"""The store's schemas and migrations: one squashed schema per file, registered by
decorator, applied on open; files of the pre-release chain adopted, files of part of a
chain (or of a newer version) refused with a clear message."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from batchmark._errors import StoreError
from batchmark.runs._ledger import Ledger
from batchmark.runs._migrations import Migrations
from batchmark.runs._schema import LEDGER_BLOBS, cache_migrations, ledger_migrations
from batchmark.runs._sqlite import connect_store
from batchmark.runs._store import ResponseCache

# The pre-release chain (m001-m004, c001-c002) as it was before the squash, data copies
# left out: applied in order to an empty file, it builds the schema "0001_schema" must
# equal (the ledger's plus scores.spec_hash).
_OLD_LEDGER_CHAIN = {
    "m001_initial": """
        CREATE TABLE requests (custom_id TEXT PRIMARY KEY, seq INTEGER NOT NULL,
            variant TEXT NOT NULL, model_key TEXT NOT NULL, model TEXT NOT NULL,
            row_id TEXT NOT NULL, epoch INTEGER NOT NULL, cache_key TEXT NOT NULL,
            params BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            intent_id INTEGER, batch_id TEXT);
        CREATE INDEX requests_by_state ON requests (state, seq);
        CREATE INDEX requests_by_batch ON requests (batch_id);
        CREATE INDEX requests_by_intent ON requests (intent_id);
        CREATE TABLE intents (id INTEGER PRIMARY KEY, created_at REAL NOT NULL,
            n_requests INTEGER NOT NULL, status TEXT NOT NULL, batch_id TEXT);
        CREATE TABLE batches (batch_id TEXT PRIMARY KEY, intent_id INTEGER, created_at TEXT,
            n_requests INTEGER NOT NULL, status TEXT NOT NULL, counts TEXT,
            collected INTEGER NOT NULL DEFAULT 0, adopted INTEGER NOT NULL DEFAULT 0,
            recorded_at REAL NOT NULL);
        CREATE TABLE responses (custom_id TEXT NOT NULL, attempt INTEGER NOT NULL,
            batch_id TEXT, status TEXT NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (custom_id, attempt));
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    "m002_judges_and_scores": """
        ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'candidate';
        ALTER TABLE requests ADD COLUMN parent_id TEXT;
        ALTER TABLE requests ADD COLUMN scorer TEXT;
        CREATE INDEX requests_by_kind ON requests (kind, seq);
        CREATE TABLE scores (custom_id TEXT NOT NULL, scorer TEXT NOT NULL, value REAL,
            passed INTEGER, invalid INTEGER NOT NULL DEFAULT 0,
            explanation TEXT NOT NULL DEFAULT '', answer TEXT,
            PRIMARY KEY (custom_id, scorer));
    """,
    "m003_params_apart": """
        CREATE TABLE params (seq INTEGER PRIMARY KEY, params BLOB NOT NULL);
        CREATE TABLE requests_narrow (seq INTEGER PRIMARY KEY, custom_id TEXT NOT NULL UNIQUE,
            variant TEXT NOT NULL, model_key TEXT NOT NULL, model TEXT NOT NULL,
            row_id TEXT NOT NULL, epoch INTEGER NOT NULL, cache_key TEXT NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, intent_id INTEGER,
            batch_id TEXT, kind TEXT NOT NULL DEFAULT 'candidate', parent_id TEXT,
            scorer TEXT);
        DROP TABLE requests;
        ALTER TABLE requests_narrow RENAME TO requests;
        CREATE INDEX requests_by_state ON requests (state, seq);
        CREATE INDEX requests_by_batch ON requests (batch_id) WHERE batch_id IS NOT NULL;
        CREATE INDEX requests_by_intent ON requests (intent_id) WHERE intent_id IS NOT NULL;
        CREATE INDEX requests_by_kind ON requests (kind, seq);
        CREATE TABLE responses_by_seq (seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
            batch_id TEXT, status TEXT NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (seq, attempt));
        DROP TABLE responses;
        ALTER TABLE responses_by_seq RENAME TO responses;
    """,
    "m004_scores_by_seq": """
        CREATE TABLE scores_by_seq (seq INTEGER NOT NULL, scorer TEXT NOT NULL, value REAL,
            passed INTEGER, invalid INTEGER NOT NULL DEFAULT 0,
            explanation TEXT NOT NULL DEFAULT '', answer TEXT, PRIMARY KEY (seq, scorer));
        DROP TABLE scores;
        ALTER TABLE scores_by_seq RENAME TO scores;
    """,
}
_OLD_CACHE_CHAIN = {
    "c001_initial": "CREATE TABLE responses (cache_key TEXT PRIMARY KEY, data BLOB NOT NULL, "
    "created_at REAL NOT NULL);",
    "c002_staged": "CREATE TABLE staged (cache_key TEXT NOT NULL, data BLOB NOT NULL, "
    "created_at REAL NOT NULL);",
}


def _old_file(path: Path, chain: dict[str, str]) -> None:
    """A file as the pre-release chain left it, its migrations recorded by name."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in chain.items():
        db.executescript(sql)
        db.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    db.close()


def _schema(db: sqlite3.Connection) -> dict[str, object]:
    """Every table and index of ``db``, as SQLite describes them: a table's columns
    (name, type, not null, default, primary key position), an index's table, columns,
    uniqueness, origin and condition. Auto-indexes are keyed by their table."""
    found: dict[str, object] = {}
    for kind, name, table, sql in db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    ):
        if kind == "table":
            found[name] = [row[1:6] for row in db.execute(f"PRAGMA table_xinfo({name})")]
        else:
            flags = next(r[2:] for r in db.execute(f"PRAGMA index_list({table})") if r[1] == name)
            columns = [r[2] for r in db.execute(f"PRAGMA index_info({name})")]
            where = re.sub(r"\s+", " ", sql.partition(" WHERE ")[2]) if sql else ""
            key = f"{table}:auto" if name.startswith("sqlite_autoindex") else name
            found[key] = (table, columns, flags, where)
    return found


def test_a_new_ledger_has_the_schema_the_pre_release_chain_ended_with_plus_spec_hash(
    tmp_path: Path,
) -> None:
    _old_file(tmp_path / "old.sqlite", _OLD_LEDGER_CHAIN)
    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("ALTER TABLE scores ADD COLUMN spec_hash TEXT")
    old.executescript(LEDGER_BLOBS)  # and what the migrations after 0001_schema add
    expected = _schema(old)
    old.close()

    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        assert _schema(ledger.db) == expected
        columns = [r[1:4] for r in ledger.db.execute("PRAGMA table_info(scores)")]
        assert columns[-1] == ("spec_hash", "TEXT", 0)  # nullable, last
    finally:
        ledger.close()


def test_a_new_cache_has_the_schema_the_pre_release_chain_ended_with(tmp_path: Path) -> None:
    _old_file(tmp_path / "old.sqlite", _OLD_CACHE_CHAIN)
    old = sqlite3.connect(tmp_path / "old.sqlite")
    expected = _schema(old)
    old.close()

    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        assert _schema(cache.db) == expected
    finally:
        cache.close()


def test_the_schema_keeps_its_comments_in_the_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        (sql,) = ledger.db.execute("SELECT sql FROM sqlite_master WHERE name = 'requests'")
        assert "-- pending | waiting | submitting | submitted | done | failed" in sql[0]
    finally:
        ledger.close()


def test_pending_lists_the_schema_for_a_new_file_and_nothing_once_opened(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = connect_store(path)
    assert ledger_migrations.pending(db) == ["0001_schema", "0002_blobs"]
    assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)  # nothing ran
    db.close()

    Ledger(path).close()
    db = connect_store(path)
    try:
        assert ledger_migrations.pending(db) == []
        applied = [r[0] for r in db.execute("SELECT name FROM _migrations")]
        assert applied == ["0001_schema", "0002_blobs"]
    finally:
        db.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_ledger_of_the_pre_release_chain_is_adopted_with_spec_hash_added(
    tmp_path: Path, readonly: bool
) -> None:
    """A run the pre-release build made (finished, or left in flight) stays readable and
    resumable: the chain ended with the current tables but for ``scores.spec_hash``."""
    path = tmp_path / "ledger.sqlite"
    _old_file(path, _OLD_LEDGER_CHAIN)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO scores (seq, scorer, value) VALUES (0, 'exact_match', 1.0)")
    db.commit()
    db.close()

    ledger = Ledger(path, readonly=readonly)
    try:
        assert ledger_migrations.pending(ledger.db) == []
        row = ledger.db.execute("SELECT scorer, value, spec_hash FROM scores").fetchall()
        assert row == [("exact_match", 1.0, None)]  # kept, from before spec hashes
    finally:
        ledger.close()
    new = Ledger(tmp_path / "new.sqlite")
    adopted = Ledger(path)
    try:
        assert _schema(adopted.db) == _schema(new.db)
    finally:
        new.close()
        adopted.close()


def test_a_ledger_of_part_of_the_pre_release_chain_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    partial = dict(list(_OLD_LEDGER_CHAIN.items())[:3])  # a build before m004_scores_by_seq
    _old_file(path, partial)

    for readonly in (False, True):
        with pytest.raises(StoreError) as refused:
            Ledger(path, readonly=readonly)
        message = str(refused.value)
        assert message.startswith(f"{path}: this ledger was written by another version")
        assert "m001_initial" in message and "`batchmark run CONFIG`" in message
    db = sqlite3.connect(path)
    try:  # nothing was applied to it
        assert [r[0] for r in db.execute("SELECT name FROM _migrations")] == list(partial)
    finally:
        db.close()


def test_a_cache_of_the_pre_release_chain_is_adopted_with_the_answers_it_holds(
    tmp_path: Path,
) -> None:
    """Every user's shared cache was made by that chain: its answers were paid for."""
    path = tmp_path / "responses-emulator.sqlite"
    _old_file(path, _OLD_CACHE_CHAIN)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO responses VALUES ('k1', ?, 0)", (b'{"text": "one"}',))
    db.execute("INSERT INTO staged VALUES ('k2', ?, 0)", (b'{"text": "two"}',))  # killed run
    db.commit()
    db.close()

    cache = ResponseCache(path)
    try:
        assert cache.get_many(["k1", "k2"]) == {"k1": {"text": "one"}, "k2": {"text": "two"}}
        assert cache_migrations.pending(cache.db) == []
        applied = {r[0] for r in cache.db.execute("SELECT name FROM _migrations")}
        assert applied == {*_OLD_CACHE_CHAIN, "0001_schema"}
    finally:
        cache.close()
    new = ResponseCache(tmp_path / "new.sqlite")
    adopted = ResponseCache(path)
    try:
        assert _schema(adopted.db) == _schema(new.db)
    finally:
        new.close()
        adopted.close()


def test_a_cache_of_part_of_a_chain_is_refused_with_a_hint_to_move_it_aside(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses-emulator.sqlite"
    _old_file(path, {"c001_initial": _OLD_CACHE_CHAIN["c001_initial"]})

    with pytest.raises(StoreError, match=re.escape(f"`mv {path} {path}.old`")) as refused:
        ResponseCache(path)
    assert "c001_initial" in str(refused.value)


def test_migrations_apply_in_order_each_in_its_own_transaction(tmp_path: Path) -> None:
    registry = Migrations("thing", hint="move {file} aside")

    @registry.migration("0001_first")
    def _first(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE first (x)")

    @registry.migration("0002_broken")
    def _broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE second (x)")
        raise RuntimeError("half way")

    db = connect_store(tmp_path / "thing.sqlite")
    try:
        with pytest.raises(RuntimeError, match="half way"):
            registry.apply(db, "thing.sqlite")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"_migrations", "first"}  # the broken one left nothing behind
        assert registry.pending(db) == ["0002_broken"]
    finally:
        db.close()


def test_a_migration_name_is_registered_once() -> None:
    registry = Migrations("thing", hint="")
    registry.migration("0001_schema")(lambda db: None)
    with pytest.raises(ValueError, match="registered twice"):
        registry.migration("0001_schema")(lambda db: None)


def test_the_cache_and_the_ledger_start_from_one_schema_migration_each() -> None:
    assert ledger_migrations.names[0] == "0001_schema"
    assert ledger_migrations.names[1:] == ["0002_blobs"]  # later changes: new migrations
    assert cache_migrations.names == ["0001_schema"]
