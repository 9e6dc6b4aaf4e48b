"""``BatchRunner.collect`` edge cases, driven through a backend that replays result lines.

The backend here is not the SDK (which the end-to-end tests use against the emulator):
it is the runner's own ``BatchBackend`` protocol fed with chosen result lines, to reach
stream shapes the emulator does not produce (a stream that ends early without an error).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import batchmark.runs._collect
from batchmark.config._schema import BatchConfig
from batchmark.runs._backend import BatchInfo, ResultLine
from batchmark.runs._batches import BatchRunner
from batchmark.runs._driver import _insert_requests
from batchmark.runs._grid import Request
from batchmark.runs._ledger import Ledger
from batchmark.runs._store import ResponseCache

BATCH = "msgbatch_edges"


class ReplayBackend:
    """Yields the given result lines, then stops; optionally dies after ``die_after``."""

    def __init__(self, lines: list[ResultLine], die_after: int | None = None) -> None:
        self.lines = lines
        self.die_after = die_after

    def fetch(self, batch_id: str) -> Iterator[ResultLine]:
        for i, line in enumerate(self.lines):
            if self.die_after is not None and i == self.die_after:
                raise KeyboardInterrupt  # the process stops here, mid-stream
            yield line


def _ok(custom_id: str) -> ResultLine:
    return ResultLine(custom_id, "succeeded", message={"text": f"answer {custom_id}"})


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    requests = [
        Request(f"r{i}", "v", "m", "model-x", f"row{i}", 0, {"max_tokens": 5}, f"key{i}")
        for i in range(4)
    ]
    _insert_requests(ledger, requests, None)
    _submit_all(ledger)
    yield ledger
    ledger.close()


def _submit_all(ledger: Ledger) -> None:
    """Every request sent in one batch ``BATCH``, now ended: as a run records it."""
    intent = ledger.record_intent(range(ledger.total_requests()))
    ledger.mark_sending([intent])
    n = ledger.total_requests()
    ended = BatchInfo(BATCH, "ended", {"succeeded": n}, datetime.now(UTC))
    ledger.record_batch(intent, ended, adopted=False)


def _states(ledger: Ledger) -> dict[str, str]:
    return dict(ledger.db.execute("SELECT custom_id, state FROM requests"))


def test_a_full_stream_marks_every_answered_request_done_at_the_end(ledger: Ledger) -> None:
    lines = [_ok(f"r{i}") for i in (2, 0, 3)]  # r1 never answered
    BatchRunner(ledger, ReplayBackend(lines), BatchConfig()).collect(BATCH)
    assert _states(ledger) == {"r0": "done", "r1": "pending", "r2": "done", "r3": "done"}
    statuses = dict(
        ledger.db.execute(
            "SELECT q.custom_id, r.status FROM responses r JOIN requests q ON q.seq = r.seq"
        )
    )
    assert statuses == {"r0": "succeeded", "r1": "missing", "r2": "succeeded", "r3": "succeeded"}


def test_a_success_written_before_a_stop_survives_a_later_stream_that_lacks_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = BatchConfig()
    first = ReplayBackend([_ok("r0"), _ok("r1"), _ok("r2"), _ok("r3")], die_after=3)
    # one line per transaction, so r0-r2 are committed when the process stops
    monkeypatch.setattr(batchmark.runs._collect, "COLLECT_CHUNK", 1)
    with pytest.raises(KeyboardInterrupt):
        BatchRunner(ledger, first, settings).collect(BATCH)
    monkeypatch.undo()
    assert set(_states(ledger).values()) == {"submitted"}  # done only once the stream ends

    # collected again, the stream now ends early, without r1's line and without an error
    BatchRunner(ledger, ReplayBackend([_ok("r3"), _ok("r0"), _ok("r2")]), settings).collect(BATCH)

    assert _states(ledger) == {"r0": "done", "r1": "done", "r2": "done", "r3": "done"}
    rows = ledger.db.execute(
        "SELECT q.custom_id, r.attempt, r.status FROM responses r "
        "JOIN requests q ON q.seq = r.seq ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [(f"r{i}", 1, "succeeded") for i in range(4)]


def test_answers_reach_the_cache_when_the_working_directory_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger opened by a relative path, then the process changes directory: the
    cache copy still reads the ledger it has open (not a new, empty file)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    ledger = Ledger(Path("run") / "ledger.sqlite")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    requests = [Request("r0", "v", "m", "model-x", "row0", 0, {"max_tokens": 5}, "key0")]
    _insert_requests(ledger, requests, None)
    _submit_all(ledger)
    monkeypatch.chdir(tmp_path / "elsewhere")
    try:
        BatchRunner(ledger, ReplayBackend([_ok("r0")]), BatchConfig(), cache=cache).collect(BATCH)
        assert cache.get_many(["key0"]) == {"key0": {"text": "answer r0"}}
        assert not (tmp_path / "elsewhere" / "run").exists()
    finally:
        ledger.close()


def test_an_answer_kept_from_an_interrupted_collect_reaches_the_cache(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after r1's chunk reached the ledger but before it was staged for the cache;
    collected again, the stream lacks r1: its kept answer is copied to the cache then."""
    cache = ResponseCache(tmp_path / "cache.sqlite")
    hits = []

    def stop_at_second_staging(name: str) -> None:
        if name == "before_cache_copy":
            hits.append(name)
            if len(hits) == 2:  # r1's chunk: in the ledger, not yet staged
                raise KeyboardInterrupt

    monkeypatch.setattr(batchmark.runs._collect, "COLLECT_CHUNK", 1)
    monkeypatch.setattr(batchmark.runs._collect, "crashpoint", stop_at_second_staging)
    first = ReplayBackend([_ok("r0"), _ok("r1"), _ok("r2"), _ok("r3")])
    with pytest.raises(KeyboardInterrupt):
        BatchRunner(ledger, first, BatchConfig(), cache=cache).collect(BATCH)
    monkeypatch.undo()

    again = ReplayBackend([_ok("r3"), _ok("r0"), _ok("r2")])
    BatchRunner(ledger, again, BatchConfig(), cache=cache).collect(BATCH)

    assert _states(ledger)["r1"] == "done"
    assert sorted(cache.get_many([f"key{i}" for i in range(4)])) == [f"key{i}" for i in range(4)]
    cache.close()
