"""A run killed while expanding leaves its hidden ``.ID.partial`` folder (with its
ledger and any image/PDF blobs); the next run of that eval removes it, and never one
whose expansion is still going on (issue 16's leftover: a cleanup policy)."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

import batchmark

from .adversarial import start_run
from .support import LiveEmulator, write_config


def _killed_expansion(config: Path, results: Path, live: LiveEmulator) -> Path:
    proc = start_run(config, results, live.base_url, "mid_expand")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    (partial,) = (results / "arith").glob(".*.partial")
    assert (partial / "ledger.sqlite").is_file()
    return partial


def test_the_next_run_removes_a_killed_expansions_folder(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    partial = _killed_expansion(config, results, live)

    run = batchmark.run(config, results=results)

    assert run.status.complete and not partial.exists()
    assert [p.name for p in (results / "arith").iterdir()] == [run.id]
    assert live.submitted().count(run.requests().__next__()["custom_id"]) == 1


def test_an_expansion_still_going_on_is_left_alone(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    busy = results / "arith" / ".20261202-000000-abcdef.partial"
    busy.mkdir(parents=True)
    old = busy.parent / ".20261201-000000-abcdef.partial"  # a version that took no lock
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = busy.parent / ".20261202-000001-abcdef.partial"  # being made this instant
    young.mkdir()
    with open(busy / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process expanding into it
        batchmark.run(config, results=results)
        assert busy.is_dir() and young.is_dir() and not old.exists()
