"""``run --refresh``: what the response cache held before the run is sent again and
replaced (issue 17: ``--no-cache`` neither reads nor writes, so a stale entry could never
be replaced); answers cached since the run started still count, a resume included."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import orjson
import pytest

import batchmark
from batchmark.cli import main

from .adversarial import start_run
from .support import LiveEmulator, write_config

STALE = "stale answer"


def _make_stale(cache: Path) -> int:
    """Rewrite every cached answer's text, as an answer cached long ago would differ."""
    db = sqlite3.connect(cache)
    try:
        rows = db.execute("SELECT cache_key, data FROM responses").fetchall()
        with db:
            for key, data in rows:
                message = orjson.loads(data)
                message["text"] = STALE
                db.execute(
                    "UPDATE responses SET data = ?, created_at = 0 WHERE cache_key = ?",
                    (orjson.dumps(message), key),
                )
        return len(rows)
    finally:
        db.close()


def _texts(run: batchmark.Run) -> set[str]:
    return {r["text"] for r in run.responses()}


def _attempts(run: batchmark.Run) -> set[int]:
    return {r["attempts"] for r in run.responses()}


def test_refresh_sends_again_and_replaces_stale_entries(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", models=["claude-haiku-4-5"])
    results = tmp_path / "results"
    first = batchmark.run(config, results=results)
    cells = first.status.total
    assert _make_stale(first.folder.cache_path) == cells

    served = batchmark.run(config, results=results)  # the stale entries are served...
    assert _texts(served) == {STALE} and _attempts(served) == {0}
    sent_before = len(live.submitted())

    fresh = batchmark.run(config, results=results, refresh=True)  # ...until refreshed
    assert STALE not in _texts(fresh) and _attempts(fresh) == {1}
    assert len(live.submitted()) == sent_before + cells
    assert fresh.info["cache_fresh_after"] > 0

    after = batchmark.run(config, results=results)  # the cache now holds the new answers
    assert _texts(after) == _texts(fresh) and _attempts(after) == {0}


def test_a_killed_refresh_run_resumes_without_the_stale_entries(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", models=["claude-haiku-4-5"])
    results = tmp_path / "results"
    first = batchmark.run(config, results=results)
    _make_stale(first.folder.cache_path)
    proc = start_run(config, results, live.base_url, "after_expand", "--refresh")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    killed = [r for r in results.glob("arith/*") if r.name != first.id]
    assert len(killed) == 1
    run = batchmark.resume(killed[0].name, results=results, poll_interval=0.02)
    assert STALE not in _texts(run) and _attempts(run) == {1}


def test_refresh_and_no_cache_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "cfg")
    with pytest.raises(SystemExit) as exit_:
        main(
            ["run", str(config), "--emulate", "--refresh", "--no-cache", "--results", str(tmp_path)]
        )
    assert exit_.value.code == 2
    assert "choose one" in capsys.readouterr().err
    assert not list(tmp_path.glob("arith/*"))
