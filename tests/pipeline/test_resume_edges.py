"""Resume at the edges: finished runs, a second driver, canceled runs, adoption among
look-alike batches, emulated runs."""

from __future__ import annotations

import fcntl
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

import batchmark
from batchmark.emulator import parse_faults

from .adversarial import (
    assert_exact_accounting,
    ledger_rows,
    only_run,
    start_run,
)
from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS) * 2 * 2
SMALL = {"max_requests": 4, "max_in_flight": 2}


def test_resume_of_a_complete_run_submits_nothing_and_changes_nothing(
    live: LiveEmulator, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg", batch=SMALL), results=results)
    sent, listed = len(live.submitted()), len(live.batch_list())
    before = (run.path / "responses.jsonl").read_bytes()
    ended_at = run.info["ended_at"]

    again = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert (len(live.submitted()), len(live.batch_list())) == (sent, listed)
    assert (again.path / "responses.jsonl").read_bytes() == before
    assert again.info["ended_at"] == ended_at


def test_a_second_driver_of_the_same_run_is_refused_clearly(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg", batch={**SMALL, "max_in_flight": 10})
    run = batchmark.run(config, results=results, detach=True)
    sent = len(live.submitted())

    with open(run.path / ".lock", "w") as held:  # another process driving the run
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(batchmark.BatchmarkError, match="another batchmark process"):
            batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert len(live.submitted()) == sent
    assert run.status.in_flight == N_CELLS


def test_a_canceled_run_never_submits_again_on_resume(live: LiveEmulator, tmp_path: Path) -> None:
    # Half of each batch finishes before the cancel, some of it with a retryable error:
    # a canceled run must end those as failures, not send them in new batches.
    live.emu.processing_seconds = 10.0
    live.emu.faults = parse_faults({"errored": 0.5})
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg", batch={**SMALL, "max_in_flight": 10})
    run = batchmark.run(config, results=results, detach=True)
    live.emu.clock.advance(5.0)
    batchmark.cancel(run.id, results=results)
    sent = Counter(live.submitted())

    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert Counter(live.submitted()) == sent, "a canceled run submitted new batches"
    assert run.status.state == "canceled" and run.status.complete
    statuses = Counter(r["status"] for r in run.responses())
    assert statuses["canceled"] and statuses["succeeded"] and statuses["errored"]
    assert live.emu.fault_state.fired == {"errored": statuses["errored"]}
    assert_exact_accounting(run, live)


def test_cancel_of_a_run_killed_before_its_create_then_resume_submits_nothing(
    live: LiveEmulator, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    proc = start_run(
        write_config(tmp_path / "cfg", batch=SMALL), results, live.base_url, "before_create"
    )
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run = only_run(results)
    # died between its first intent and that intent's create
    [(n,)] = ledger_rows(run, "SELECT n_requests FROM intents WHERE status = 'open'")
    assert ledger_rows(run, "SELECT count(*) FROM intents") == [(1,)]
    assert ledger_rows(run, "SELECT count(*) FROM batches") == [(0,)]
    states = dict(ledger_rows(run, "SELECT state, count(*) FROM requests GROUP BY state"))
    assert states == {"submitting": n, "pending": N_CELLS - n}
    assert live.batch_list() == []

    batchmark.cancel(run.id, results=results)
    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert live.submitted() == []
    assert run.status.complete and run.status.failed == N_CELLS
    assert {r["status"] for r in run.responses()} == {"canceled"}
    assert {r["attempts"] for r in run.responses()} == {0}


def test_cancel_keeps_the_response_of_an_earlier_attempt(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Every request errors (retryable) on its first attempt; the run is then canceled
    # with them pending. The ledger keeps attempt 1's error next to the cancellation.
    live.emu.faults = parse_faults({"errored": 1.0})
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg", batch={**SMALL, "max_in_flight": 10})
    run = batchmark.run(config, results=results, detach=True)
    with live.client() as client:  # wait until every batch has ended, then collect nothing
        while any(
            client.messages.batches.retrieve(b["batch_id"]).processing_status != "ended"
            for b in run.batches()
        ):
            time.sleep(0.01)
    assert live.emu.fault_state.fired == {"errored": N_CELLS}
    live.emu.processing_seconds = 30.0
    live.emu.faults = parse_faults({})
    # One resume pass that only collects: the retries are then pending when we cancel.
    batchmark.resume(run.id, results=results, poll_interval=0.02, wait_timeout=0)
    batchmark.cancel(run.id, results=results)
    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    rows = ledger_rows(
        run,
        "SELECT q.custom_id, r.attempt, r.status "
        "FROM responses r JOIN requests q ON q.seq = r.seq ORDER BY 1, 2",
    )
    assert len(rows) == ledger_rows(run, "SELECT count(*) FROM responses")[0][0]
    by_id: dict[str, list[tuple[int, str]]] = {}
    for custom_id, attempt, status in rows:
        by_id.setdefault(custom_id, []).append((attempt, status))
    # every request: attempt 1's error kept, then the cancellation as attempt 2
    assert by_id == {r["custom_id"]: [(1, "errored"), (2, "canceled")] for r in run.requests()}, (
        by_id
    )
    assert len(by_id) == N_CELLS
    # sent once: the retry was still pending when the run was canceled
    final = [(r["status"], r["attempts"]) for r in run.responses()]
    assert final == [("canceled", 1)] * N_CELLS


def test_adoption_prefers_the_batch_created_after_the_intent_over_a_look_alike(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Another run on the same account created batches of the same sizes as ours moments
    # before ours; one create's answer was lost (kill -9 right after the second of a round
    # of two creates returned, the first being recorded). Adopting the look-alike would
    # lose our batch and send every request of it a second time.
    with live.client() as client:
        foreign = {
            client.messages.batches.create(
                requests=[
                    {
                        "custom_id": f"other-{n}-{i}",
                        "params": {
                            "model": "claude-haiku-4-5",
                            "max_tokens": 8,
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                    }
                    for i in range(n)
                ]
            ).id
            for n in (SMALL["max_requests"], SMALL["max_requests"] - 1)  # the round's sizes
        }
    time.sleep(1.2)  # more than the clock-skew tolerance before our intent
    results = tmp_path / "results"
    proc = start_run(
        write_config(tmp_path / "cfg", batch=SMALL), results, live.base_url, "after_create@2"
    )
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # died with the round's first create recorded and the second made but not recorded
    killed = only_run(results)
    intents = ledger_rows(killed, "SELECT status FROM intents ORDER BY status")
    assert intents == [("created",), ("sending",)]
    [(recorded,)] = ledger_rows(killed, "SELECT batch_id FROM batches")
    assert recorded not in foreign
    assert len(live.batch_list()) == len(foreign) + 2

    run = batchmark.resume(only_run(results).id, results=results, poll_interval=0.02)

    adopted = [b["batch_id"] for b in run.batches() if b["adopted"]]
    assert len(adopted) == 1 and adopted[0] not in foreign
    ours = Counter(c for c in live.submitted() if not c.startswith("other-"))
    assert Counter(ours.values()) == Counter({1: N_CELLS})


def test_an_emulated_run_is_never_resumed_against_another_endpoint(
    live: LiveEmulator, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg", emulator={"responder": "echo"})
    proc = start_run(config, results, live.base_url, "after_expand")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run = only_run(results)
    assert ledger_rows(run, "SELECT DISTINCT state FROM requests") == [("pending",)]
    assert ledger_rows(run, "SELECT count(*) FROM intents") == [(0,)]
    info = run.info
    info["emulated"] = True  # what `batchmark run --emulate` killed here would have written
    info["endpoint"] = "emulator"
    run.folder.write_info(info)

    with pytest.raises(batchmark.BatchmarkError, match="in-process emulator"):
        batchmark.resume(run.id, results=results, poll_interval=0.02)

    # Sent elsewhere, its answers would also land in the emulator's response cache.
    assert live.submitted() == []
