"""Ledger migrations: a ledger written by an earlier version opens, migrated, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from batchmark.runs._responses import final_responses
from batchmark.runs._store import LEDGER_MIGRATIONS, Ledger, _connect, _migrate


def _old_ledger(path: Path, upto: str) -> None:
    """A ledger as the version whose last migration was ``upto`` left it, with data."""
    names = [name for name, _ in LEDGER_MIGRATIONS]
    db = _connect(path)
    _migrate(db, LEDGER_MIGRATIONS[: names.index(upto) + 1])
    rows = [
        (
            f"v-m-r{i}",
            10 + i,
            "v",
            "m",
            "model-x",
            f"r{i}",
            0,
            f"key{i}",
            orjson.dumps({"i": i}),
            state,
            attempts,
            None,
            "msgbatch_1" if state != "pending" else None,
        )
        for i, (state, attempts) in enumerate([("done", 1), ("failed", 3), ("pending", 0)])
    ]
    db.executemany(
        "INSERT INTO requests (custom_id, seq, variant, model_key, model, row_id, epoch, "
        "cache_key, params, state, attempts, intent_id, batch_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute(
        "UPDATE requests SET kind = 'judge', parent_id = 'v-m-r0', scorer = 'j' WHERE seq = 12"
    )
    db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?)", _OLD_RESPONSES)
    db.close()


# (custom_id, attempt, batch_id, status, data), in no particular order: v-m-r1 failed
# after three attempts, v-m-r0 succeeded at its first.
_OLD_RESPONSES = [
    ("v-m-r1", 3, "msgbatch_3", "errored", b'{"error_type":"overloaded_error","n":3}'),
    ("v-m-r0", 1, "msgbatch_1", "succeeded", b'{"text":"yes"}'),
    ("v-m-r1", 1, "msgbatch_1", "expired", b'{"error_type":"expired","n":1}'),
    ("v-m-r1", 2, None, "missing", b'{"error_type":"batch_not_found","n":2}'),
]


def test_params_move_to_their_own_table_and_every_column_survives(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "m002_judges_and_scores")
    before = (
        sqlite3.connect(path)
        .execute(
            "SELECT custom_id, seq, variant, model_key, model, row_id, epoch, cache_key, state, "
            "attempts, intent_id, batch_id, kind, parent_id, scorer, params "
            "FROM requests ORDER BY seq"
        )
        .fetchall()
    )

    ledger = Ledger(path)
    after = ledger.db.execute(
        "SELECT q.custom_id, q.seq, q.variant, q.model_key, q.model, q.row_id, q.epoch, "
        "q.cache_key, q.state, q.attempts, q.intent_id, q.batch_id, q.kind, q.parent_id, "
        "q.scorer, p.params FROM requests q JOIN params p ON p.seq = q.seq ORDER BY q.seq"
    ).fetchall()
    columns = [r[1] for r in ledger.db.execute("PRAGMA table_info(requests)")]
    indexes = {r[1] for r in ledger.db.execute("PRAGMA index_list(requests)")}
    responses = ledger.db.execute("SELECT count(*) FROM responses").fetchone()[0]
    ledger.close()

    assert after == before and len(after) == 3
    assert "params" not in columns
    assert {"requests_by_state", "requests_by_batch", "requests_by_intent"} <= indexes
    assert {"requests_by_kind"} <= indexes
    assert responses == len(_OLD_RESPONSES)
    assert Ledger(path).state_counts() == {"done": 1, "failed": 1, "pending": 1}  # reopens


def test_custom_ids_stay_unique_after_the_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "m002_judges_and_scores")
    ledger = Ledger(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            ledger.db.execute(
                "INSERT INTO requests (seq, custom_id, variant, model_key, model, row_id, "
                "epoch, cache_key, state) VALUES (99, 'v-m-r0', 'v', 'm', 'x', 'r', 0, 'k', "
                "'pending')"
            )
    finally:
        ledger.close()


def test_responses_are_keyed_by_seq_each_attached_to_its_request_and_attempt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "m002_judges_and_scores")
    seq_of = dict(sqlite3.connect(path).execute("SELECT custom_id, seq FROM requests"))

    ledger = Ledger(path)
    stored = ledger.db.execute(
        "SELECT seq, attempt, batch_id, status, data FROM responses ORDER BY seq, attempt"
    ).fetchall()
    columns = ledger.db.execute("PRAGMA table_info(responses)").fetchall()
    key = [c[1] for c in sorted(columns, key=lambda c: c[5]) if c[5]]
    final = {r["custom_id"]: (r["attempts"], r["status"]) for r in final_responses(ledger)}
    ledger.close()

    assert stored == sorted((seq_of[c], *rest) for c, *rest in _OLD_RESPONSES)
    assert key == ["seq", "attempt"]
    # The readers find each request's last attempt through the new key.
    assert final == {"v-m-r0": (1, "succeeded"), "v-m-r1": (3, "errored")}


def test_scores_are_keyed_by_seq_each_item_keeping_its_scorers_order(tmp_path: Path) -> None:
    from batchmark.runs._scoring import iter_scores

    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "m002_judges_and_scores")
    names = [name for name, _ in LEDGER_MIGRATIONS]
    db = _connect(path)
    _migrate(db, LEDGER_MIGRATIONS[: names.index("m003_params_apart") + 1])  # scores by id
    # (custom_id, scorer, value, passed, invalid, explanation, answer), written item by item
    # in an order that is neither the items' seq order nor the scorers' names' order
    old = [
        ("v-m-r1", "zeta", 0.0, 0, 0, "expected 4", '"5"'),
        ("v-m-r1", "alpha", None, None, 1, "unparseable verdict", None),
        ("v-m-r0", "zeta", 1.0, 1, 0, "", '"4"'),
        ("v-m-r0", "alpha", 0.5, None, 0, "half", None),
    ]
    db.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", old)
    db.commit()
    seq_of = dict(db.execute("SELECT custom_id, seq FROM requests"))
    db.close()

    ledger = Ledger(path)
    stored = ledger.db.execute(
        "SELECT seq, scorer, value, passed, invalid, explanation, answer FROM scores"
    ).fetchall()
    columns = ledger.db.execute("PRAGMA table_info(scores)").fetchall()
    key = [c[1] for c in sorted(columns, key=lambda c: c[5]) if c[5]]
    records = [(r["custom_id"], r["scorer"], r["score"], r["passed"]) for r in iter_scores(ledger)]
    ledger.close()

    assert sorted(stored) == sorted((seq_of[c], *rest) for c, *rest in old)
    assert key == ["seq", "scorer"]
    # grid order (r0 before r1), and within an item the order its scorers were written in
    assert records == [
        ("v-m-r0", "zeta", 1.0, True),
        ("v-m-r0", "alpha", 0.5, None),
        ("v-m-r1", "zeta", 0.0, False),
        ("v-m-r1", "alpha", None, None),
    ]


def test_scores_from_before_spec_hashes_open_with_none(tmp_path: Path) -> None:
    from batchmark.runs._scoring import iter_scores, stored_spec_hashes

    path = tmp_path / "ledger.sqlite"
    _old_ledger(path, "m002_judges_and_scores")
    db = _connect(path)
    names = [name for name, _ in LEDGER_MIGRATIONS]
    _migrate(db, LEDGER_MIGRATIONS[: names.index("m004_scores_by_seq") + 1])
    db.execute("INSERT INTO scores VALUES (10, 'exact', 1.0, 1, 0, '', NULL)")
    db.commit()
    db.close()

    ledger = Ledger(path)
    [record] = iter_scores(ledger)
    specs = stored_spec_hashes(ledger)
    ledger.close()

    assert (record["scorer"], record["score"], record["spec_hash"]) == ("exact", 1.0, None)
    assert specs == {"exact": []}  # not checked by reports: no provenance to compare


def test_a_cache_from_before_staging_opens_with_its_entries(tmp_path: Path) -> None:
    from batchmark.runs._store import CACHE_MIGRATIONS, ResponseCache

    path = tmp_path / "cache.sqlite"
    db = _connect(path)
    _migrate(db, CACHE_MIGRATIONS[:1])
    db.execute("INSERT INTO responses VALUES ('k1', ?, 0)", (b'{"text":"old"}',))
    db.close()

    cache = ResponseCache(path)
    cache.merge_staged()  # nothing staged: a no-op
    try:
        assert cache.get_many(["k1", "k2"]) == {"k1": {"text": "old"}}
        assert cache.db.execute("SELECT count(*) FROM staged").fetchone() == (0,)
    finally:
        cache.close()
