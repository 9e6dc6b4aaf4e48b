"""A results folder made by a pre-release build (before the schemas were squashed into
``0001_schema``) keeps working: its response cache still serves the answers it holds, and
a run it left in flight is finished by ``resume`` without anything sent twice.

The pre-release chains ended with the very tables ``0001_schema`` creates (the ledger's
without ``scores.spec_hash``; ``tests/runs/test_ledger_migrations.py`` compares them), so
a file of that build is made here by taking a current one back: its ``_migrations``
naming the old chain, the ledger's ``spec_hash`` column dropped. Real subprocesses drive
the command line against the emulator on loopback.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import batchmark

from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS) * 2 * 2  # rows x variants x models
CACHE_CHAIN = ("c001_initial", "c002_staged")
LEDGER_CHAIN = ("m001_initial", "m002_judges_and_scores", "m003_params_apart", "m004_scores_by_seq")


def batchmark_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def as_pre_release(path: Path, chain: tuple[str, ...], *, drop_spec_hash: bool = False) -> None:
    """Take a current store file back to what the pre-release build left."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute("DELETE FROM _migrations")
        db.executemany("INSERT INTO _migrations VALUES (?, 0)", [(n,) for n in chain])
        if drop_spec_hash:
            db.execute("ALTER TABLE scores DROP COLUMN spec_hash")
        if chain == LEDGER_CHAIN:  # and what the migrations after 0001_schema added
            db.execute("DROP TABLE blobs")
            db.execute("ALTER TABLE params DROP COLUMN sent_size")
        db.execute("COMMIT")
    finally:
        db.close()


def test_a_pre_release_response_cache_still_serves_its_answers(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    first = batchmark_cli("run", str(config), "--results", str(results), "-q")
    assert first.returncode == 0, first.stderr
    assert len(live.submitted()) == N_CELLS
    (cache,) = results.glob(".cache/responses-*.sqlite")
    as_pre_release(cache, CACHE_CHAIN)

    again = batchmark_cli("run", str(config), "--results", str(results), "-q")

    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert len(live.submitted()) == N_CELLS  # every answer came from the old cache
    newest = max(results.glob("arith/*"), key=lambda p: p.name)
    responses = list(batchmark.open_run(newest).responses())
    assert len(responses) == N_CELLS and all(r["cached"] for r in responses)


def test_a_run_a_pre_release_build_left_in_flight_is_resumed_sending_nothing_twice(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", scorers=[{"includes": {"target": "{{ answer }}"}}])
    results = tmp_path / "results"
    made = batchmark_cli("run", str(config), "--detach", "--results", str(results))
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.strip().splitlines()[-1]
    (folder,) = results.glob(f"arith/{run_id}")
    as_pre_release(folder / "ledger.sqlite", LEDGER_CHAIN, drop_spec_hash=True)
    (cache,) = results.glob(".cache/responses-*.sqlite")
    as_pre_release(cache, CACHE_CHAIN)

    resumed = batchmark_cli("resume", run_id, "--results", str(results), "-q")
    report = batchmark_cli("report", run_id, "--results", str(results))

    assert resumed.returncode == 0, resumed.stderr
    assert report.returncode == 0, report.stderr
    sent = Counter(live.submitted())
    assert len(sent) == N_CELLS and max(sent.values()) == 1  # collected, not sent again
    run = batchmark.open_run(folder)
    assert run.status.state == "complete" and run.status.done == N_CELLS
    assert {s["scorer"] for s in run.scores()} == {"includes"}
    assert "includes" in report.stdout
