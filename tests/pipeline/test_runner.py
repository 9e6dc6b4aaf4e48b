"""``BatchRunner`` as orchestration over the ledger's state machine, driven through a
backend that replays canned answers (``replay.ReplayBackend``) over a real ledger file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchmark.config._schema import BatchConfig
from batchmark.runs._batches import BatchRunner
from batchmark.runs._grid import Request
from batchmark.runs._ledger import Ledger
from batchmark.runs._responses import final_responses
from batchmark.runs._states import RequestState

from .replay import EXPIRED, NO_LINE, ReplayBackend, errored, ok

SETTINGS = BatchConfig(
    max_in_flight=1, poll_interval=0.001, max_poll_interval=0.001, max_attempts=3
)


def _no_sleep(seconds: float) -> None:
    pass


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """Five pending requests r0-r4, written through the ledger's own method."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    requests = [
        Request(f"r{i}", "v", "m", "model-x", f"row{i}", 0, {"max_tokens": 5}, f"key{i}")
        for i in range(5)
    ]
    ledger.insert_requests(requests, ledger.next_seq(), hits={})
    yield ledger
    ledger.close()


def _ended(ledger: Ledger) -> dict[str, tuple[str, int]]:
    """custom_id -> (status of its final response, attempts)."""
    return {r["custom_id"]: (r["status"], r["attempts"]) for r in final_responses(ledger)}


def test_each_request_ends_done_or_failed_retrying_only_what_can_succeed(
    ledger: Ledger,
) -> None:
    backend = ReplayBackend(
        {
            "r0": [ok()],
            "r1": [errored("overloaded_error"), ok()],  # retryable: sent again
            "r2": [errored("invalid_request_error")],  # final: never sent again
            "r3": [NO_LINE, ok()],  # missing from its batch: sent again
            "r4": [EXPIRED, EXPIRED, EXPIRED],  # out of attempts
        }
    )

    finished = BatchRunner(ledger, backend, SETTINGS, sleep=_no_sleep).run()

    assert finished
    assert backend.creates == [5, 3, 1]  # all; r1, r3, r4 again; r4 a third time
    assert ledger.state_counts() == {RequestState.DONE: 3, RequestState.FAILED: 2}
    assert _ended(ledger) == {
        "r0": ("succeeded", 1),
        "r1": ("succeeded", 2),
        "r2": ("errored", 1),
        "r3": ("succeeded", 2),
        "r4": ("expired", 3),
    }
    assert all(b["collected"] and b["status"] == "ended" for b in ledger.batches())
    assert [i["status"] for i in ledger.open_intents()] == []


def test_a_create_whose_answer_was_lost_is_adopted_on_resume_and_sent_once(
    ledger: Ledger,
) -> None:
    backend = ReplayBackend({}, lose_create_answers=1)
    with pytest.raises(ConnectionResetError):
        BatchRunner(ledger, backend, SETTINGS, sleep=_no_sleep).run()
    assert ledger.state_counts() == {RequestState.SUBMITTING: 5}  # the batch id never came
    assert [i["status"] for i in ledger.open_intents()] == ["sending"]

    finished = BatchRunner(ledger, backend, SETTINGS, sleep=_no_sleep).run()

    assert finished
    assert backend.creates == [5]  # adopted from the batch list, not sent again
    (batch,) = ledger.batches()
    assert batch["adopted"] == 2  # adopted, then verified by its results
    assert _ended(ledger) == {f"r{i}": ("succeeded", 1) for i in range(5)}


def test_a_vanished_batch_ends_its_requests_lost_until_resend_lost(ledger: Ledger) -> None:
    backend = ReplayBackend({})
    backend.vanish = True  # 404 on retrieve, missing from the list
    settings = BatchConfig(
        max_in_flight=1, poll_interval=0.001, max_poll_interval=0.001, lost_after_seconds=0.001
    )

    assert BatchRunner(ledger, backend, settings, sleep=_no_sleep).run()
    assert _ended(ledger) == {f"r{i}": ("lost", 1) for i in range(5)}
    assert [b["status"] for b in ledger.lost_batches()] == ["lost"]
    assert ledger.lost_requests() == 5

    assert BatchRunner(ledger, backend, settings, sleep=_no_sleep).run()  # looks again
    assert backend.creates == [5]  # lost requests are not sent again by themselves

    backend.vanish = False
    resent = BatchRunner(ledger, backend, settings, sleep=_no_sleep, resend_lost=True)
    assert resent.run()
    assert backend.creates == [5, 5]
    assert [b["status"] for b in ledger.batches()] == ["lost, resent", "ended"]
    assert _ended(ledger) == {f"r{i}": ("succeeded", 2) for i in range(5)}


def test_a_canceled_run_sends_nothing_and_fails_what_was_not_sent(ledger: Ledger) -> None:
    backend = ReplayBackend({})
    runner = BatchRunner(ledger, backend, SETTINGS, sleep=_no_sleep)

    assert runner.fail_pending("canceled by the test") == 5
    assert runner.run()

    assert backend.creates == []
    assert _ended(ledger) == {f"r{i}": ("canceled", 0) for i in range(5)}  # never sent
    assert ledger.canceled
