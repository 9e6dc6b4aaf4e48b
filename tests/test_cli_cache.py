"""``batchmark cache stats | clear | prune`` (issue 17): what the response caches hold,
and removing entries by eval, age or because no run asks for them any more, never one
that a run in flight may still be waiting for."""

from __future__ import annotations

import fcntl
import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark
from batchmark._errors import StoreError, UsageError
from batchmark.cli import cli

from .pipeline.support import write_config


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two evals under one results root, asking for different requests (8 + 6), run
    once; each test works on its own copy."""
    where = tmp_path_factory.mktemp("cache")
    results = where / "results"
    batchmark.run(
        write_config(where / "a", name="alpha", models=["claude-haiku-4-5"]),
        results=results,
        emulate=True,
    )
    batchmark.run(
        write_config(
            where / "b",
            name="beta",
            models=["claude-haiku-4-5"],
            prompts=[{"name": "only", "user": "B: {{ question }}"}],
        ),
        results=results,
        emulate=True,
    )
    return results


@pytest.fixture
def runs(built: Path, tmp_path: Path) -> tuple[Path, batchmark.Run, batchmark.Run]:
    results = tmp_path / "results"
    shutil.copytree(built, results)
    (a,) = (results / "alpha").iterdir()
    (b,) = (results / "beta").iterdir()
    return results, batchmark.open_run(a), batchmark.open_run(b)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _stats(results: Path) -> dict:
    code, out = _cli("cache", "stats", "--results", str(results), "--format", "json")
    assert code == 0, out
    (only,) = json.loads(out)
    return only


def _keys(run: batchmark.Run) -> set[str]:
    db = sqlite3.connect(run.path / "ledger.sqlite")
    try:
        return {k for (k,) in db.execute("SELECT cache_key FROM requests")}
    finally:
        db.close()


def _cached(cache: Path) -> set[str]:
    db = sqlite3.connect(cache)
    try:
        return {k for (k,) in db.execute("SELECT cache_key FROM responses")}
    finally:
        db.close()


def test_stats_counts_entries_per_eval_and_unreferenced(runs: tuple) -> None:
    results, a, b = runs
    stats = _stats(results)
    shares = {s["eval"]: s for s in stats["evals"]}
    assert shares["alpha"]["entries"] == len(_keys(a)) == a.status.total
    assert shares["beta"]["entries"] == len(_keys(b)) == b.status.total
    assert stats["entries"] == a.status.total + b.status.total
    assert stats["unreferenced"] == 0
    assert stats["bytes"] > 0 and stats["oldest"] <= stats["newest"]

    total = a.status.total
    shutil.rmtree(a.path)  # its run deleted: its entries are asked for by nobody now
    assert _stats(results)["unreferenced"] == total

    code, out = _cli("cache", "stats", "--results", str(results))
    assert code == 0 and "eval beta" in out and "no run under this root" in out


def test_clear_by_eval_removes_only_its_entries_and_its_next_run_pays_again(
    runs: tuple,
) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    code, out = _cli("cache", "clear", "--eval", "alpha", "--results", str(results))
    assert code == 0, out
    assert f"removed {a.status.total} entries" in out
    assert _cached(cache) == _keys(b)

    again = batchmark.run(a.info["config_path"], results=results, emulate=True)
    assert {r["attempts"] for r in again.responses()} == {1}  # sent again
    b_again = batchmark.run(b.info["config_path"], results=results, emulate=True)
    assert {r["attempts"] for r in b_again.responses()} == {0}  # still cached


def test_prune_removes_what_no_run_asks_for(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    code, out = _cli("cache", "prune", "--results", str(results))
    assert code == 0 and "removed 0 entries" in out
    total = a.status.total
    shutil.rmtree(a.path)
    code, out = _cli("cache", "prune", "--results", str(results), "--dry-run")
    assert code == 0 and f"would remove {total} entries" in out
    assert len(_cached(cache)) == total + b.status.total
    code, out = _cli("cache", "prune", "--results", str(results))
    assert code == 0 and _cached(cache) == _keys(b)


def test_clear_older_than_removes_only_old_entries(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    db = sqlite3.connect(cache)
    with db:
        marks = ",".join("?" * len(_keys(a)))
        db.execute(
            f"UPDATE responses SET created_at = ? WHERE cache_key IN ({marks})",
            (time.time() - 10 * 86400, *_keys(a)),
        )
    db.close()
    code, out = _cli("cache", "clear", "--older-than", "7", "--results", str(results))
    assert code == 0, out
    assert _cached(cache) == _keys(b)


def test_a_run_in_flight_keeps_what_was_written_since_it_started(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    # alpha's run is driven by a process (it holds the run's lock): every entry was
    # written after it started, so a waiting run may still need any of them.
    with open(a.path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out = _cli("cache", "clear", "--results", str(results))
        assert code == 0, out
        assert "removed 0 entries" in out and a.id in out
        assert len(_cached(cache)) == a.status.total + b.status.total
    code, out = _cli("cache", "clear", "--results", str(results))  # it ended
    assert code == 0 and _cached(cache) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clear", "--eval", "gamma"], "no eval 'gamma'"),
        (["clear", "--eval", ".cache"], "no eval '.cache'"),
        (["clear", "--eval", "../results"], "no eval '../results'"),
        (["clear", "--endpoint", "nowhere"], "no response cache for endpoint 'nowhere'"),
        (["clear", "--older-than", "-1"], "0 or more"),
        (["clear", "--older-than", "nan"], "0 or more"),
        (["prune", "--older-than", "nan"], "0 or more"),
    ],
)
def test_bad_options_name_what_exists(runs: tuple, args: list[str], message: str) -> None:
    results, a, b = runs
    result = CliRunner().invoke(cli, ["cache", *args, "--results", str(results)])
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output
    assert len(_cached(a.folder.cache_path)) == a.status.total + b.status.total


def test_stats_of_a_root_without_cache(tmp_path: Path) -> None:
    code, out = _cli("cache", "stats", "--results", str(tmp_path))
    assert code == 0 and "no response cache" in out


def test_prune_keeps_the_entries_of_a_run_whose_run_json_is_damaged(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    (a.path / "run.json").write_text("{damaged")  # which endpoint it used: unknown now
    code, out = _cli("cache", "prune", "--results", str(results))
    assert code == 0, out
    assert _cached(cache) == _keys(a) | _keys(b)  # its ledger still asks for its entries


def test_prune_refuses_when_a_run_ledger_cannot_be_read(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    before = _cached(cache)
    for extra in ("-wal", "-shm"):
        (a.path / f"ledger.sqlite{extra}").unlink(missing_ok=True)
    (a.path / "ledger.sqlite").write_bytes(b"not a database" * 300)
    result = CliRunner().invoke(cli, ["cache", "prune", "--results", str(results)])
    assert result.exit_code != 0
    message = str(result.exception)
    assert str(a.path / "ledger.sqlite") in message and "batchmark doctor" in message
    assert _cached(cache) == before  # nothing removed


def test_a_cache_of_another_version_is_one_clear_error_in_every_command(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / ".cache").mkdir(parents=True)
    cache = results / ".cache" / "responses-emulator.sqlite"
    db = sqlite3.connect(cache)  # the first half of the pre-release chain: no `staged`
    with db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        db.execute("INSERT INTO _migrations VALUES ('c001_initial', 0)")
        db.execute("CREATE TABLE responses (cache_key TEXT PRIMARY KEY, data BLOB, created_at)")
    db.close()
    for command in ("stats", "clear", "prune"):
        result = CliRunner().invoke(cli, ["cache", command, "--results", str(results)])
        assert isinstance(result.exception, StoreError), (command, result.output)
        assert "written by another version" in str(result.exception)


def test_a_cache_file_not_set_up_yet_counts_as_empty(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / ".cache").mkdir(parents=True)
    db = sqlite3.connect(results / ".cache" / "responses-emulator.sqlite")
    db.execute("PRAGMA journal_mode=WAL")  # a run killed between creating it and its tables
    db.close()
    stats = _stats(results)
    assert (stats["entries"], stats["staged"], stats["unreferenced"]) == (0, 0, 0)


def test_clear_by_eval_under_a_missing_results_root_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for command in (["clear", "--eval", "alpha"], ["stats", "--eval", "alpha"]):
        result = CliRunner().invoke(cli, ["cache", *command, "--results", str(missing)])
        assert isinstance(result.exception, UsageError), (command, result.output)
        assert "no eval 'alpha'" in str(result.exception)


def _free_pages(cache: Path) -> int:
    db = sqlite3.connect(cache)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return db.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        db.close()


def test_the_file_is_compacted_only_when_no_run_is_in_flight(runs: tuple) -> None:
    results, a, b = runs
    cache = a.folder.cache_path
    db = sqlite3.connect(cache)
    with db:  # beta's entries written long before anything runs now
        db.execute("UPDATE responses SET data = zeroblob(20000)")  # pages worth freeing
        marks = ",".join("?" * len(_keys(b)))
        db.execute(
            f"UPDATE responses SET created_at = 0 WHERE cache_key IN ({marks})", tuple(_keys(b))
        )
    db.close()
    with open(a.path / ".lock", "w") as lock:
        # alpha's run is driven now: it writes to the cache as it collects, and rewriting
        # the whole file (VACUUM) would hold the write lock the run waits for meanwhile.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out = _cli("cache", "clear", "--eval", "beta", "--results", str(results))
        assert code == 0 and f"removed {b.status.total} entries" in out, out
        assert _free_pages(cache) > 0  # freed pages kept for later answers
    code, out = _cli("cache", "clear", "--eval", "alpha", "--results", str(results))
    assert code == 0 and _cached(cache) == set()
    assert _free_pages(cache) == 0  # nobody in flight: compacted
