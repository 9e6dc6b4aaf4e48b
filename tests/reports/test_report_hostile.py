"""Hostile data through a whole run and its reports (review of issue 17): ids, prompts,
responses and names holding ``</script>``, ``<!--``, line separators, NUL, RTL marks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import batchmark
from batchmark.emulator import Emulator

ECHO = """def respond(params):
    m = params["messages"][-1]["content"]
    t = m if isinstance(m, str) else "".join(b.get("text", "") for b in m)
    return "echo: " + t
"""

HOSTILE = [
    "</script><script>alert(1)</script>",
    "<!-- ]]>",
    "line\u2028sep\u2029para\x85nel",
    "nul\x00rtl\u202eend",
    "a+b&c=d#e%20",
]


def echo_run(folder: Path, rows: list[dict[str, Any]], **extra: Any) -> batchmark.Run:
    """A run whose emulated model answers each prompt with ``echo: PROMPT``."""
    config = echo_eval(folder, rows, **extra)
    return batchmark.run(config, results=folder / "results", emulate=True)


def echo_eval(folder: Path, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """The config of :func:`echo_run`."""
    cfg = folder / "cfg"
    cfg.mkdir(parents=True)
    (cfg / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (cfg / "responder.py").write_text(ECHO)
    config = {
        "name": "hostile",
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": [{"name": "p", "user": "{{ question }}"}],
        "models": ["claude-haiku-4-5"],
        "params": {"max_tokens": 64},
        "batch": {"poll_interval": 0.02, "max_poll_interval": 0.1},
        "emulator": {"responder": "python:responder.py:respond"},
        "scorers": [{"includes": {"target": "{{ answer }}"}}],
        **extra,
    }
    (cfg / "eval.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return cfg / "eval.yaml"


def test_a_response_with_line_separators_is_read_whole(tmp_path: Path) -> None:
    """The results stream was split into lines as text (httpx's ``iter_lines`` splits at
    U+2028, U+2029 and U+0085 too): a response holding one broke the stream off, and
    every ``resume`` broke again at the same line. JSONL lines end at ``\\n`` only."""
    rows = [{"id": f"r{i}", "question": h, "answer": h} for i, h in enumerate(HOSTILE)]
    run = echo_run(tmp_path, rows)
    assert run.status.state == "complete"
    got = {r["row_id"]: r["text"] for r in run.responses()}
    assert got == {f"r{i}": "echo: " + h for i, h in enumerate(HOSTILE)}


def test_texts_said_once_hold_no_long_texts() -> None:
    """The HTML report's table of texts already written kept the last 20,000 texts
    themselves: with answers of a few KB that is tens of MB (and thinking more), held
    whatever the run's size. Long texts are now known by a digest."""
    import tracemalloc

    from batchmark.reports._html import _Texts

    texts = _Texts()
    tracemalloc.start()
    for i in range(20_000):
        text = f"{i:08d}" + "y" * 4_000
        assert texts(text) == text
        del text
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10_000_000, f"peak {peak / 1e6:.1f} MB for 20,000 texts of 4 KB"
    assert texts("00000007" + "y" * 4_000) == 7
    assert texts("short") == "short" and texts("short") == 20_000


def test_a_run_still_in_flight_is_reported_as_unfinished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with its batch in flight (0 of 2 requests ended) was reported with
    "no scores: the runs have no scorers (add `scorers:` ...)" and no word that it had not
    finished; a half-ended run's scores looked like the whole run's."""
    from batchmark.reports import report
    from batchmark.reports._render import render

    rows = [{"id": f"r{i}", "question": f"q{i}", "answer": f"q{i}"} for i in range(2)]
    config = echo_eval(tmp_path, rows)
    emu = Emulator(processing_seconds=1000.0, seed=7)  # the batch stays in flight
    with emu.serve() as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        run = batchmark.run(config, results=tmp_path / "results", detach=True)
    comp = report(run)
    assert any("not finished" in n and "0 of 2 requests ended" in n for n in comp.notes)
    text = render(comp, "md")
    assert "have no scorers" not in text and "not finished" in text
