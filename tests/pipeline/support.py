"""Helpers for end-to-end runs: a handle on a live emulator and small configs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import yaml

from batchmark.emulator import Emulator


@dataclass
class LiveEmulator:
    emu: Emulator
    base_url: str

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.base_url, api_key="test-key", max_retries=0)

    def batch_list(self) -> list[Any]:
        with self.client() as client:
            return list(client.messages.batches.list(limit=1000))

    def submitted(self) -> list[str]:
        return list(self.emu.submitted_custom_ids())


ROWS = [
    {"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(1, 7)
]


def write_config(
    folder: Path,
    *,
    rows: list[dict[str, Any]] | None = None,
    prompts: list[dict[str, Any]] | None = None,
    models: list[Any] | None = None,
    batch: dict[str, Any] | None = None,
    name: str = "arith",
    **extra: Any,
) -> Path:
    """A dataset file and a config beside it; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in (rows or ROWS)))
    config = {
        "name": name,
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": prompts
        or [
            {"name": "plain", "user": "{{ question }}"},
            {"name": "terse", "system": "Answer with a number.", "user": "Q: {{ question }}"},
        ],
        "models": models or ["claude-haiku-4-5", "claude-sonnet-4-6"],
        "params": {"max_tokens": 64},
        "batch": {"poll_interval": 0.02, "max_poll_interval": 0.1, **(batch or {})},
        **extra,
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
