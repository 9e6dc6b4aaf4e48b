"""`latest` and `latest:EVAL` name the newest run wherever a command takes RUN."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import batchmark
from batchmark._errors import RunNotFound

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
