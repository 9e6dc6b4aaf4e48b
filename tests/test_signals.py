"""Ctrl-C and SIGTERM end the command with one message, a documented exit code (130,
143) and nothing lost: real subprocesses, real signals (issue 13).

While the command line is still being imported the process ends at once; once a run is
waiting for its batches it unwinds, names the run and the command that continues it,
and a resume then finishes it without sending any request twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import batchmark
from batchmark.emulator import Emulator

from .pipeline.support import write_config

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")

MESSAGES = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped (SIGTERM)"}
SIGNALS = [pytest.param(s, id=s.name) for s in (signal.SIGINT, signal.SIGTERM)]


@pytest.mark.parametrize(
    ("args", "begun"),
    [
        pytest.param(["--help"], "batchmark._entry", id="the command line"),
        # Commands are imported when run (issue 18), once the entry point has switched to
        # the handlers that unwind a command: Ctrl-C there printed click's blank line
        # before 'interrupted', and now and then the process died by SIGINT (a
        # KeyboardInterrupt through a C extension's import) instead of exiting 130.
        pytest.param(["validate", "--help"], "batchmark.cli", id="a command"),
    ],
)
@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_the_command_line_is_imported_ends_it_with_one_line(
    signum: signal.Signals, args: list[str], begun: str
) -> None:
    """``-X importtime`` reports each import as it completes: the signal is sent once
    ``begun`` is in and the imports after it (the command line's; a command's module's)
    have begun."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "batchmark", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    after = None
    for n, line in enumerate(process.stderr):
        if line.rstrip().endswith(f"| {begun}"):
            after = n
        elif after is not None and n >= after + 2:
            process.send_signal(signum)
            break
    out, err = process.communicate(timeout=60)

    assert process.returncode == 128 + signum
    assert out == ""  # the command never ran (its help was not printed)
    messages = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert messages == [MESSAGES[signum]]


def _wait_until_waiting(results: Path, process: subprocess.Popen[str]) -> Path:
    """The run's folder, once ``process`` drives it (holds its lock) with a batch in
    flight: it is then polling the batch."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for ledger in results.glob("arith/*/ledger.sqlite"):
            if _has_a_batch(ledger) and _holds_open(process.pid, ledger.parent / ".lock"):
                time.sleep(0.3)  # a few polls
                return ledger.parent
        time.sleep(0.05)
    raise AssertionError("the run never waited on a batch")


def _has_a_batch(ledger: Path) -> bool:
    db = sqlite3.connect(ledger.as_uri() + "?mode=ro", uri=True)
    try:
        return bool(db.execute("SELECT count(*) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def _holds_open(pid: int, path: Path) -> bool:
    """Process ``pid`` has ``path`` open (the run's lock: it is driving the run)."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_signal_while_a_run_waits_says_nothing_is_lost_and_resume_finishes_it(
    tmp_path: Path, signum: signal.Signals, command: str
) -> None:
    emulator = Emulator(processing_seconds=30, seed=3)
    with emulator.serve() as base_url:
        config = write_config(tmp_path / "cfg", batch={"poll_interval": 0.05})
        results = tmp_path / "results"
        env = {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test"}
        args = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results)]
        if command == "resume":  # submitted by a detached run, then waited for by resume
            subprocess.run([*args, "--detach"], env=env, check=True, capture_output=True)
            (folder,) = results.glob("arith/*")
            args = [sys.executable, "-m", "batchmark", "resume", folder.name]
            args += ["--results", str(results)]
        process = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        folder = _wait_until_waiting(results, process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)

        assert process.returncode == 128 + signum, err
        assert "Traceback" not in err
        assert MESSAGES[signum] in err
        assert f"run {folder.name} stopped; nothing is lost: `batchmark resume {folder}`" in err

        emulator.clock.advance(30)  # the batch ends
        finished = batchmark.resume(folder, results=results, base_url=base_url, api_key="t")

    assert finished.status.complete
    sent = Counter(emulator.submitted_custom_ids())
    assert len(sent) == finished.status.total and max(sent.values()) == 1


def test_sigterm_during_an_emulated_run_says_to_run_it_again(tmp_path: Path) -> None:
    """A run made with --emulate cannot be resumed (its emulator stops with it)."""
    config = write_config(
        tmp_path / "cfg", batch={"poll_interval": 0.05}, emulator={"processing_seconds": 60}
    )
    results = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "batchmark", "run", str(config), "--emulate"]
        + ["--results", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = _wait_until_waiting(results, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert f"run {folder.name} stopped with its in-process emulator" in err
    assert f"`batchmark run {config} --emulate` starts it again" in err
