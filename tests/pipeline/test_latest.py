"""`latest` and `latest:EVAL` name the newest run wherever a command takes RUN."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import batchmark
from batchmark._errors import RunNotFound
from batchmark.runs._store import iter_run_folders, resolve_run

from .support import write_config


def test_latest_names_the_newest_run_and_latest_eval_the_newest_of_one_eval(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    with pytest.raises(RunNotFound, match="no run under .* yet, so `latest` names none"):
        batchmark.open_run("latest", results)
    first = batchmark.run(
        write_config(tmp_path / "a", name="alpha", models=["claude-haiku-4-5"]),
        results=results,
        emulate=True,
    )
    time.sleep(1.1)  # run ids start with their creation second
    second = batchmark.run(
        write_config(tmp_path / "b", name="beta", models=["claude-haiku-4-5"]),
        results=results,
        emulate=True,
    )
    assert batchmark.open_run("latest", results).id == second.id
    assert batchmark.open_run("latest:alpha", results).id == first.id
    assert batchmark.open_run("latest:beta", results).id == second.id
    with pytest.raises(RunNotFound, match="no run of eval 'gamma'"):
        batchmark.open_run("latest:gamma", results)

    shown = subprocess.run(
        [sys.executable, "-m", "batchmark", "status", "latest:alpha", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert first.id in shown.stdout and second.id not in shown.stdout


def test_latest_of_two_runs_made_within_one_second_is_the_later(tmp_path: Path) -> None:
    """Run ids carry the second and a random tail: within one second, `latest` took the
    run whose random tail sorted last, the older one half of the time."""
    results = tmp_path / "results"
    older = results / "arith" / "20261202-120000-ffffff"
    newer = results / "arith" / "20261202-120000-000000"
    for folder, micro in ((older, "000001"), (newer, "900000")):
        folder.mkdir(parents=True)
        info = {
            "run_id": folder.name,
            "eval": "arith",
            "created_at": f"2026-12-02T12:00:00.{micro}+00:00",
        }
        (folder / "run.json").write_text(json.dumps(info))
    assert resolve_run("latest", results).id == newer.name
    assert [f.id for f in iter_run_folders(results)] == [older.name, newer.name]
