"""kill -9 a real `batchmark run` process, resume it, and compare with a clean run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

import batchmark

from .support import LiveEmulator, write_config

BATCH = {"max_requests": 4, "max_in_flight": 2}


def _start(config: Path, results: Path, live: LiveEmulator, crashpoint: str | None = None):
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": live.base_url,
        "ANTHROPIC_API_KEY": "test-key",
    }
    if crashpoint:
        env["BATCHMARK_CRASHPOINT"] = crashpoint
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _only_run(results: Path) -> batchmark.Run:
    folders = [p for p in results.glob("arith/*") if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return batchmark.open_run(folders[0])


def _outcome(run: batchmark.Run) -> list[tuple[str, str, str | None]]:
    return sorted((r["custom_id"], r["status"], r["text"]) for r in run.responses())


@pytest.fixture
def reference(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    """The responses of an uninterrupted run of the same config (its own emulator)."""
    config = write_config(tmp_path / "ref-cfg", batch=BATCH, emulator={"responder": "echo"})
    run = batchmark.run(config, results=tmp_path / "ref-results", emulate=True)
    return _outcome(run)


@pytest.mark.parametrize(
    "crashpoint", ["after_expand", "before_create", "after_create", "mid_collect"]
)
def test_resume_after_kill_at_a_crashpoint_submits_nothing_twice(
    live: LiveEmulator, tmp_path: Path, reference: list, crashpoint: str
) -> None:
    live.emu.processing_seconds = 0.05
    config = write_config(tmp_path / "cfg", batch=BATCH)
    results = tmp_path / "results"

    proc = _start(config, results, live, crashpoint)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    run = batchmark.resume(_only_run(results).id, results=results, poll_interval=0.02)

    assert run.status.complete
    assert _outcome(run) == reference
    assert max(Counter(live.submitted()).values()) == 1
    assert sum(b.request_counts.succeeded for b in live.batch_list()) == len(reference)


def test_resume_adopts_the_batch_whose_create_was_never_recorded(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", batch=BATCH)
    results = tmp_path / "results"
    proc = _start(config, results, live, "after_create")
    proc.communicate(timeout=120)
    # Created on the server, unknown to the ledger: the create that returned first, and
    # the other creates of its round (sent at the same time) that got through.
    created = {b.id for b in live.batch_list()}
    assert 1 <= len(created) <= BATCH["max_in_flight"]

    run = batchmark.resume(_only_run(results).path, results=results, poll_interval=0.02)

    adopted = {b["batch_id"] for b in run.batches() if b["adopted"]}
    assert created <= adopted and len(adopted) <= BATCH["max_in_flight"]


@pytest.mark.parametrize("when", ["first batch in flight", "half collected"])
def test_resume_after_kill_while_running_matches_a_clean_run(
    live: LiveEmulator, tmp_path: Path, reference: list, when: str
) -> None:
    live.emu.processing_seconds = 0.3
    config = write_config(tmp_path / "cfg", batch=BATCH)
    results = tmp_path / "results"
    proc = _start(config, results, live)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        ledgers = [p for p in results.glob("arith/*/ledger.sqlite") if "partial" not in str(p)]
        if ledgers:
            db = sqlite3.connect(ledgers[0])
            try:
                batches, collected = db.execute(
                    "SELECT count(*), coalesce(sum(collected), 0) FROM batches"
                ).fetchone()
            except sqlite3.OperationalError:
                batches = collected = 0
            finally:
                db.close()
            if (when == "first batch in flight" and batches >= 1) or (
                when == "half collected" and collected >= 3
            ):
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)

    run = batchmark.resume(_only_run(results).id, results=results, poll_interval=0.02)

    assert _outcome(run) == reference
    assert max(Counter(live.submitted()).values()) == 1


def test_answers_written_before_a_kill_are_kept_when_their_batch_is_then_lost(
    live: LiveEmulator, tmp_path: Path
) -> None:
    """Killed midway through collecting, then the batch is archived before the resume:
    the answers already in the ledger count, only the rest are asked again."""
    from batchmark.emulator._batches import RETENTION_SECONDS

    config = write_config(tmp_path / "cfg", batch={"max_requests": 100, "max_in_flight": 1})
    results = tmp_path / "results"
    proc = _start(config, results, live, "mid_collect")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    run = _only_run(results)
    written = (
        sqlite3.connect(run.path / "ledger.sqlite")
        .execute("SELECT count(*) FROM responses WHERE status = 'succeeded'")
        .fetchone()[0]
    )
    assert written == 24  # the whole (only) chunk was committed before the kill
    live.emu.clock.advance(RETENTION_SECONDS + 60)  # its results are gone

    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.complete
    assert {r["status"] for r in run.responses()} == {"succeeded"}
    assert len(live.submitted()) == 24  # nothing asked twice


@pytest.mark.parametrize(
    ("crashpoint", "then"),
    [
        ("mid_collect", "not resumed"),
        ("mid_collect", "resumed"),
        ("mid_collect", "batch lost, then resumed"),
        # killed after the chunk's ledger write, before its copy into the cache
        ("before_cache_copy", "resumed"),
        ("before_cache_copy", "batch lost, then resumed"),
    ],
)
def test_answers_collected_before_a_kill_all_reach_the_response_cache(
    live: LiveEmulator, tmp_path: Path, crashpoint: str, then: str
) -> None:
    """Killed midway through collecting, then resumed or not: running the same eval again
    is served whole from the response cache (no answer of the killed run is paid twice)."""
    from batchmark.emulator._batches import RETENTION_SECONDS

    config = write_config(tmp_path / "cfg", batch={"max_requests": 100, "max_in_flight": 1})
    results = tmp_path / "results"
    proc = _start(config, results, live, crashpoint)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    killed = _only_run(results)
    if then == "batch lost, then resumed":
        live.emu.clock.advance(RETENTION_SECONDS + 60)
    if then != "not resumed":
        assert batchmark.resume(killed.id, results=results, poll_interval=0.02).status.complete
    sent = len(live.submitted())

    again = batchmark.run(config, results=results, poll_interval=0.02)

    assert len(live.submitted()) == sent == 24  # nothing sent for the second run
    responses = list(again.responses())
    assert len(responses) == 24
    assert all(r["cached"] and r["status"] == "succeeded" for r in responses)
    # the very answers the killed run was paid for
    paid = sqlite3.connect(killed.path / "ledger.sqlite").execute(
        "SELECT q.custom_id, r.data FROM responses r JOIN requests q ON q.seq = r.seq "
        "WHERE r.status = 'succeeded'"
    )
    assert sorted((r["custom_id"], r["text"]) for r in responses) == sorted(
        (custom_id, orjson.loads(data)["text"]) for custom_id, data in paid
    )
