"""The API's queue of batch requests is full: the run waits for room, polling and
collecting its own batches, and goes on; nothing fails and nothing is sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark
from batchmark._errors import QueueTooSmall
from batchmark.cli import cli
from batchmark.runs._batches import Progress

from .adversarial import ledger_rows
from .support import LiveEmulator, write_config

# 25 rows x 2 prompts x 2 models = 100 requests, in batches of at most 20, through a
# queue of 30: at most one batch of 20 (or two small ones) in the queue at a time.
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(25)]
N = len(ROWS) * 2 * 2
BATCH = {"max_requests": 20, "max_in_flight": 4}


def _queue(live: LiveEmulator, limit: int = 30, processing: float = 0.4) -> None:
    live.emu.queue_limit = limit
    live.emu.processing_seconds = processing


def _config(tmp_path: Path, batch: dict | None = None, rows: int = len(ROWS)) -> Path:
    return write_config(tmp_path / "cfg", rows=ROWS[:rows], batch={**BATCH, **(batch or {})})


def _only_run(results: Path) -> batchmark.Run:
    folders = [p for p in results.glob("arith/*") if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return batchmark.open_run(folders[0])


def _assert_each_request_sent_and_answered_once(
    run: batchmark.Run, live: LiveEmulator, n: int = N
) -> None:
    submitted = live.submitted()
    assert len(submitted) == n and len(set(submitted)) == n  # nothing sent twice
    assert sorted(submitted) == sorted(r["custom_id"] for r in run.requests())
    assert run.status.complete and run.status.done == n
    responses = list(run.responses())
    assert len(responses) == n and {r["status"] for r in responses} == {"succeeded"}
    assert {r["attempts"] for r in responses} == {1}  # a refusal is not an attempt
    assert all(c.n_requests <= BATCH["max_requests"] for c in live.emu.creates.calls)


def test_a_run_larger_than_the_queue_waits_for_room_and_sends_each_request_once(
    live: LiveEmulator, tmp_path: Path
) -> None:
    _queue(live)
    results = tmp_path / "results"
    shown: list[str | None] = []
    status_lines: list[str] = []

    def on_progress(p: Progress) -> None:
        shown.append(p.waiting)
        if p.waiting and not status_lines:  # `batchmark status` from the side, meanwhile
            out = CliRunner().invoke(
                cli, ["status", _only_run(results).id, "--results", str(results)]
            )
            assert out.exit_code == 0, out.output
            status_lines.append(" ".join(out.output.split()))  # rich wraps long lines

    run = batchmark.run(_config(tmp_path), results=results, on_progress=on_progress)

    _assert_each_request_sent_and_answered_once(run, live)
    creates, refused = live.emu.creates.calls, live.emu.creates.refused
    assert len(creates) >= N // BATCH["max_requests"] and refused  # it did wait
    intents = Counter(s for (s,) in ledger_rows(run, "SELECT status FROM intents"))
    assert intents == {"created": len(creates), "abandoned": len(refused)}
    assert "waiting for queue room" in shown
    assert shown[-1] is None  # the wait ended with the last create
    assert "waiting for queue room since" in status_lines[0]
    assert "limit of 30 batch requests" in status_lines[0]
    assert run.status.waiting is None
    print(f"queue 30, {N} requests: {len(creates)} creates, {len(refused)} refused")


def test_the_progress_line_shows_the_wait(live: LiveEmulator, tmp_path: Path) -> None:
    _queue(live)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": live.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "COLUMNS": "250",
        "TTY_COMPATIBLE": "1",  # rich draws the live bar as on a terminal
        "TTY_INTERACTIVE": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "batchmark",
        "run",
        str(_config(tmp_path, rows=10)),
        "--results",
        str(tmp_path / "results"),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "waiting for queue room" in done.stderr


@pytest.mark.parametrize("crashpoint", ["create_refused", "queue_wait"])
def test_a_run_killed_while_waiting_for_room_resumes_without_sending_twice(
    live: LiveEmulator, tmp_path: Path, crashpoint: str
) -> None:
    _queue(live)
    results = tmp_path / "results"
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": live.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "BATCHMARK_CRASHPOINT": crashpoint,
    }
    config = _config(tmp_path, {"max_in_flight": 2}, rows=10)  # 40 requests
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    killed = _only_run(results)
    assert live.emu.creates.refused  # it died refused, with a batch or two in the queue
    intents = dict(ledger_rows(killed, "SELECT status, n_requests FROM intents"))
    if crashpoint == "create_refused":  # the refused intent still says its create was sent
        assert intents.get("sending") in live.emu.creates.refused
    else:  # abandoned, and the wait noted for `status`
        assert intents.get("abandoned") in live.emu.creates.refused
        assert killed.status.waiting == "waiting for queue room"

    run = batchmark.resume(killed.id, results=results, poll_interval=0.02)

    _assert_each_request_sent_and_answered_once(run, live, n=40)
    assert run.status.waiting is None


def test_a_batch_larger_than_the_whole_queue_fails_clearly(
    live: LiveEmulator, tmp_path: Path
) -> None:
    _queue(live, limit=5)
    results = tmp_path / "results"
    with pytest.raises(QueueTooSmall) as caught:
        batchmark.run(_config(tmp_path, {"max_in_flight": 1}), results=results)

    message = str(caught.value)
    assert "larger than the whole queue" in message and "limit of 5 batch requests" in message
    assert "batch.max_requests" in message  # what to do
    assert "Error code" not in message  # the API's own words, not the SDK's summary
    assert live.emu.batches == {} and len(live.emu.creates.refused) == 2
    run = _only_run(results)
    assert Counter(s for (s,) in ledger_rows(run, "SELECT state FROM requests")) == {"pending": N}
    assert ledger_rows(run, "SELECT DISTINCT status FROM intents") == [("abandoned",)]


def test_a_batch_larger_than_the_queue_exits_2_from_the_cli(
    live: LiveEmulator, tmp_path: Path
) -> None:
    _queue(live, limit=5)
    env = {**os.environ, "ANTHROPIC_BASE_URL": live.base_url, "ANTHROPIC_API_KEY": "test-key"}
    cmd = [
        sys.executable,
        "-m",
        "batchmark",
        "run",
        str(_config(tmp_path)),
        "--results",
        str(tmp_path / "results"),
        "-q",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "larger than the whole queue" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_rate_limit_outlasting_the_retries_is_waited_for(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Five 429s in a row spend the create's own retries (max_retries 4): the run waits
    # for the limit to pass instead of failing.
    live.emu.faults = "http_429_next=7,endpoints=create,retry_after_ms=10"
    shown: list[str | None] = []
    run = batchmark.run(
        _config(tmp_path, {"max_in_flight": 1}),
        results=tmp_path / "results",
        on_progress=lambda p: shown.append(p.waiting),
    )
    _assert_each_request_sent_and_answered_once(run, live)
    assert live.emu.fault_state.fired == {"http_429": 7}
    assert "rate-limited: waiting to submit" in shown


def test_the_configs_emulator_queue_limit_reaches_emulate(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "cfg",
        rows=ROWS[:10],  # 40 requests through a queue of 30
        batch=BATCH,
        emulator={"queue_limit": 30, "processing_seconds": 0.3},
    )
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)

    assert run.status.complete and run.status.done == 40
    intents = Counter(s for (s,) in ledger_rows(run, "SELECT status FROM intents"))
    assert intents["abandoned"] >= 1  # a create was refused, and waited for
    assert sum(b["n_requests"] for b in run.batches()) == 40  # each request sent once
