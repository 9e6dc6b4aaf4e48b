"""Tool use and structured outputs end to end: the real SDK against the emulator, tools
from a variant and from the rows, the tool_call scorer, and the json_schema scorer
reusing each request's output schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark
import batchmark.cli._validate  # noqa: F401  (registers the command on ``cli``)
from batchmark._errors import RenderError
from batchmark.cli import cli

from .support import LiveEmulator, write_config

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
    },
}
TIME = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}
# A model that calls the weather tool for the city the question names, in lower case
# for Oslo, and the time tool as well when the question asks for it.
RESPONDER = """
def call(params):
    question = params["messages"][-1]["content"]
    city = question.split()[-1].rstrip("?")
    blocks = [{"type": "text", "text": "Let me look."}]
    if "time" in question:
        blocks.append({"type": "tool_use", "name": "get_time", "input": {"zone": "CET"}})
    city = city.lower() if city == "Oslo" else city
    blocks.append({"type": "tool_use", "name": "get_weather",
                   "input": {"city": city, "unit": "celsius"}})
    return blocks
"""
ROWS = [
    {
        "id": "paris",
        "question": "Weather in Paris?",
        "expected": [{"name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}}],
    },
    {
        "id": "oslo",
        "question": "Weather in Oslo?",
        "expected": [{"name": "get_weather", "input": {"city": "Oslo", "unit": "celsius"}}],
    },
    {
        "id": "rome",
        "question": "Weather and time in Rome?",
        "expected": [
            {"name": "get_weather", "input": {"city": "Rome", "unit": "celsius"}},
            {"name": "get_time", "input": {"zone": "CET"}},
        ],
    },
]
SCORERS = [
    {"tool_call": {"name": "in_order", "field": "expected"}},
    {"tool_call": {"name": "any_order", "field": "expected", "order": "any_order"}},
]


def test_tool_calls_are_scored_by_the_tool_call_scorer(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    config = write_config(
        folder,
        rows=ROWS,
        prompts=[{"name": "tools", "user": "{{ question }}", "tools": [WEATHER, TIME]}],
        models=["claude-haiku-4-5"],
        emulator={"responder": "python:callers.py:call"},
        scorers=SCORERS,
    )
    (folder / "callers.py").write_text(RESPONDER)
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)
    scores = {(s["scorer"], s["row_id"]): (s["passed"], s["explanation"]) for s in run.scores()}
    assert scores == {
        ("in_order", "paris"): (True, "1 expected call matched"),
        ("any_order", "paris"): (True, "1 expected call matched"),
        ("in_order", "oslo"): (False, 'calls[0].input.city: expected "Oslo", got "oslo"'),
        ("any_order", "oslo"): (
            False,
            'expected[0] (get_weather) matched no call: calls[0].input.city: expected "Oslo", '
            'got "oslo"',
        ),
        ("in_order", "rome"): (False, 'calls[0].name: expected "get_weather", got "get_time"'),
        ("any_order", "rome"): (True, "2 expected calls matched"),
    }
    [request] = [r for r in run.responses() if r["row_id"] == "paris"]
    assert request["text"] == "Let me look."  # the text is kept, and never scored


def test_a_forced_tool_from_a_row_is_answered_with_a_valid_input(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "Weather?", "tools": [WEATHER]},
        {"id": "b", "question": "Time?", "tools": [TIME, WEATHER]},
    ]
    config = write_config(
        tmp_path / "cfg",
        rows=rows,
        prompts=[
            {
                "name": "forced",
                "user": "{{ question }}",
                "tools_field": "tools",
                "tool_choice": {"type": "tool", "name": "get_weather"},
            }
        ],
        models=["claude-haiku-4-5"],
        scorers=[
            {
                "tool_call": {
                    "tool": "get_weather",
                    "input": WEATHER["input_schema"],
                    "match": "schema",
                }
            }
        ],
    )
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)
    assert [s["passed"] for s in run.scores()] == [True, True]
    sent = {r["row_id"]: [t["name"] for t in r["params"]["tools"]] for r in run.requests()}
    assert sent == {"a": ["get_weather"], "b": ["get_time", "get_weather"]}


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
}


@pytest.mark.parametrize(("responder", "passed"), [("echo", True), ("python:r.py:prose", False)])
def test_json_schema_scores_against_the_requests_output_schema(
    tmp_path: Path, responder: str, passed: bool
) -> None:
    folder = tmp_path / "cfg"
    config = write_config(
        folder,
        rows=ROWS[:1],
        prompts=[{"name": "structured", "user": "{{ question }}", "output_schema": SCHEMA}],
        models=["claude-sonnet-4-6"],
        emulator={"responder": responder},
        scorers=[{"json_schema": {"schema": "request"}}],
    )
    (folder / "r.py").write_text("def prose(params):\n    return 'Sunny, I think.'\n")
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)
    [score] = run.scores()
    assert score["passed"] is passed
    [request] = run.requests()
    assert request["params"]["output_config"] == {
        "format": {"type": "json_schema", "schema": SCHEMA}
    }


def test_a_bad_row_tool_is_refused_by_validate_and_run_sends_nothing(
    tmp_path: Path, live: LiveEmulator
) -> None:
    rows = [
        {"id": "a", "question": "Weather?", "tools": [{"name": "get weather", "input_schema": {}}]}
    ]
    prompts = [{"name": "row_tools", "user": "{{ question }}", "tools_field": "tools"}]
    config = write_config(tmp_path / "cfg", rows=rows, prompts=prompts, models=["claude-haiku-4-5"])
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert (
        "prompt variant 'row_tools', row 'a': tools_field 'tools': tools[0].name" in result.output
    )
    with pytest.raises(RenderError):
        batchmark.run(config, results=tmp_path / "results")
    assert live.submitted() == []
