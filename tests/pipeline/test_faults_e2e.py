"""Adversarial end-to-end runs: faults everywhere, creates whose answers are lost, batches
that vanish, kill -9 at seeded random instants. The promise under test: nothing lost,
never pay twice, exact retry accounting."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import anthropic
import pytest

import batchmark
from batchmark.emulator import Emulator, Faults, parse_faults

from .adversarial import (
    LoseCreateResponses,
    assert_exact_accounting,
    bounded,
    ledger_rows,
    only_run,
    serve_front,
    start_run,
)
from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS) * 2 * 2
SMALL = {"max_requests": 5, "max_in_flight": 2}
DETACH = {"max_requests": 5, "max_in_flight": 10}  # --detach returns once all is sent


@pytest.fixture
def seeded_live(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """Like ``live``, with the emulator's seed taken from the test's parameter."""
    emu = Emulator(processing_seconds=0.0, seed=request.param)
    with emu.serve() as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield LiveEmulator(emu, base_url)


@pytest.mark.parametrize("seeded_live", [1, 2, 3], indirect=True)
def test_faults_on_every_endpoint_at_once_lose_nothing_and_send_nothing_twice(
    seeded_live: LiveEmulator, tmp_path: Path
) -> None:
    live = seeded_live
    live.emu.faults = parse_faults(
        {
            "http_429": 0.1,
            "http_500": 0.05,
            "http_529": 0.1,
            "retry_after_ms": 10,
            "errored": 0.2,
            "expired": 0.1,
            "drop_results": 0.3,
        }
    )
    config = write_config(tmp_path / "cfg", batch={**SMALL, "max_attempts": 12})
    with bounded(30):
        run = batchmark.run(config, results=tmp_path / "results")

    assert {r["status"] for r in run.responses()} == {"succeeded"}
    assert_exact_accounting(run, live)
    fired = live.emu.fault_state.fired
    assert set(fired) == {"http_429", "http_500", "http_529", "errored", "expired", "drop_results"}
    assert fired["errored"] + fired["expired"] == sum(r["attempts"] - 1 for r in run.responses())


def test_mixed_outcomes_are_accounted_exactly(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults({"errored": 0.25, "errored_fatal": 0.15, "expired": 0.15})
    config = write_config(tmp_path / "cfg", batch={**SMALL, "max_attempts": 2})
    run = batchmark.run(config, results=tmp_path / "results")

    assert_exact_accounting(run, live)
    responses = list(run.responses())
    fatal = [r for r in responses if r["error_type"] == "invalid_request_error"]
    assert fatal, "some requests end with a final invalid_request_error"
    # A final error is never retried; a retryable one is retried until max_attempts.
    history = ledger_rows(
        run,
        "SELECT q.custom_id, r.attempt, r.status, r.data "
        "FROM responses r JOIN requests q ON q.seq = r.seq",
    )
    assert len(history) == ledger_rows(run, "SELECT count(*) FROM responses")[0][0]
    last = {r["custom_id"]: r["attempts"] for r in responses}
    for custom_id, attempt, status, data in history:
        if b"invalid_request_error" in data:
            assert attempt == last[custom_id], (custom_id, attempt)
        elif status != "succeeded":
            assert attempt < last[custom_id] or attempt == 2, (custom_id, attempt, status)
    fired = live.emu.fault_state.fired
    assert set(fired) == {"errored", "errored_fatal", "expired"}, fired
    assert fired["errored_fatal"] == len(fatal)
    summary = run.summary()
    assert sum(c["succeeded"] for c in summary) == run.status.done
    assert sum(c["errored"] for c in summary) == run.status.failed
    assert run.status.done + run.status.failed == N_CELLS


def test_create_failing_with_500_then_succeeding_submits_each_request_once(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults(
        {"http_500_next": 3, "endpoints": "create", "retry_after_ms": 10}
    )
    run = batchmark.run(write_config(tmp_path / "cfg", batch=SMALL), results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert live.emu.fault_state.fired == {"http_500": 3}
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})
    assert_exact_accounting(run, live)


def test_create_failing_past_every_retry_raises_then_resume_finishes_without_duplicates(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults(
        {"http_500_next": 60, "endpoints": "create", "retry_after_ms": 10}
    )
    results = tmp_path / "results"
    with pytest.raises(anthropic.InternalServerError):
        batchmark.run(write_config(tmp_path / "cfg", batch=SMALL), results=results)
    run = only_run(results)
    # The failed creates were settled: nothing is left half-submitted, no attempt counted.
    assert ledger_rows(run, "SELECT count(*) FROM intents WHERE status = 'open'") == [(0,)]
    assert ledger_rows(run, "SELECT DISTINCT state, attempts FROM requests") == [("pending", 0)]
    fired = live.emu.fault_state.fired
    assert set(fired) == {"http_500"} and fired["http_500"] >= 5  # 1 + the SDK's 4 retries

    live.emu.faults = Faults()
    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.done == N_CELLS
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})


def test_a_create_whose_answer_is_lost_after_the_batch_was_made_is_adopted_not_resent(
    live: LiveEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch exists on the server but the client sees a 500: the SDK must not blindly
    # re-send the create (a second, paid batch); the runner finds the batch and adopts it.
    with serve_front(LoseCreateResponses(live.emu.app, n=2)) as url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        config = write_config(tmp_path / "cfg", batch=SMALL)
        with bounded(30):
            run = batchmark.run(config, results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})
    assert sum(1 for b in run.batches() if b["adopted"]) == 2
    assert_exact_accounting(run, live)


def test_a_failed_create_with_a_failing_batch_list_leaves_no_request_stranded(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # create fails for good, then the list that would settle it fails too: the intent
    # must be settled later in the same run, not left 'submitting' forever.
    live.emu.faults = parse_faults(
        {"http_500_next": 10, "endpoints": "create+list", "retry_after_ms": 10}
    )
    config = write_config(tmp_path / "cfg", batch=SMALL)
    with bounded(20):
        run = batchmark.run(config, results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert live.emu.fault_state.fired == {"http_500": 10}
    assert_exact_accounting(run, live)


def test_results_streams_cut_for_the_first_downloads_are_collected_again(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults({"drop_results_next": 4, "drop_after_lines": 2})
    run = batchmark.run(write_config(tmp_path / "cfg", batch=SMALL), results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert {r["attempts"] for r in run.responses()} == {1}
    assert live.emu.fault_state.fired == {"drop_results": 4}
    assert_exact_accounting(run, live)


def test_requests_expired_at_the_batch_ttl_are_resubmitted(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.processing_seconds = 1000.0
    live.emu.batch_ttl_seconds = 100.0
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg", batch=DETACH)
    run = batchmark.run(config, results=results, detach=True)
    live.emu.clock.advance(101)  # every batch passes expires_at unfinished
    live.emu.processing_seconds = 0.0
    live.emu.batch_ttl_seconds = 86400.0

    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.done == N_CELLS
    # Requests that finished inside the first 100 s of their batch's window succeeded.
    retried = sum(r["attempts"] == 2 for r in run.responses())
    assert {r["attempts"] for r in run.responses()} <= {1, 2} and retried > N_CELLS // 2
    expired = ledger_rows(run, "SELECT count(*) FROM responses WHERE status = 'expired'")
    assert expired == [(retried,)]
    assert_exact_accounting(run, live)


def test_a_batch_whose_results_were_archived_is_resubmitted_not_a_crash(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.processing_seconds = 0.05
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg", batch=DETACH), results=results, detach=True)
    live.emu.clock.advance(30 * 86400)  # past the 29-day retention: results answer 404

    with bounded(20):
        run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.done == N_CELLS
    assert {r["attempts"] for r in run.responses()} == {2}
    assert_exact_accounting(run, live)


def test_a_batch_deleted_before_collection_is_reported_lost_and_resent_only_when_asked(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Deleted behind the run's back: retrieve says 404 and the list no longer shows it.
    # It may exist where we cannot see it (another key), so its requests end lost and are
    # not paid again until the user says so (--resend-lost).
    live.emu.processing_seconds = 0.05
    results = tmp_path / "results"
    batch = {**DETACH, "lost_after_seconds": 0.05}
    run = batchmark.run(write_config(tmp_path / "cfg", batch=batch), results=results, detach=True)
    time.sleep(0.1)
    with live.client() as client:
        for b in run.batches():
            client.messages.batches.delete(b["batch_id"])
    sent = len(live.submitted())

    with bounded(20):
        run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.complete and run.status.lost == N_CELLS
    assert len(live.submitted()) == sent
    lost = ledger_rows(run, "SELECT count(*) FROM batches WHERE status = 'lost'")
    assert lost == [(len(run.batches()),)]

    with bounded(20):
        run = batchmark.resume(run.id, results=results, poll_interval=0.02, resend_lost=True)

    assert run.status.done == N_CELLS and run.status.lost == 0
    assert {r["attempts"] for r in run.responses()} == {2}
    assert_exact_accounting(run, live)


def _outcome(run: batchmark.Run) -> list[tuple[str, str, str | None]]:
    return sorted((r["custom_id"], r["status"], r["text"]) for r in run.responses())


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_kill_at_a_seeded_random_instant_then_resume_matches_a_clean_run(
    live: LiveEmulator, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    live.emu.processing_seconds = 0.15
    # The first download cut and the first call a 529 for certain, the rest at random: each
    # fault fires wherever the kill lands.
    live.emu.faults = parse_faults(
        {
            "errored": 0.3,
            "drop_results": 0.2,
            "drop_results_next": 1,
            "http_529": 0.05,
            "http_529_next": 1,
            "retry_after_ms": 10,
        }
    )
    batch = {"max_requests": 3, "max_in_flight": 2, "max_attempts": 10}
    config = write_config(tmp_path / "cfg", batch=batch)
    results = tmp_path / "results"

    proc = start_run(config, results, live.base_url)
    deadline = time.time() + 30
    while time.time() < deadline and not [
        p for p in results.glob("arith/*/ledger.sqlite") if not p.parent.name.startswith(".")
    ]:
        time.sleep(0.01)  # start-up (imports) and expansion done: the run folder exists
    time.sleep(rng.random() * 0.8)  # then somewhere in the run
    assert proc.poll() is None, "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed = only_run(results)
    unfinished = ledger_rows(killed, "SELECT count(*) FROM requests WHERE state != 'done'")
    assert unfinished[0][0] > 0, "killed after every request was done"

    with bounded(30):
        run = batchmark.resume(only_run(results).id, results=results, poll_interval=0.02)

    assert run.status.done == N_CELLS
    assert {r["text"] for r in run.responses()} == {f"Q: {row['question']}" for row in ROWS} | {
        row["question"] for row in ROWS
    }
    assert_exact_accounting(run, live)
    fired = live.emu.fault_state.fired
    assert set(fired) == {"errored", "drop_results", "http_529"}, fired
