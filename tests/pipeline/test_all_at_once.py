"""Issue 18: batches are not serialized. Without `batch.max_in_flight` every chunk is
submitted at once (an eval of N chunks waits about one batch latency, not N/4), bounded
by the API's queue: after a create is refused for a full queue, the run keeps its
requests in the queue under what the queue held then, instead of asking again and again."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

import batchmark
from batchmark.runs._batches import QueueTooSmall
from batchmark.runs._estimate import estimate

from .adversarial import ledger_rows, start_run
from .support import LiveEmulator, write_config

ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(25)]
N = len(ROWS) * 2 * 2  # 100 requests


def _creates_span(live: LiveEmulator) -> float:
    calls = live.emu.creates.calls
    return max(c.ended for c in calls) - min(c.started for c in calls)


def test_every_chunk_is_submitted_at_once_by_default(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.processing_seconds = 2.0  # each batch takes 2 s to end
    config = write_config(tmp_path / "cfg", rows=ROWS, batch={"max_requests": 10})
    run = batchmark.run(config, results=tmp_path / "results")
    calls = live.emu.creates.calls
    assert len(calls) >= N // 10 and run.status.done == N
    # All ten creates reached the API before the first batch could end: one batch
    # latency for the whole eval.
    assert _creates_span(live) < 2.0
    assert sorted(live.submitted()) == sorted(r["custom_id"] for r in run.requests())


def test_a_cap_on_batches_in_flight_still_holds(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.processing_seconds = 0.5
    config = write_config(
        tmp_path / "cfg", rows=ROWS, batch={"max_requests": 10, "max_in_flight": 4}
    )
    run = batchmark.run(config, results=tmp_path / "results")
    assert run.status.done == N
    assert _creates_span(live) >= 0.5  # the fifth create waited for a batch to end


def test_after_a_full_queue_the_run_stays_under_what_it_held(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.queue_limit = 30
    live.emu.processing_seconds = 0.4
    config = write_config(tmp_path / "cfg", rows=ROWS, batch={"max_requests": 20})
    run = batchmark.run(config, results=tmp_path / "results")
    submitted = live.submitted()
    assert len(submitted) == N == len(set(submitted))  # each request sent once
    creates, refused = live.emu.creates.calls, live.emu.creates.refused
    intents = Counter(s for (s,) in ledger_rows(run, "SELECT status FROM intents"))
    assert intents == {"created": len(creates), "abandoned": len(refused)}
    # The first round sends all six chunks (20, 19, 18, 17, 16 and 10 requests) and the
    # queue takes one or two: the others are refused, once. From then on a chunk goes only
    # when it fits under what the queue held, so no create is refused again (asking the
    # full queue again at each retry refused 8 of them).
    assert len(refused) <= 5, (len(creates), refused)
    print(f"queue 30, {N} requests, no cap: {len(creates)} creates, {len(refused)} refused")


def _only_run(results: Path) -> batchmark.Run:
    folders = [p for p in results.glob("arith/*") if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return batchmark.open_run(folders[0])


def test_a_kill_in_a_round_of_many_creates_resumes_sending_nothing_twice(
    live: LiveEmulator, tmp_path: Path
) -> None:
    """Killed as the first of ten creates sent at once returned: the batches the API made
    for the round are adopted by size, none twice, and no request is sent again."""
    live.emu.processing_seconds = 0.3
    config = write_config(tmp_path / "cfg", rows=ROWS, batch={"max_requests": 10})
    results = tmp_path / "results"
    proc = start_run(config, results, live.base_url, "after_create")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    killed = _only_run(results)
    sizes = [n for (n,) in ledger_rows(killed, "SELECT n_requests FROM intents")]
    assert len(sizes) == len(set(sizes))  # the intents open at once differ in size

    run = batchmark.resume(killed.id, results=results, poll_interval=0.02)

    submitted = live.submitted()
    assert len(submitted) == N == len(set(submitted))  # each request sent once
    assert run.status.complete and run.status.done == N
    created = {b.id for b in live.batch_list()}
    assert created == {b["batch_id"] for b in run.batches()}  # every batch is the run's


@pytest.mark.parametrize("max_requests", [1, 2])
def test_tiny_batches_all_at_once(live: LiveEmulator, tmp_path: Path, max_requests: int) -> None:
    """Caps staggered over half of max_requests: a period of 0 (taken as 1) for 1 and 2;
    every chunk then has the same size, so one create per round, and estimate agrees."""
    rows = ROWS[:3]  # 12 requests
    config = write_config(tmp_path / "cfg", rows=rows, batch={"max_requests": max_requests})
    run = batchmark.run(config, results=tmp_path / "results")
    assert run.status.complete and run.status.done == 12
    assert len(set(live.submitted())) == len(live.submitted()) == 12
    est = estimate(batchmark.load_config(config), results=tmp_path / "est")
    assert est.batches == len(live.emu.creates.calls) == len(run.batches())


def test_a_queue_smaller_than_one_chunk_fails_clearly_without_a_cap(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.queue_limit = 5
    config = write_config(tmp_path / "cfg", rows=ROWS, batch={"max_requests": 10})
    with pytest.raises(QueueTooSmall):
        batchmark.run(config, results=tmp_path / "results")
    assert live.emu.batches == {}
    run = _only_run(tmp_path / "results")
    states = Counter(s for (s,) in ledger_rows(run, "SELECT state FROM requests"))
    assert states == {"pending": N}
