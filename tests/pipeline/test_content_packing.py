"""Batches of image requests packed at the byte limit: the packer counts each request as
sent (its images spliced in), so a batch packed to exactly ``batch.max_bytes`` is taken
by an emulator whose body limit is that many bytes, and one byte less splits it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import batchmark
from batchmark.config._schema import load_config
from batchmark.runs._grid import expand
from batchmark.runs._packing import BODY_OVERHEAD

from ..media import png
from .support import LiveEmulator, write_config

IMAGES = {f"{i}.png": png(20, 20, pad=os.urandom(40_000)) for i in range(6)}
ROWS = [{"id": f"r{i}", "image": f"{i}.png"} for i in range(6)]
PROMPTS = [
    {
        "name": "look",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "path": "{{ image }}"},
                    {"type": "text", "text": "Colour?"},
                ],
            }
        ],
    }
]


def make_config(folder: Path, max_bytes: int | None = None) -> Path:
    batch = {"max_bytes": max_bytes} if max_bytes else {}
    config = write_config(
        folder, rows=ROWS, prompts=PROMPTS, models=["claude-haiku-4-5"], batch=batch
    )
    for name, data in IMAGES.items():
        (folder / name).write_bytes(data)
    return config


@pytest.mark.parametrize(("slack", "batches"), [(0, 3), (-1, 6)])
def test_batches_packed_to_the_byte_limit_fit_it_as_sent(
    live: LiveEmulator, tmp_path: Path, slack: int, batches: int
) -> None:
    sizes = [r.nbytes + 1 for r in expand(load_config(make_config(tmp_path / "probe")))]
    assert len(set(sizes)) == 1 and sizes[0] > 40_000 * 4 // 3  # the image data counted in
    # two requests exactly fill a batch (with slack 0): 3 batches; one byte less: 6
    limit = BODY_OVERHEAD + sizes[0] + sizes[1] + slack
    live.emu.max_batch_bytes = limit
    config = make_config(tmp_path / "cfg", max_bytes=limit)

    run = batchmark.run(config, results=tmp_path / "results", poll_interval=0.02)

    assert run.status.complete
    assert len(live.emu.batches) == batches
    assert sorted(live.submitted()) == sorted(r["custom_id"] for r in run.requests())
