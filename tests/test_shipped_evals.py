"""Every shipped eval config runs offline against the emulator and completes."""

from __future__ import annotations

from pathlib import Path

import pytest

import batchmark

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_a_shipped_eval_runs_with_the_emulator_and_every_request_succeeds(
    config: Path, tmp_path: Path
) -> None:
    spec = batchmark.load_config(config)
    run = batchmark.run(spec, results=tmp_path, emulate=True, poll_interval=0.05)
    status = run.status
    assert status.state == "complete" and status.failed == 0 and status.done == status.total
    assert {r["status"] for r in run.responses()} == {"succeeded"}


def test_the_multiturn_eval_answers_from_earlier_turns(tmp_path: Path) -> None:
    """The scripted answers come from the conversation's earlier turns; Haiku keeps the
    first of two facts in two rows (m05, m08), so the models' scores differ."""
    run = batchmark.run(REPO / "configs" / "multiturn.yaml", results=tmp_path, emulate=True)
    passed = {
        (s["model_key"], s["variant"], s["row_id"])
        for s in run.scores()
        if s["scorer"] == "includes" and s["passed"]
    }
    rows = {f"m{i:02d}" for i in range(1, 13)}
    for variant in ("as_is", "terse"):
        assert {r for m, v, r in passed if m == "claude-sonnet-4-6" and v == variant} == rows
        haiku = {r for m, v, r in passed if m == "claude-haiku-4-5" and v == variant}
        assert haiku == rows - {"m05", "m08"}
