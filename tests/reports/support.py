"""Small real runs with known scores, for the comparison and report tests.

The emulator answers through :func:`respond`: a question ``What is N + N?`` is answered
right when ``N`` is in the variant's (or model's) set of right answers below, so every
score of every cell is known in advance. The judge grades A when the reference is in the
response.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import batchmark
from batchmark.scorers import VERDICT_TOOL

# Which questions each (model, system prompt) answers right. Six items q1..q6.
RIGHT = {
    ("claude-haiku-4-5", "plain"): {1, 2, 3},
    ("claude-haiku-4-5", "terse"): {1, 2, 3, 4, 5},
    ("claude-sonnet-4-6", "plain"): {1, 2, 3, 4, 5, 6},
    ("claude-sonnet-4-6", "terse"): {2, 3, 4, 5, 6},
}
"""Per (model, variant): ``plain`` has no system prompt, ``terse`` says "Answer tersely."."""

ROWS = [
    {
        "id": f"q{i}",
        "question": f"What is {i} + {i}?",
        "answer": str(2 * i),
        "topic": "small" if i <= 3 else "large",
    }
    for i in range(1, 7)
]

JUDGE = {
    "judge": {
        "name": "grader",
        "model": "claude-haiku-4-5",
        "system": "You grade answers.",
        "rubric": "Reference: {{ reference }}\nResponse: {{ response }}",
        "reference": "{{ answer }}",
        "grades": {"A": 1.0, "C": 0.0},
    }
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content)


RESPONDER = '''"""The emulator's answers: tests/reports/support.py's respond.

A file beside the config, since a config's `python:` hooks load only from its own
repository (a module of the test suite is not in the temporary folder's).
"""

from tests.reports.support import respond as _respond


def respond(params):
    return _respond(params)
'''


def respond(params: dict[str, Any]) -> Any:
    """The emulator's answers: see ``RIGHT``; the judge grades A iff the reference is there."""
    text = _text(params["messages"][-1]["content"])
    if params.get("tool_choice", {}).get("name") == VERDICT_TOOL:
        ref = text.split("Reference: ")[1].split("\n")[0]
        answer = text.split("Response: ")[1]
        right = ref in answer
        verdict = {"reasoning": f"reference {ref} {'found' if right else 'missing'}"}
        return [
            {
                "type": "tool_use",
                "name": VERDICT_TOOL,
                "input": {**verdict, "grade": "A" if right else "C"},
            }
        ]
    variant = "terse" if params.get("system") else "plain"
    n = int(text.split("What is ")[1].split(" ")[0])
    if n in RIGHT[(params["model"], variant)]:
        return f"It is {2 * n}."
    return "I do not know."


def write_eval(
    folder: Path,
    *,
    rows: list[dict[str, Any]] | None = None,
    models: list[str] | None = None,
    variants: tuple[str, ...] = ("plain", "terse"),
    scorers: list[Any] | None = None,
    **extra: Any,
) -> Path:
    """A dataset and a config answered by :func:`respond`; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in (rows if rows is not None else ROWS))
    )
    (folder / "responder.py").write_text(RESPONDER)
    prompts = {
        "plain": {"name": "plain", "user": "{{ question }}"},
        "terse": {"name": "terse", "system": "Answer tersely.", "user": "{{ question }}"},
    }
    config = {
        "name": "arith",
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": [prompts[v] for v in variants],
        "models": models or ["claude-haiku-4-5", "claude-sonnet-4-6"],
        "params": {"max_tokens": 64},
        "batch": {"poll_interval": 0.02, "max_poll_interval": 0.1},
        "emulator": {"responder": "python:responder.py:respond"},
        "scorers": scorers if scorers is not None else [{"includes": {"target": "{{ answer }}"}}],
        **extra,
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def isolated(root: Path) -> Iterator[None]:
    """The suite's isolation (HF caches, no API key) for fixtures wider than one test."""
    with pytest.MonkeyPatch.context() as mp:
        home = root / "_home"
        home.mkdir(parents=True, exist_ok=True)
        mp.setenv("HF_HOME", str(home / "hf"))
        mp.setenv("HF_DATASETS_CACHE", str(home / "hf" / "datasets"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        mp.delenv("ANTHROPIC_BASE_URL", raising=False)
        yield


def make_run(folder: Path, **kwargs: Any) -> batchmark.Run:
    """Run the eval written by :func:`write_eval` against the in-process emulator."""
    config = write_eval(folder / "cfg", **kwargs)
    return batchmark.run(config, results=folder / "results", emulate=True, use_cache=False)


def html_items(page: str) -> list[dict[str, Any]]:
    """The per-item data of an HTML report, decoded as its script decodes it: one record
    per row of a run, ``{row_id, prompts, cells}``, every text resolved."""
    import re

    texts: list[str] = []

    def text(v: str | int) -> str:
        if isinstance(v, int):
            return texts[v]
        if v:
            texts.append(v)
        return v

    out = []
    blocks = re.findall(r'<script type="application/json" class="bm-data">(.*?)</script>', page)
    for block in blocks:
        for row_id, prompts, cells in json.loads(block):
            decoded = ["\n\n".join(text(p) for p in parts) for parts in prompts]
            rows = []
            for c in cells:
                cell = {"cell": c[0], "custom_id": c[1], "prompt": decoded[c[2]]}
                cell["response"] = text(c[3])
                cell["scores"] = [
                    {"scorer": s[0], "value": s[1], "state": s[2]}
                    | {"why": text(s[3]) if len(s) > 3 else ""}
                    for s in c[4]
                ]
                cell["epoch"] = c[5] if len(c) > 5 else 0
                cell["status"] = c[6] if len(c) > 6 else "succeeded"
                cell["thinking"] = text(c[7]) if len(c) > 7 else ""
                rows.append(cell)
            out.append({"row_id": row_id, "prompts": decoded, "cells": rows})
    return out
