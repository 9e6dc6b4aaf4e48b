"""The shipped tool-use eval validates and runs offline with --emulate, and its scores
tell the careful model from the one that slips."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from click.testing import CliRunner

import batchmark
import batchmark.cli._validate  # noqa: F401  (registers the command on ``cli``)
from batchmark.cli import cli

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tool_use.yaml"
# The rows evals/tool_use/responder.py makes the smaller model get wrong.
SLIPS = {"weather-new-york", "fx-eur-jpy", "fx-chf-twice", "trip-oslo-rome", "no-tool-math"}


def test_the_tool_use_eval_validates() -> None:
    result = CliRunner().invoke(cli, ["validate", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert "requests  48" in result.output  # 12 rows x 2 variants x 2 models


def test_the_tool_use_eval_runs_with_emulate(tmp_path: Path) -> None:
    run = batchmark.run(CONFIG, results=tmp_path / "results", emulate=True)
    failed: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    rows = set()
    for score in run.scores():
        rows.add(score["row_id"])
        assert not score["invalid"], score
        if not score["passed"]:
            failed[(score["model_key"], score["variant"], score["scorer"])].add(score["row_id"])
    assert len(rows) == 12
    for variant in ("shared", "row_tools"):
        assert failed[("claude-sonnet-4-6", variant, "calls_exact")] == set()
        assert failed[("claude-haiku-4-5", variant, "calls_subset")] == SLIPS
        # An extra argument fails the exact match only.
        assert failed[("claude-haiku-4-5", variant, "calls_exact")] == SLIPS | {"event-dentist"}
    offered = {
        (r["variant"], r["row_id"]): [t["name"] for t in r["params"]["tools"]]
        for r in run.requests()
    }
    assert offered[("shared", "no-tool-joke")] == [
        "get_weather",
        "convert_currency",
        "create_event",
        "search_flights",
    ]
    assert offered[("row_tools", "no-tool-joke")] == ["get_weather"]
