"""Issue 17: a model upgrade gated inside one run (`against: model:KEY`), no baseline.

The run's ``candidate`` model is compared with its ``current`` model, per variant, paired
by item. The emulator answers with :data:`RESPONDER`: ``What is N + N?`` is answered right,
except by the model whose id the test names in ``WRONG`` (only multiples of 4 right).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

import batchmark
from batchmark.ci._ci import markdown_summary, run_ci
from tests.ci.test_ci import REPO, write_config

CURRENT, CANDIDATE = "claude-haiku-4-5", "claude-sonnet-4-6"
MODELS = [{"name": "current", "model": CURRENT}, {"name": "candidate", "model": CANDIDATE}]
UPGRADE = {"gates": {"includes": {"against": "model:current", "max_drop": 0.0,
                                  "significant_drop": True}}}  # fmt: skip

RESPONDER = """
WRONG = {wrong!r}


def _text(content):
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content)


def respond(params):
    n = int(_text(params["messages"][-1]["content"]).split("What is ")[1].split(" ")[0])
    if params["model"] == WRONG and n % 4:
        return "I do not know."
    return f"It is {{2 * n}}."
"""


def upgrade_config(folder: Path, *, wrong: str | None, ci: Any = None, **extra: Any) -> Path:
    """Two variants x models ``current`` and ``candidate``; ``wrong``'s answers regress."""
    extra.setdefault("models", MODELS)
    path = write_config(folder, ci=UPGRADE if ci is None else ci, **extra)
    (folder / "responder.py").write_text(RESPONDER.format(wrong=wrong))
    return path


def test_a_worse_candidate_fails_against_the_current_model_without_a_baseline(
    tmp_path: Path, ci_cli: Any
) -> None:
    config = upgrade_config(tmp_path / "cfg", wrong=CANDIDATE)
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    results = str(tmp_path / "results")

    code, out, _ = ci_cli(
        "ci", str(config), "--emulate", "--results", results,
        "--junit", str(junit), "--summary", str(summary),
    )  # fmt: skip

    assert code == 1, out
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {
        f"{check} [{variant}: model candidate vs model current]"
        for check in ("max_drop", "significant_drop")
        for variant in ("steady", "edited")
    }
    # Only the candidate is compared: the current model is not checked against itself.
    assert not any("model current vs" in name for name in cases)
    failure = cases["max_drop [steady: model candidate vs model current]"].find("failure")
    assert failure is not None
    # 3 of 12 right (q04, q08, q12) against 12 of 12: a drop of 0.75, paired on 12 items.
    assert failure.get("message") == (
        "model candidate mean 0.250 vs model current 1.000: drop 0.750 > max_drop 0 (n=12)"
    )
    significant = cases["significant_drop [edited: model candidate vs model current]"]
    assert "model candidate − model current: Δ -0.750 [95% CI" in significant.find("failure").get(
        "message"
    )  # type: ignore[union-attr]
    text = summary.read_text()
    assert "Compared inside the run, paired by item: **model candidate vs model current**" in text
    assert "| ❌ failed | includes | max_drop | steady: model candidate vs model current |" in text
    assert "model candidate vs model current" in out  # the terminal's gates table
    assert "no baseline given" not in text


@pytest.mark.parametrize("wrong", [None, CURRENT], ids=["equal", "better"])
def test_an_equal_or_better_candidate_passes(tmp_path: Path, wrong: str | None) -> None:
    config = upgrade_config(tmp_path / "cfg", wrong=wrong)

    result = run_ci(config, results=tmp_path / "results", emulate=True)

    assert result.exit_code == 0, markdown_summary(result)
    drops = [g for g in result.gates if g.check in ("max_drop", "significant_drop")]
    assert len(drops) == 4 and {g.status for g in drops} == {"passed"}
    assert {(g.model_key, g.against) for g in drops} == {("candidate", "current")}
    # The verdict's comparison is the candidate against the current model.
    assert result.comparison is not None and result.comparison.baseline == "model:current"
    diffs = result.comparison.diffs
    expected = 0.0 if wrong is None else 0.75
    assert sorted(diffs["diff"]) == pytest.approx([expected, expected])


def test_against_a_model_ignores_the_baseline_but_other_gates_use_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    base = batchmark.run(upgrade_config(tmp_path / "b", wrong=None), results=results, emulate=True)
    batchmark.save_baseline(base, "main", results=results)
    ci = {"gates": {"includes": [UPGRADE["gates"]["includes"], {"max_drop": 0.0}]}}
    config = upgrade_config(tmp_path / "c", wrong=CANDIDATE, ci=ci)

    result = run_ci(config, baseline="main", results=results, emulate=True)

    assert result.exit_code == 1
    failed = {(g.check, g.model_key, g.against) for g in result.failures}
    assert failed == {
        ("max_drop", "candidate", "current"),  # against the current model
        ("significant_drop", "candidate", "current"),
        ("max_drop", "candidate", None),  # against the baseline's candidate cells
    }
    text = markdown_summary(result)
    assert "against baseline `main`" in text
    assert "## In this run: models vs model `current`" in text  # its tables too


@pytest.mark.parametrize(
    ("gate", "models", "message"),
    [
        ({"against": "model:nope"}, MODELS, "no model key named 'nope'"),
        ({"against": "current"}, MODELS, "expected `model:KEY`"),
        ({"against": "model:current", "model": "current"}, MODELS, "are the model it compares"),
        (
            {"against": "model:claude-haiku-4-5"},
            ["claude-haiku-4-5"],
            "is the only model of this config",
        ),
    ],
    ids=["unknown-key", "no-prefix", "itself", "one-model"],
)
def test_a_gate_against_a_model_it_cannot_pair_with_is_a_config_error_exit_2(
    tmp_path: Path, ci_cli: Any, gate: dict[str, Any], models: list[Any], message: str
) -> None:
    ci = {"gates": {"includes": {"max_drop": 0.0, **gate}}}
    config = upgrade_config(tmp_path / "cfg", wrong=None, ci=ci, models=models)
    results = tmp_path / "results"

    code, _, err = ci_cli("ci", str(config), "--emulate", "--results", str(results))

    assert code == 2, err
    assert re.search(r"ci\.gates\.includes(\[0\])?\.against \(line \d+\)", err), err
    assert message in err
    assert "Traceback" not in err and not results.exists()


def test_against_without_a_drop_check_is_a_config_error(tmp_path: Path) -> None:
    ci = {"gates": {"includes": {"min": 0.5, "against": "model:current"}}}
    config = upgrade_config(tmp_path / "cfg", wrong=None, ci=ci)

    with pytest.raises(batchmark.ConfigError, match="has neither"):
        batchmark.load_config(config)


def test_a_run_missing_one_of_the_two_models_says_so_in_the_gate() -> None:
    """Scores of the candidate only (the current model's requests all failed, say): its
    drop checks are skipped, saying why; of the current model only: the gate fails."""
    import pandas as pd

    from batchmark.ci._gates import apply_gates
    from batchmark.config._schema import CiConfig
    from batchmark.reports._compare import compare_scores

    rows = [
        {"run": "r", "model_key": "candidate", "variant": "a", "scorer": "x",
         "custom_id": f"c{i}", "row_id": f"q{i}", "epoch": 0, "score": 1.0,
         "passed": True, "invalid": False}
        for i in range(3)
    ]  # fmt: skip
    tables = compare_scores(pd.DataFrame(rows), runs=["r"])
    ci = CiConfig.model_validate({"gates": {"x": {"against": "model:current", "max_drop": 0}}})

    [outcome] = apply_gates(
        ci, tables.cells, tables.diffs, run="r", baseline=None, in_run={"current": None}
    )

    assert (outcome.status, outcome.cell) == ("skipped", "a: model candidate vs model current")
    assert outcome.message == "model current has no x scores for variant a in this run to pair with"

    # The other way round: only the current model has scores, nothing is gated: a failure.
    only_current = compare_scores(pd.DataFrame(rows).assign(model_key="current"), runs=["r"])
    [outcome] = apply_gates(
        ci, only_current.cells, only_current.diffs, run="r", baseline=None, in_run={}
    )
    assert outcome.status == "failed"
    assert outcome.message == "no x scores in this run for model other than current"


def test_shipped_upgrade_config_gates_the_candidate_against_the_current_model(
    tmp_path: Path,
) -> None:
    result = run_ci(REPO / "configs" / "upgrade.yaml", results=tmp_path, emulate=True)

    assert result.exit_code == 0, markdown_summary(result)
    drops = [g for g in result.gates if g.against is not None]
    assert drops and {(g.model_key, g.against) for g in drops} == {("candidate", "current")}
    assert {g.status for g in drops} == {"passed"}
    # The emulated candidate is better overall but regresses on an item: both are visible.
    assert result.comparison is not None
    diffs = result.comparison.diffs
    assert (diffs["improved"] > 0).any() and (diffs["regressed"] > 0).any()
    assert "model candidate vs model current" in markdown_summary(result)


def test_shipped_workflow_gates_the_upgrade_with_the_shipped_config() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "eval.yml").read_text())
    script = "\n".join(s.get("run", "") for s in workflow["jobs"]["model-upgrade"]["steps"])
    assert "batchmark ci configs/upgrade.yaml" in script
    assert "configs/quickstart.yaml" not in script  # upgrade.yaml is shipped, not generated
