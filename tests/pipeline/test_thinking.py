"""Answers that think, end to end: the emulator (real SDK, loopback) answers with thinking
blocks, the record keeps the thinking apart from the answer, scorers see the answer only,
and the report shows the thinking apart, escaped."""

from __future__ import annotations

from pathlib import Path

import batchmark
from batchmark.config._tokens import approx_tokens
from batchmark.reports._render import render
from tests.reports.support import html_items

from .support import write_config

# A model that answers "4" to everything, after thinking what the second question's
# answer is: scoring its thinking as the answer would pass q2.
RESPONDER = """
def think(params):
    question = params["messages"][-1]["content"]
    thought = "<b>four</b>" if "2 + 2" in question else "6"
    return [
        {"type": "thinking", "thinking": thought, "signature": "c2lnbmVk"},
        {"type": "text", "text": "4"},
    ]
"""
ROWS = [
    {"id": "q1", "question": "What is 2 + 2?", "answer": "4"},
    {"id": "q2", "question": "What is 3 + 3?", "answer": "6"},
]
EXACT = [{"exact_match": {"target": "{{ answer }}"}}]


def _thinking_run(tmp_path: Path) -> batchmark.Run:
    folder = tmp_path / "cfg"
    config = write_config(
        folder,
        rows=ROWS,
        prompts=[{"name": "plain", "user": "{{ question }}"}],
        models=["claude-sonnet-4-6"],
        emulator={"responder": "python:thinkers.py:think"},
        scorers=EXACT,
    )
    (folder / "thinkers.py").write_text(RESPONDER)
    return batchmark.run(config, results=tmp_path / "results", emulate=True)


def test_the_record_keeps_thinking_apart_and_exact_match_scores_the_answer(
    tmp_path: Path,
) -> None:
    run = _thinking_run(tmp_path)
    records = {r["row_id"]: r for r in run.responses()}
    assert {k: (r["text"], r["thinking"]) for k, r in records.items()} == {
        "q1": ("4", "<b>four</b>"),
        "q2": ("4", "6"),
    }
    usage = records["q2"]["usage"]
    assert usage["output_tokens"] == approx_tokens("6") + approx_tokens("4")
    passed = {s["row_id"]: s["passed"] for s in run.scores()}
    assert passed == {"q1": True, "q2": False}  # q2 thought "6" but answered "4"
    frame = run.responses_df()
    assert list(frame.sort_values("row_id")["thinking"]) == ["<b>four</b>", "6"]


def test_the_report_shows_thinking_apart_from_the_answer_and_escaped(tmp_path: Path) -> None:
    comp = batchmark.report(_thinking_run(tmp_path))
    samples = comp.samples.set_index("row_id")
    assert (samples.loc["q1", "response"], samples.loc["q1", "thinking"]) == ("4", "<b>four</b>")
    html = render(comp, "html")
    assert "<b>four</b>" not in html  # as data, escaped: \u003cb\u003efour...
    (cell,) = next(i for i in html_items(html) if i["row_id"] == "q1")["cells"]
    assert (cell["response"], cell["thinking"]) == ("4", "<b>four</b>")


def test_a_config_that_enables_thinking_gets_the_emulators_thinking(tmp_path: Path) -> None:
    params = {"max_tokens": 2048, "thinking": {"type": "adaptive"}}
    config = write_config(
        tmp_path / "cfg",
        rows=ROWS,
        prompts=[{"name": "plain", "user": "{{ question }}"}],
        models=["claude-sonnet-4-6"],
        params=params,
        scorers=EXACT,
    )
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)
    for r in run.responses():
        question = next(row["question"] for row in ROWS if row["id"] == r["row_id"])
        assert r["text"] == question  # the echo, untouched by the thinking
        assert question in r["thinking"]
        thinking = approx_tokens(r["thinking"])
        assert r["usage"]["output_tokens"] == thinking + approx_tokens(question)
    assert {s["passed"] for s in run.scores()} == {False}  # the echo is not the answer
