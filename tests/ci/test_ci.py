"""``batchmark ci`` and ``batchmark baseline``: every exit code, reached for real.

Runs go through the real SDK to the emulator (in-process with ``--emulate``, or live on
loopback for ``--wait-timeout``). The emulator answers with :func:`RESPONDER`: a
question ``What is N + N?`` is answered right unless the system prompt says ``BAD``, in
which case only multiples of 4 are — so regressing a variant is one edit of its system
prompt, and every score is known in advance.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import batchmark
from batchmark.ci._ci import (
    BaselineError,
    apply_gates,
    load_baseline,
    markdown_summary,
    resume_ci,
    run_ci,
    save_baseline,
    write_junit,
)
from batchmark.config._schema import CiConfig
from batchmark.emulator import Emulator
from batchmark.reports._compare import compare_scores

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"id": f"q{i:02d}", "question": f"What is {i} + {i}?", "answer": str(2 * i)}
    for i in range(1, 13)
]

RESPONDER = """
def _text(content):
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content)


def respond(params):
    system = _text(params.get("system") or "")
    n = int(_text(params["messages"][-1]["content"]).split("What is ")[1].split(" ")[0])
    if "BAD" in system and n % 4:
        return "I do not know."
    return f"It is {2 * n}."
"""

GATES = {
    "max_failed_fraction": 0.0,
    "gates": {"includes": {"min": 0.5, "max_drop": 0.02, "significant_drop": True}},
}


def write_config(
    folder: Path,
    *,
    system: str = "Answer.",
    ci: dict[str, Any] | None = None,
    emulator: dict[str, Any] | None = None,
    name: str = "arith",
    **extra: Any,
) -> Path:
    """Two variants (``steady``, and ``edited`` with ``system``) x one model, 12 rows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (folder / "responder.py").write_text(RESPONDER)
    config = {
        "name": name,
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": [
            {"name": "steady", "system": "Answer.", "user": "{{ question }}"},
            {"name": "edited", "system": system, "user": "Q: {{ question }}"},
        ],
        "models": ["claude-haiku-4-5"],
        "params": {"max_tokens": 32},
        "batch": {"poll_interval": 0.02, "max_poll_interval": 0.05},
        "emulator": {"responder": "python:responder.py:respond", **(emulator or {})},
        "scorers": [{"includes": {"target": "{{ answer }}"}}],
        "ci": GATES if ci is None else ci,
        **extra,
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def saved(tmp_path: Path, results: Path) -> Path:
    """Baseline ``main``, saved from a run where both variants answer everything right."""
    run = batchmark.run(write_config(tmp_path / "base"), results=results, emulate=True)
    return save_baseline(run, "main", results=results)


# --------------------------------------------------------------------------- baselines


def test_baseline_file_is_stable_sorted_and_holds_no_secret_or_absolute_path(
    tmp_path: Path, results: Path, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = saved.read_text()
    data = json.loads(text)

    assert saved == results / "baselines" / "main.json"
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert str(tmp_path) not in text and "emulator" not in text.replace('"emulated"', "")
    assert data["eval"] == "arith" and len(data["config_hash"]) == 64
    assert len(data["scores"]) == 24  # 12 rows x 2 variants x 1 scorer
    assert set(data["scores"][0]) == {
        "custom_id",
        "variant",
        "model_key",
        "row_id",
        "epoch",
        "scorer",
        "score",
        "passed",
        "invalid",
    }
    assert {c["variant"] for c in data["summary"]["scores"]} == {"steady", "edited"}
    assert load_baseline("main", results).run_id == data["run_id"]


def test_baseline_save_cli_writes_the_file_and_list_shows_it(
    tmp_path: Path, results: Path, ci_cli: Any
) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, emulate=True)

    code, out, _ = ci_cli("baseline", "save", run.id, "nightly", "--results", str(results))
    assert code == 0 and "nightly" in out
    assert load_baseline("nightly", results).run_id == run.id
    code, out, _ = ci_cli("baseline", "list", "--results", str(results))
    assert code == 0 and "nightly" in out and run.id in out


def test_baseline_name_must_be_a_plain_name(tmp_path: Path, results: Path) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, emulate=True)
    with pytest.raises(BaselineError, match="baseline name"):
        save_baseline(run, "../escape", results=results)


# --------------------------------------------------------------------------- exit 0 and 1


def test_unchanged_eval_passes_its_gates_exit_0_with_junit(
    tmp_path: Path, results: Path, saved: Path, ci_cli: Any
) -> None:
    config = write_config(tmp_path / "cand")
    junit = tmp_path / "out" / "junit.xml"

    code, out, _ = ci_cli(
        "ci",
        str(config),
        "--baseline",
        "main",
        "--emulate",
        "-q",
        "--results",
        str(results),
        "--junit",
        str(junit),
    )

    assert code == 0, out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # 3 checks x 2 cells, plus the run's max_failed_fraction
    assert len(cases) == 7 and suite.get("tests") == "7" and suite.get("failures") == "0"
    assert {c.get("name") for c in cases} >= {
        "min [claude-haiku-4-5 / steady]",
        "significant_drop [claude-haiku-4-5 / edited]",
        "max_failed_fraction [all]",
    }
    assert not suite.findall("testcase/failure")


def test_regressed_variant_fails_min_max_drop_and_significant_drop_exit_1(
    tmp_path: Path,
    results: Path,
    saved: Path,
    ci_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    config = write_config(tmp_path / "cand", system="BAD answers.")  # right on q04, q08, q12
    junit = tmp_path / "junit.xml"

    code, out, _ = ci_cli(
        "ci",
        str(config),
        "--baseline",
        "main",
        "--emulate",
        "-q",
        "--results",
        str(results),
        "--junit",
        str(junit),
    )

    assert code == 1
    assert "failed" in out
    failed = {
        (c.get("name"), c.find("failure").get("type"))  # type: ignore[union-attr]
        for c in ET.parse(junit).getroot().iter("testcase")
        if c.find("failure") is not None
    }
    assert failed == {
        ("min [claude-haiku-4-5 / edited]", "min"),
        ("max_drop [claude-haiku-4-5 / edited]", "max_drop"),
        ("significant_drop [claude-haiku-4-5 / edited]", "significant_drop"),
    }
    summary = step_summary.read_text()
    assert summary.startswith("earlier step\n")
    assert "3 gate checks failed" in summary
    assert "| ❌ failed | includes | max_drop | claude-haiku-4-5 / edited |" in summary
    assert "drop 0.750 > max_drop 0.02" in summary
    # Issue 17: the passed checks are folded away below the failures.
    failures, folded = summary.split("<details><summary>", 1)
    assert "❌ failed" in failures and "✅ passed" not in failures
    assert folded.startswith("4 passed checks</summary>") and "✅ passed" in folded
    assert "### Differences vs baseline" in summary  # the comparison follows the gates


def test_significant_drop_tolerance_lets_a_small_sure_drop_pass(
    tmp_path: Path, results: Path, saved: Path
) -> None:
    ci = {"gates": {"includes": [{"significant_drop": 0.9}, {"max_drop": 0.8}]}}
    config = write_config(tmp_path / "cand", system="BAD answers.", ci=ci)

    result = run_ci(config, baseline="main", results=results, emulate=True)

    assert result.exit_code == 0, markdown_summary(result)
    checks = {(g.check, g.variant): g.status for g in result.gates}
    assert checks[("significant_drop", "edited")] == "passed"
    assert checks[("max_drop", "edited")] == "passed"


def test_without_a_baseline_drop_checks_are_skipped_and_min_still_applies(
    tmp_path: Path, results: Path
) -> None:
    config = write_config(tmp_path / "cand", system="BAD answers.")

    result = run_ci(config, results=results, emulate=True)

    assert result.exit_code == 1
    statuses = {(g.check, g.variant): g.status for g in result.gates if g.scorer == "includes"}
    assert statuses[("min", "edited")] == "failed"
    assert statuses[("max_drop", "steady")] == "skipped"
    assert statuses[("significant_drop", "edited")] == "skipped"
    assert (result.run_path / "ci-report.html").is_file()
    assert (result.run_path / "ci-summary.md").read_text() == markdown_summary(result)


def test_gate_on_a_named_cell_checks_only_that_cell() -> None:
    import pandas as pd

    rows = []
    for run, variant, scores in (
        ("base", "a", [1, 1, 1, 1]),
        ("base", "b", [1, 1, 1, 1]),
        ("cand", "a", [1, 1, 1, 1]),
        ("cand", "b", [0, 0, 1, 1]),
    ):
        for i, s in enumerate(scores):
            rows.append(
                {
                    "run": run,
                    "model_key": "m",
                    "variant": variant,
                    "scorer": "x",
                    "custom_id": f"{variant}{i}",
                    "row_id": f"r{i}",
                    "epoch": 0,
                    "score": float(s),
                    "passed": bool(s),
                    "invalid": False,
                }
            )
    tables = compare_scores(pd.DataFrame(rows), baseline="base", runs=["base", "cand"])
    ci = CiConfig.model_validate({"gates": {"x": {"max_drop": 0.1, "variant": "a"}}})

    outcomes = apply_gates(ci, tables.cells, tables.diffs, run="cand", baseline="base")

    assert [(g.variant, g.status) for g in outcomes] == [("a", "passed")]

    # Issue 17: an unchanged cell read "drop -0.000" and "reaches -0".
    ci = CiConfig.model_validate({"gates": {"x": {"max_drop": 0.1, "significant_drop": True}}})
    outcomes = apply_gates(ci, tables.cells, tables.diffs, run="cand", baseline="base")
    unchanged = {g.check: g.message for g in outcomes if g.variant == "a"}
    assert "drop 0.000 <= max_drop 0.1" in unchanged["max_drop"]
    message = unchanged["significant_drop"]
    assert "-0.000" not in message and "reaches -0" not in message
    assert " reaches 0 " in message


def test_ci_without_gates_passes_but_says_nothing_was_gated(
    tmp_path: Path, results: Path, ci_cli: Any
) -> None:
    """Issue 17: a CI job with no gates passed silently."""
    config = write_config(tmp_path / "cfg", ci={})

    code, _, err = ci_cli("ci", str(config), "--emulate", "-q", "--results", str(results))

    assert code == 0
    assert "note: the config declares no gates under `ci.gates`" in err
    gated = write_config(tmp_path / "gated")
    code, _, err = ci_cli("ci", str(gated), "--emulate", "-q", "--results", str(results))
    assert code == 0 and "declares no gates" not in err


# --------------------------------------------------------------------------- exit 2


def test_unknown_gate_scorer_is_a_config_error_exit_2(
    tmp_path: Path, results: Path, ci_cli: Any
) -> None:
    config = write_config(tmp_path / "cfg", ci={"gates": {"exact": {"min": 0.5}}})

    code, _, err = ci_cli("ci", str(config), "--emulate", "--results", str(results))

    assert code == 2
    assert "ci.gates.exact" in err and "no scorer named 'exact'" in err
    assert not results.exists()  # nothing was run


def test_unknown_baseline_is_exit_2_before_anything_runs(
    tmp_path: Path, results: Path, saved: Path, ci_cli: Any
) -> None:
    config = write_config(tmp_path / "cfg")
    before = sorted(results.rglob("*"))

    code, _, err = ci_cli(
        "ci", str(config), "--baseline", "mian", "--emulate", "--results", str(results)
    )

    assert code == 2
    assert "no baseline 'mian'" in err and "baselines: main" in err
    assert sorted(results.rglob("*")) == before


def test_baseline_of_another_eval_is_exit_2(
    tmp_path: Path, results: Path, saved: Path, ci_cli: Any
) -> None:
    config = write_config(tmp_path / "cfg", name="other")
    code, _, err = ci_cli(
        "ci", str(config), "--baseline", "main", "--emulate", "-q", "--results", str(results)
    )
    assert code == 2 and "of eval 'arith', not 'other'" in err


def test_ci_needs_exactly_one_of_config_and_resume(ci_cli: Any) -> None:
    code, _, err = ci_cli("ci")
    assert code == 2 and "give CONFIG or --resume RUN" in err


# --------------------------------------------------------------------------- exit 3


@pytest.fixture
def slow_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A live emulator whose batches take an hour (until its clock is advanced)."""
    (tmp_path / "responder_mod.py").write_text(RESPONDER)
    emu = Emulator(
        responder=f"python:{tmp_path / 'responder_mod.py'}:respond", processing_seconds=3600
    )
    with emu.serve() as url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield emu


def test_wait_timeout_exits_3_with_the_run_id_then_resume_finishes_it(
    tmp_path: Path,
    results: Path,
    saved: Path,
    slow_emulator: Emulator,
    ci_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    config = write_config(tmp_path / "cand", system="BAD answers.")
    junit = tmp_path / "junit.xml"

    code, out, err = ci_cli(
        "ci",
        str(config),
        "--baseline",
        "main",
        "--wait-timeout",
        "0.3",
        "-q",
        "--results",
        str(results),
        "--junit",
        str(junit),
    )

    assert code == 3
    run_id = out.strip().splitlines()[-1]
    assert f"batchmark ci --resume {run_id}" in err
    assert f"run_id={run_id}\nexit_code=3\n" in outputs.read_text()
    assert ET.parse(junit).getroot().find("testsuite/testcase/error") is not None
    assert batchmark.open_run(run_id, results).status.in_flight > 0

    slow_emulator.clock.advance(7200)
    code, out, _ = ci_cli(
        "ci", "--resume", run_id, "-q", "--results", str(results), "--junit", str(junit)
    )

    assert code == 1  # the baseline was remembered: the edited variant regressed
    assert "max_drop" in out
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "3"  # type: ignore[union-attr]


def test_resume_ci_of_a_finished_run_gives_the_verdict_again(
    tmp_path: Path, results: Path, saved: Path
) -> None:
    first = run_ci(write_config(tmp_path / "cand"), baseline="main", results=results, emulate=True)

    again = resume_ci(first.run_id, results=results)

    assert (first.exit_code, again.exit_code) == (0, 0)
    assert again.baseline == "main" and again.gates == first.gates


def test_failed_requests_above_max_failed_fraction_exit_3(
    tmp_path: Path, results: Path, ci_cli: Any
) -> None:
    faults = {"faults": "errored_fatal=0.3", "seed": 3}
    strict = write_config(tmp_path / "strict", emulator=faults)
    lenient = write_config(
        tmp_path / "lenient", emulator=faults, ci={"max_failed_fraction": 0.9, "gates": {}}
    )

    code, out, err = ci_cli("ci", str(strict), "--emulate", "-q", "--results", str(results))
    assert code == 3
    assert "ci.max_failed_fraction" in err
    run_id = out.strip().splitlines()[-1]
    assert batchmark.open_run(run_id, results).status.failed > 0

    code, _, _ = ci_cli("ci", str(lenient), "--emulate", "-q", "--results", str(results))
    assert code == 0


def test_wait_timeout_with_emulate_is_a_usage_error(tmp_path: Path, results: Path) -> None:
    with pytest.raises(batchmark.BatchmarkError, match="--wait-timeout cannot be combined"):
        run_ci(write_config(tmp_path / "c"), results=results, emulate=True, wait_timeout=1)


# --------------------------------------------------------------------------- shipped files


def test_shipped_quickstart_baseline_passes_out_of_the_box(tmp_path: Path, ci_cli: Any) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "evals", tmp_path / "evals")
    shutil.copytree(REPO / "results" / "baselines", tmp_path / "results" / "baselines")
    config = tmp_path / "configs" / "quickstart.yaml"
    strict = {"max_drop": 0.0, "significant_drop": True}
    raw = yaml.safe_load(config.read_text())
    raw["ci"] = {"gates": {s: strict for s in ("exact_match", "includes", "judge")}}
    gated = tmp_path / "configs" / "gated.yaml"
    gated.write_text(yaml.safe_dump(raw))
    results = str(tmp_path / "results")

    code, out, _ = ci_cli(
        "ci", str(gated), "--baseline", "quickstart", "--emulate", "-q", "--results", results
    )

    assert code == 0, out
    assert "passed" in out


def test_shipped_quickstart_gates_something_and_passes_against_the_shipped_baseline(
    tmp_path: Path,
) -> None:
    """Issue 17: the quickstart had no `ci:` section, so the example workflow gated
    nothing. Its own gates pass against the shipped baseline, saved from this config."""
    for folder in ("configs", "evals"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copytree(REPO / "results" / "baselines", tmp_path / "results" / "baselines")

    result = run_ci(
        tmp_path / "configs" / "quickstart.yaml",
        baseline="quickstart",
        results=tmp_path / "results",
        emulate=True,
    )

    assert result.exit_code == 0, markdown_summary(result)
    # Gates declared, and the config unchanged since the baseline was saved (after editing
    # configs/quickstart.yaml, save the baseline again: docs/ci.md).
    assert result.notes == (), result.notes
    checked = {(g.scorer, g.check) for g in result.gates if g.status == "passed"}
    assert {scorer for scorer, _ in checked} == {"exact_match", "includes", "judge", "run"}
    assert {check for _, check in checked} >= {"min", "max_drop", "significant_drop"}
    assert not [g for g in result.gates if g.status != "passed"]


def test_write_junit_escapes_messages(tmp_path: Path, results: Path, saved: Path) -> None:
    result = run_ci(write_config(tmp_path / "cand"), baseline="main", results=results, emulate=True)
    path = write_junit(result, tmp_path / "j.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 1
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run_id"] == result.run_id and props["baseline"] == "main"


def test_example_workflow_is_valid_and_emulates_only_in_its_dry_run_job() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "eval.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert "pull_request" in triggers and "workflow_dispatch" in triggers
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        script = "\n".join(step.get("run", "") for step in job["steps"])
        assert ("--emulate" in script) == ("dry-run" in name), name
    gate = "\n".join(s.get("run", "") for s in jobs["pr-gate"]["steps"])
    assert "batchmark ci configs/quickstart.yaml --baseline quickstart" in gate
    assert "--wait-timeout" in gate and "batchmark ci --resume" in gate
    assert "batchmark ci configs/upgrade.yaml" in "\n".join(
        s.get("run", "") for s in jobs["model-upgrade"]["steps"]
    )


def test_summary_notes_an_emulated_baseline_behind_a_real_run(
    tmp_path: Path, results: Path, saved: Path, slow_emulator: Emulator
) -> None:
    slow_emulator.processing_seconds = 0
    config = write_config(tmp_path / "base")  # the baseline's config, unchanged

    result = run_ci(config, baseline="main", results=results)

    assert result.exit_code == 0
    assert result.notes == (
        "the baseline's answers came from the emulator, this run's from the API: save a "
        "baseline from a run like this one (`batchmark baseline save RUN NAME`)",
    )
    assert "Note: the baseline's answers came from the emulator" in markdown_summary(result)


def test_max_cost_refuses_before_anything_is_sent_exit_2(
    tmp_path: Path, results: Path, slow_emulator: Emulator, ci_cli: Any
) -> None:
    config = write_config(tmp_path / "cfg")

    code, _, err = ci_cli("ci", str(config), "--max-cost", "0", "-q", "--results", str(results))

    assert code == 2 and "over the budget" in err
    assert slow_emulator.submitted_custom_ids() == []
