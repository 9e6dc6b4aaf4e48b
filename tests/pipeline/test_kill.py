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

from .adversarial import ledger_rows
from .support import ROWS, LiveEmulator, write_config

BATCH = {"max_requests": 4, "max_in_flight": 2}
N_CELLS = len(ROWS) * 2 * 2


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


def _states(run: batchmark.Run) -> Counter[str]:
    return Counter(state for (state,) in ledger_rows(run, "SELECT state FROM requests"))


def _open_intents(run: batchmark.Run, status: str = "open") -> list[int]:
    """The request counts of the unsettled intents; fails if any is not in ``status``
    (``open``: its create never sent; ``sending``: the create may have reached the API)."""
    intents = ledger_rows(run, "SELECT status, n_requests FROM intents")
    assert {s for s, _ in intents} <= {status}, intents
    return [n for _, n in intents]


def _assert_killed_at(crashpoint: str, run: batchmark.Run, live: LiveEmulator) -> None:
    """The ledger (and the emulator) hold what the run had done when it died there."""
    batches = ledger_rows(run, "SELECT batch_id, n_requests, collected FROM batches")
    responses = ledger_rows(run, "SELECT batch_id, status FROM responses")
    if crashpoint == "after_expand":  # every request rendered and pending, nothing sent
        assert _states(run) == {"pending": N_CELLS}
        assert (_open_intents(run), batches, responses) == ([], [], [])
        assert live.batch_list() == []
    elif crashpoint == "before_create":  # one intent recorded, its create never sent
        [n] = _open_intents(run)
        assert _states(run) == {"submitting": n, "pending": N_CELLS - n}
        assert (batches, responses) == ([], [])
        assert live.batch_list() == []
    elif crashpoint == "after_create":  # a create returned, its batch never recorded
        sizes = _open_intents(run, "sending")
        assert 1 <= len(sizes) <= BATCH["max_in_flight"]
        assert _states(run) == {"submitting": sum(sizes), "pending": N_CELLS - sum(sizes)}
        assert (batches, responses) == ([], [])
        assert 1 <= len(live.batch_list()) <= len(sizes)
    elif crashpoint == "mid_collect":  # one batch's answers written, the batch not settled
        assert batches and {collected for _, _, collected in batches} == {0}
        [(batch_id, n)] = Counter(batch_id for batch_id, _ in responses).items()
        assert (batch_id, n, 0) in batches
        assert {status for _, status in responses} == {"succeeded"}
        in_batch = ledger_rows(
            run, "SELECT DISTINCT state FROM requests WHERE batch_id = ?", (batch_id,)
        )
        assert in_batch == [("submitted",)]  # done only once the whole stream is read
    else:
        raise AssertionError(f"no expected state for {crashpoint}")


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
    _assert_killed_at(crashpoint, _only_run(results), live)

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
    assert proc.returncode == -signal.SIGKILL
    _assert_killed_at("after_create", _only_run(results), live)
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
    reached = None
    while time.time() < deadline and proc.poll() is None:
        batches, collected = _progress(results)
        if (when == "first batch in flight" and batches >= 1) or (
            when == "half collected" and collected >= 3
        ):
            reached = batches, collected
            break
        time.sleep(0.01)
    assert reached, f"the run never got to {when!r} (exit {proc.poll()})"
    assert proc.poll() is None, "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed = _only_run(results)
    assert _states(killed)["done"] < N_CELLS  # killed partway, not after the end
    uncollected = ledger_rows(killed, "SELECT count(*) FROM batches WHERE collected = 0")
    if when == "first batch in flight":
        assert uncollected[0][0] >= 1  # recorded, not yet collected
    else:
        assert _progress(results)[1] >= 3

    run = batchmark.resume(_only_run(results).id, results=results, poll_interval=0.02)

    assert _outcome(run) == reference
    assert max(Counter(live.submitted()).values()) == 1


def _progress(results: Path) -> tuple[int, int]:
    """(batches recorded, batches collected) in the ledger of the run under ``results``."""
    ledgers = [p for p in results.glob("arith/*/ledger.sqlite") if "partial" not in str(p)]
    if not ledgers:
        return 0, 0
    db = sqlite3.connect(ledgers[0])
    try:
        return db.execute("SELECT count(*), coalesce(sum(collected), 0) FROM batches").fetchone()
    except sqlite3.OperationalError:  # the schema is still being written
        return 0, 0
    finally:
        db.close()


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
    _assert_killed_at("mid_collect", run, live)
    live.emu.clock.advance(RETENTION_SECONDS + 60)  # its results are gone

    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.complete
    assert {r["status"] for r in run.responses()} == {"succeeded"}
    assert len(live.submitted()) == 24  # nothing asked twice


def _cache_rows(run: batchmark.Run, table: str) -> int:
    """Rows of a table of the run's response cache, read as they are (opening it as a
    ``ResponseCache`` would merge what is staged)."""
    db = sqlite3.connect(run.folder.cache_path)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


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
    _assert_killed_at("mid_collect", killed, live)  # before_cache_copy: the same ledger
    staged = _cache_rows(killed, "staged")
    assert staged == (24 if crashpoint == "mid_collect" else 0)  # the cache copy, or not yet
    assert _cache_rows(killed, "responses") == 0  # merged only once the batch is read whole
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


def test_kill_partway_through_a_batch_of_several_collect_chunks_then_resume(
    live: LiveEmulator, tmp_path: Path
) -> None:
    """One batch of more result lines than one ledger transaction holds, killed -9 right
    after its first chunk was committed: the resume collects the rest without sending
    anything again, and the response cache ends up with every answer."""
    from batchmark.runs._batches import COLLECT_CHUNK

    n = COLLECT_CHUNK + 2_000
    rows = [{"id": f"r{i}", "question": f"q{i}"} for i in range(n)]
    config = write_config(
        tmp_path / "cfg",
        rows=rows,
        prompts=[{"name": "p", "user": "{{ question }}"}],
        models=["claude-haiku-4-5"],
        batch={"max_requests": 100_000, "max_in_flight": 1},
    )
    results = tmp_path / "results"
    proc = _start(config, results, live, "mid_collect@1")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    killed = _only_run(results)
    [(batch_id, size, collected)] = ledger_rows(
        killed, "SELECT batch_id, n_requests, collected FROM batches"
    )
    assert (size, collected) == (n, 0)
    written = dict(ledger_rows(killed, "SELECT seq, data FROM responses"))
    assert len(written) == COLLECT_CHUNK  # the first chunk, and nothing of the second
    assert _states(killed) == {"submitted": n}  # done only once the stream is read whole
    assert _cache_rows(killed, "staged") == COLLECT_CHUNK

    run = batchmark.resume(killed.id, results=results, poll_interval=0.02)

    assert run.status.complete and run.status.done == n
    responses = list(run.responses())
    assert sorted((r["row_id"], r["text"]) for r in responses) == sorted(
        (row["id"], row["question"]) for row in rows
    )
    assert {(r["status"], r["attempts"], r["batch_id"]) for r in responses} == {
        ("succeeded", 1, batch_id)
    }
    # the answers written before the kill are the ones kept
    again = ledger_rows(run, "SELECT seq, data FROM responses")
    assert len(again) == n and {s: d for s, d in again if s in written} == written
    # every request was sent exactly once, in the one batch
    assert [c.batch_id for c in live.emu.creates.calls] == [batch_id]
    assert len(live.submitted()) == len(set(live.submitted())) == n

    rerun = batchmark.run(config, results=results, poll_interval=0.02)

    assert len(live.submitted()) == n  # nothing sent: every answer came from the cache
    assert rerun.status.done == n
    assert sum(r["cached"] for r in rerun.responses()) == n
