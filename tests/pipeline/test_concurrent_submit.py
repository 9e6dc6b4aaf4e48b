"""Batch creates seen from the server: streamed bodies sent with an exact
``Content-Length``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

import batchmark
from batchmark._backend import BODY_PIECE_BYTES, body_length, body_pieces
from batchmark.emulator import parse_faults

from .support import LiveEmulator, write_config

# 40 cells, 10 a batch.
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)]
ONE_CELL = {
    "prompts": [{"name": "plain", "user": "{{ question }}"}],
    "models": ["claude-haiku-4-5"],
}
CONCURRENT = {"max_requests": 10, "max_in_flight": 4}


def _config(folder: Path, batch: dict[str, Any], rows: list[dict[str, Any]] = ROWS) -> Path:
    return write_config(folder, rows=rows, batch=batch, **ONE_CELL)


def test_create_bodies_have_an_exact_content_length_and_are_not_chunked(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Questions of ~300 kB (one non-ASCII character each): bodies of several pieces.
    rows = [{"id": f"q{i}", "question": "é" + "x" * 300_000 + str(i)} for i in range(8)]
    batch = {"max_requests": 5, "max_in_flight": 2}
    run = batchmark.run(_config(tmp_path / "cfg", batch, rows), results=tmp_path / "results")

    assert run.status.done == len(rows)
    calls = live.emu.creates.calls
    assert sorted(c.n_requests for c in calls) == [3, 5]  # 5 a batch
    assert max(c.body_bytes for c in calls) > 1.1 * BODY_PIECE_BYTES
    for call in calls:
        assert call.content_length == str(call.body_bytes)
        assert call.transfer_encoding is None


def test_a_refused_create_is_sent_again_with_a_fresh_body(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults({"http_429_next": 2, "endpoints": "create"})
    run = batchmark.run(_config(tmp_path / "cfg", CONCURRENT), results=tmp_path / "results")

    assert run.status.done == len(ROWS)
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
