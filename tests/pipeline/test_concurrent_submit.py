"""Concurrent batch creates, seen from the server: up to ``batch.max_in_flight`` at once,
pairwise distinct sizes, failures settled one by one, and streamed bodies sent with an
exact ``Content-Length``."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

import batchmark
from batchmark.emulator import parse_faults
from batchmark.runs._backend import BODY_PIECE_BYTES, body_length, body_pieces

from .adversarial import (
    LoseCreateResponses,
    assert_exact_accounting,
    bounded,
    ledger_rows,
    serve_front,
)
from .support import LiveEmulator, write_config

# 40 cells, 10 a batch, 4 at once: caps 10, 9, 8, 7 (created together), then 10.
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)]
ONE_CELL = {
    "prompts": [{"name": "plain", "user": "{{ question }}"}],
    "models": ["claude-haiku-4-5"],
}
CONCURRENT = {"max_requests": 10, "max_in_flight": 4}


def _config(folder: Path, batch: dict[str, Any], rows: list[dict[str, Any]] = ROWS) -> Path:
    return write_config(folder, rows=rows, batch=batch, **ONE_CELL)


def _outcome(run: batchmark.Run) -> list[tuple[str, str, str | None]]:
    return sorted((r["custom_id"], r["status"], r["text"]) for r in run.responses())


def test_creates_overlap_up_to_max_in_flight_with_distinct_sizes(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.create_latency = 0.4  # every create takes this long on the server
    run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert run.status.complete
    assert live.emu.creates.max_concurrent == CONCURRENT["max_in_flight"]
    calls = live.emu.creates.calls
    assert sorted(c.n_requests for c in calls) == [6, 7, 8, 9, 10]
    together = [(a, b) for a, b in itertools.combinations(calls, 2) if a.overlaps(b)]
    assert len(together) >= 6  # the first four, pairwise
    assert all(a.n_requests != b.n_requests for a, b in together)


def test_chunks_of_equal_size_are_not_created_together(live: LiveEmulator, tmp_path: Path) -> None:
    # Every request the same size and batches bounded by bytes to 3 requests each: the
    # request caps cannot tell them apart, so each waits for a round of its own.
    rows = [{"id": f"q{i}", "question": f"What is {i} + {i}?"} for i in range(10, 20)]
    probe = batchmark.load_config(_config(tmp_path / "probe", {}, rows))
    (size,) = {r.nbytes for r in batchmark.expand(probe)}
    batch = {**CONCURRENT, "max_bytes": len(b'{"requests":[]}') + 3 * (size + 1)}
    live.emu.create_latency = 0.1
    config = _config(tmp_path / "cfg", batch, rows)

    run = batchmark.run(config, results=tmp_path / "results")

    assert run.status.complete
    calls = live.emu.creates.calls
    assert sorted(c.n_requests for c in calls) == [1, 3, 3, 3]
    assert len(calls) == batchmark.validate_spec(batchmark.load_config(config)).batches
    together = [(a, b) for a, b in itertools.combinations(calls, 2) if a.overlaps(b)]
    assert together, "no two creates overlapped: the sizes were never put to the test"
    assert all(a.n_requests != b.n_requests for a, b in together)


def test_concurrent_run_matches_a_sequential_one_and_submits_each_request_once(
    live: LiveEmulator, tmp_path: Path
) -> None:
    sequential = batchmark.run(
        _config(tmp_path / "seq", {**CONCURRENT, "max_in_flight": 1}),
        results=tmp_path / "seq-results",
        emulate=True,
    )
    live.emu.create_latency = 0.05
    run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert _outcome(run) == _outcome(sequential)
    assert {c for c, _, _ in _outcome(run)} == {r["custom_id"] for r in run.requests()}
    assert Counter(Counter(live.submitted()).values()) == Counter({1: len(ROWS)})
    assert_exact_accounting(run, live)


def test_a_create_failing_among_concurrent_ones_is_settled_and_the_others_recorded(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # The first create to reach the server answers 500 before making a batch; the three
    # sent with it succeed. They are recorded as created (not adopted by the recovery
    # that follows), and the failed chunk's intent is abandoned and its requests re-sent.
    live.emu.create_latency = 0.2
    live.emu.faults = parse_faults(
        {"http_500_next": 1, "endpoints": "create", "retry_after_ms": 10}
    )
    with bounded(30):
        run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert run.status.done == len(ROWS)
    assert live.emu.fault_state.fired == {"http_500": 1}
    assert live.emu.creates.max_concurrent >= 3
    intents = Counter(s for (s,) in ledger_rows(run, "SELECT status FROM intents"))
    assert intents["abandoned"] == 1 and intents["open"] == 0
    assert {b["batch_id"] for b in run.batches()} == {c.batch_id for c in live.emu.creates.calls}
    assert not any(b["adopted"] for b in run.batches())
    assert Counter(Counter(live.submitted()).values()) == Counter({1: len(ROWS)})
    assert_exact_accounting(run, live)


def test_a_concurrent_create_whose_answer_is_lost_is_adopted_by_its_size(
    live: LiveEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch is made but its answer lost (a 500 after the commit) while three others of
    # the round succeed: recovery must adopt exactly that batch for that intent.
    live.emu.create_latency = 0.2
    with serve_front(LoseCreateResponses(live.emu.app, n=1)) as url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        with bounded(30):
            run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert run.status.done == len(ROWS)
    assert sum(1 for b in run.batches() if b["adopted"]) == 1
    sizes = ledger_rows(
        run,
        "SELECT b.batch_id, b.n_requests, i.n_requests FROM batches b "
        "JOIN intents i ON i.id = b.intent_id",
    )
    assert len(sizes) == len(run.batches())  # every batch, the adopted one too, has its intent
    for batch_id, n_requests, intent_size in sizes:
        assert n_requests == intent_size, batch_id
    assert Counter(Counter(live.submitted()).values()) == Counter({1: len(ROWS)})
    assert_exact_accounting(run, live)


def test_create_bodies_have_an_exact_content_length_and_are_not_chunked(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Questions of ~300 kB (one non-ASCII character each): bodies of several pieces.
    rows = [{"id": f"q{i}", "question": "é" + "x" * 300_000 + str(i)} for i in range(8)]
    batch = {"max_requests": 5, "max_in_flight": 2}
    run = batchmark.run(_config(tmp_path / "cfg", batch, rows), results=tmp_path / "results")

    assert run.status.done == len(rows)
    calls = live.emu.creates.calls
    assert sorted(c.n_requests for c in calls) == [3, 5]  # caps 5, 4: 5 + 3
    assert max(c.body_bytes for c in calls) > 1.1 * BODY_PIECE_BYTES
    for call in calls:
        assert call.content_length == str(call.body_bytes)
        assert call.transfer_encoding is None


def test_a_refused_create_is_sent_again_with_a_fresh_body(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults(
        {"http_429_next": 2, "endpoints": "create", "retry_after_ms": 10}
    )
    run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert run.status.done == len(ROWS)
    assert live.emu.fault_state.fired == {"http_429": 2}
    assert all(c.content_length == str(c.body_bytes) for c in live.emu.creates.calls)
    assert Counter(Counter(live.submitted()).values()) == Counter({1: len(ROWS)})


def test_body_pieces_join_to_the_body_and_body_length_measures_it() -> None:
    params = [
        orjson.dumps({"text": "é" * 200_000}),  # 400 kB of UTF-8
        orjson.dumps({"text": "x" * 700_000}),
        orjson.dumps({"n": 1}),
        orjson.dumps({"text": "y" * 1_500_000}),
    ]
    rows = [(f"id-{i}", p) for i, p in enumerate(params)]
    pieces = list(body_pieces(rows))
    body = b"".join(pieces)

    assert json.loads(body) == {
        "requests": [{"custom_id": c, "params": json.loads(p)} for c, p in rows]
    }
    assert body_length((c, len(p)) for c, p in rows) == len(body)
    assert 3 < len(pieces) < len(rows) + 2  # several entries share a piece, never all
    assert body_length([]) == len(b"".join(body_pieces([]))) == len(b'{"requests":[]}')
