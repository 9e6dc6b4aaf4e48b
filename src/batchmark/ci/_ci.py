"""CI mode: the verdict a CI job exits with.

``run_ci(config, baseline=...)`` runs the config (the response cache makes an unchanged
eval free), compares its per-item scores with the baseline's (paired, as
``compare_scores`` does for runs), applies the config's ``ci.gates`` and returns a
``CiResult`` whose ``exit_code`` is the documented one: 0 pass, 1 a gate failed, 3
incomplete (still in flight after ``wait_timeout``, or more failed requests than
``ci.max_failed_fraction``). ``resume_ci(run)`` finishes an incomplete one. A gate
``against: model:KEY`` compares the run's other models with model KEY of the same run
instead of the baseline (a model upgrade gated in one run, no baseline needed).
``write_junit`` and ``markdown_summary`` format a result; ``write_reports`` leaves
``ci.json``, ``ci-summary.md`` and ``ci-report.html`` in the run folder.

Baselines (``save_baseline``, ``load_baseline``) live in ``batchmark.ci._baseline`` and the
checks (``apply_gates``) in ``batchmark.ci._gates``; both are re-exported here. docs/ci.md
is the user's guide.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchmark._errors import UsageError
from batchmark.ci._baseline import (
    Baseline,
    BaselineError,
    is_finished,
    list_baselines,
    load_baseline,
    save_baseline,
    stable_json,
)
from batchmark.ci._gates import EPS, GateOutcome, apply_gates, fmt_number
from batchmark.config._schema import CiConfig, EvalSpec, load_config
from batchmark.reports._compare import COST_COLUMNS, Comparison, compare_scores, report
from batchmark.runs._endpoint import Endpoint
from batchmark.runs._run import DEFAULT_RESULTS, Run, open_run
from batchmark.runs._store import write_atomic

if TYPE_CHECKING:
    pass

__all__ = [
    "Baseline",
    "BaselineError",
    "CiResult",
    "GateOutcome",
    "apply_gates",
    "list_baselines",
    "load_baseline",
    "markdown_summary",
    "resume_ci",
    "run_ci",
    "save_baseline",
    "write_junit",
    "write_reports",
]

EXIT_CODES = {"passed": 0, "failed": 1, "incomplete": 3}


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class CiResult:
    """The verdict of ``batchmark ci``: ``state`` and its ``exit_code``, the gate
    outcomes and the comparison with the baseline (``None`` while incomplete)."""

    eval: str
    run_id: str
    run_path: Path
    state: str  # passed | failed | incomplete
    gates: tuple[GateOutcome, ...] = ()
    comparison: Comparison | None = None
    baseline: str | None = None
    baseline_run: str | None = None
    reason: str | None = None
    """Why the run is incomplete."""
    failed_fraction: float | None = None
    notes: tuple[str, ...] = ()
    """What to keep in mind reading the comparison (the config changed since the
    baseline; the baseline's answers came from the emulator and the run's did not, or
    the other way round)."""
    against: tuple[str, ...] = ()
    """The model keys gates compared the run's other models with (``against: model:KEY``)."""
    in_run: tuple[Comparison, ...] = ()
    """The run's models against each of ``against`` that ``comparison`` is not already
    (it is the first when there is no baseline)."""
    reports: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    @property
    def failures(self) -> list[GateOutcome]:
        return [g for g in self.gates if g.status == "failed"]


ProgressFn = Callable[[Any], None]


def run_ci(
    config: EvalSpec | str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    emulate: bool = False,
    wait_timeout: float | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    use_cache: bool = True,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    max_cost: float | None = None,
    on_created: Callable[[Run], None] | None = None,
) -> CiResult:
    """Run ``config``, compare it with ``baseline`` and apply its ``ci.gates``.

    With ``wait_timeout`` (seconds) the batches are submitted detached and waited for at
    most that long: a run still in flight then gives an ``incomplete`` result (exit 3)
    that ``resume_ci(result.run_id)`` finishes later. The baseline is read before
    anything is sent, so a wrong name costs nothing; ``max_cost`` (USD) refuses a run
    estimated to cost more (``BudgetExceeded``, exit 2), ``on_created`` is called with the
    run before anything is submitted, as for ``batchmark.run``.
    """
    from batchmark.runs._driver import finish_run, start_run

    spec = config if isinstance(config, EvalSpec) else load_config(config)
    base = _baseline_for(spec.name, baseline, results)
    if wait_timeout is not None and emulate:
        raise UsageError(
            "--wait-timeout cannot be combined with --emulate: the in-process emulator "
            "stops when the command exits",
            hint="start `batchmark emulator` separately and set ANTHROPIC_BASE_URL",
        )
    endpoint = Endpoint.resolve(emulate=emulate, base_url=base_url, api_key=api_key, config=spec)
    started = time.monotonic()
    handle = start_run(
        spec,
        endpoint,
        results=results,
        use_cache=use_cache,
        detach=wait_timeout is not None,
        on_progress=on_progress,
        poll_interval=poll_interval,
        on_created=on_created,
        max_cost=max_cost,
    )
    _remember(handle, baseline, base)
    if wait_timeout is not None and not is_finished(handle):
        left = max(0.0, wait_timeout - (time.monotonic() - started))
        finish_run(
            handle,
            spec,
            endpoint,
            on_progress=on_progress,
            poll_interval=poll_interval,
            wait_timeout=left,
        )
    return write_reports(evaluate(handle, spec.ci, base, config_hash=spec.hash))


def resume_ci(
    run_ref: str | os.PathLike[str] | Run,
    *,
    baseline: str | os.PathLike[str] | None = None,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    wait_timeout: float | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    allow_external_code: bool = False,
) -> CiResult:
    """Finish the run of an incomplete ``run_ci`` and give its verdict.

    The gates are the run's config snapshot's; the baseline is ``baseline``, else the
    one the run was started with. ``allow_external_code`` lets the snapshot's
    ``python:`` hooks name code from outside its repository (a ``Run`` passed in keeps
    its own setting).
    """
    from batchmark.runs._driver import finish_run

    if isinstance(run_ref, Run):
        handle = run_ref
    else:
        handle = open_run(run_ref, results, allow_external_code=allow_external_code)
    spec = handle.spec()
    if baseline is None:
        baseline = _read_ci_json(handle).get("baseline_ref")
    base = _baseline_for(spec.name, baseline, results)
    _remember(handle, baseline, base)
    if not is_finished(handle):
        endpoint = Endpoint.resolve(
            run=handle.info, base_url=base_url, api_key=api_key, config=spec
        )
        finish_run(
            handle,
            spec,
            endpoint,
            on_progress=on_progress,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
        )
    return write_reports(evaluate(handle, spec.ci, base, config_hash=spec.hash))


def _baseline_for(
    eval_name: str, ref: str | os.PathLike[str] | None, results: str | os.PathLike[str]
) -> Baseline | None:
    if ref is None:
        return None
    base = load_baseline(ref, results)
    if base.eval != eval_name:
        raise BaselineError(f"baseline {base.name!r} is of eval {base.eval!r}, not {eval_name!r}")
    return base


def _read_ci_json(handle: Run) -> dict[str, Any]:
    path = handle.path / "ci.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _remember(handle: Run, ref: str | os.PathLike[str] | None, base: Baseline | None) -> None:
    """Record the baseline in the run folder, so ``resume_ci`` needs no ``--baseline``."""
    if base is None or ref is None:
        return
    data = _read_ci_json(handle)
    data["baseline_ref"] = base.name if Path(ref).name == str(ref) else str(base.path.resolve())
    write_atomic(handle.path / "ci.json", stable_json(data))


def evaluate(
    handle: Run, ci: CiConfig, baseline: Baseline | None, *, config_hash: str | None = None
) -> CiResult:
    """The verdict on a run as it stands (no I/O besides reading the run)."""
    info = handle.info
    head: dict[str, Any] = {
        "eval": info["eval"],
        "run_id": handle.id,
        "run_path": handle.path,
        "baseline": baseline.name if baseline else None,
        "baseline_run": baseline.run_id if baseline else None,
        "notes": (*_gate_notes(ci), *_notes(info, baseline, config_hash)),
    }
    status = handle.status
    if not is_finished(handle):
        waiting = status.pending + status.in_flight
        return CiResult(
            **head,
            state="incomplete",
            reason=f"{waiting:,} of {status.total:,} requests not ended yet",
        )
    against = ci.against_models()
    scored = {cell["model"] for cell in handle.score_summary()} if against else set()
    comparable = [key for key in against if key in scored]
    comparison = ci_comparison(handle, baseline, against=comparable[0] if comparable else None)
    in_run = {key: comparison for key in comparable if comparison.baseline == f"model:{key}"}
    for key in comparable:
        in_run.setdefault(key, report(handle, baseline=f"model:{key}"))
    label = comparison.runs[-1]
    gates = apply_gates(
        ci,
        comparison.cells,
        comparison.diffs,
        run=label,
        baseline=baseline.label if baseline else None,
        in_run={key: in_run[key].diffs if key in in_run else None for key in against},
    )
    fraction = status.failed / status.total if status.total else 0.0
    over = fraction > ci.max_failed_fraction + EPS
    gates.append(
        GateOutcome(
            "run",
            "max_failed_fraction",
            None,
            None,
            "failed" if over else "passed",
            fraction,
            ci.max_failed_fraction,
            f"{status.failed:,} of {status.total:,} requests ended without a response "
            f"({fraction:.1%}; max {ci.max_failed_fraction:.1%})",
        )
    )
    failed = any(g.status == "failed" for g in gates)
    state = "incomplete" if over else "failed" if failed else "passed"
    reason = None
    if over:
        reason = (
            f"{status.failed:,} of {status.total:,} requests ended without a response "
            f"({fraction:.1%}), more than ci.max_failed_fraction ({ci.max_failed_fraction:.1%})"
        )
    return CiResult(
        **head,
        state=state,
        gates=tuple(gates),
        comparison=comparison,
        reason=reason,
        failed_fraction=fraction,
        against=tuple(against),
        in_run=tuple(c for c in in_run.values() if c is not comparison),
    )


def _gate_notes(ci: CiConfig) -> tuple[str, ...]:
    """A CI job without gates passes whatever the scores: say so (issue 17)."""
    if ci.gates:
        return ()
    return (
        "the config declares no gates under `ci.gates`: only the share of failed requests "
        "was checked, so this passes whatever the scores (add gates: docs/ci.md)",
    )


def _notes(info: dict[str, Any], baseline: Baseline | None, config_hash: str | None) -> tuple:
    if baseline is None:
        return ()
    notes = []
    if config_hash is not None and baseline.data.get("config_hash") != config_hash:
        notes.append("the config changed since the baseline was saved")
    if bool(baseline.data.get("emulated")) != bool(info.get("emulated")):
        kinds = ("the emulator", "the API")
        base, run = (
            kinds[0] if e else kinds[1]
            for e in (baseline.data.get("emulated"), info.get("emulated"))
        )
        notes.append(
            f"the baseline's answers came from {base}, this run's from {run}: save a "
            "baseline from a run like this one (`batchmark baseline save RUN NAME`)"
        )
    return tuple(notes)


def ci_comparison(
    handle: Run, baseline: Baseline | None, *, against: str | None = None
) -> Comparison:
    """The run's cells against the baseline's (the baseline is "run" ``baseline:<name>``).

    Without a baseline: the run's own report, its models against model ``against`` when
    given (it must have scores in the run), else its variants against the first.
    """
    if baseline is None:
        return report(handle, baseline=None if against is None else f"model:{against}")
    import pandas as pd

    from batchmark.reports._compare import SCORE_COLUMNS, _empty_scores

    mine = handle.scores_df(SCORE_COLUMNS)
    if not mine.empty:
        mine.insert(0, "run", handle.id)
    frames = [f for f in (mine, baseline.scores_df()) if not f.empty]
    scores = pd.concat(frames, ignore_index=True) if frames else _empty_scores(None)
    runs = [baseline.label, handle.id]
    tables = compare_scores(scores, baseline=baseline.label, runs=runs)
    cost_rows = []
    for run_label, cells in (
        (baseline.label, baseline.data.get("summary", {}).get("cost", [])),
        (handle.id, handle.summary()),
    ):
        for cell in cells:
            row = {"run": run_label, "model_key": cell.get("model"), **cell}
            cost = row.get("cost_usd")
            row["saving_usd"] = None if cost is None else row["cost_standard_usd"] - cost
            cost_rows.append(row)
    cost = pd.DataFrame(cost_rows, columns=COST_COLUMNS)
    return Comparison(
        cells=tables.cells,
        diffs=tables.diffs,
        items=tables.items,
        cost=cost,
        sample_runs=(handle,),
        baseline=tables.baseline,
        runs=tuple(runs),
    )


# --------------------------------------------------------------------------- writers

_ICON = {"passed": "✅", "failed": "❌", "skipped": "➖", "incomplete": "⏳"}


def _headline(result: CiResult) -> str:
    if result.state == "incomplete":
        return f"batchmark ci {result.eval}: incomplete ({result.reason})"
    if result.state == "failed":
        n = len(result.failures)
        return f"batchmark ci {result.eval}: {n} gate check{'s' * (n != 1)} failed"
    return f"batchmark ci {result.eval}: passed"


def model_pairs(result: CiResult) -> list[str]:
    """``model A vs model B`` for each pair of models the gates compared inside the run."""
    pairs = dict.fromkeys((g.model_key, g.against) for g in result.gates if g.against)
    if not pairs:  # incomplete: no checks yet, but the gates' reference models are known
        return [f"models vs model {key}" for key in result.against]
    return [f"model {a} vs model {b}" for a, b in pairs]


def markdown_summary(result: CiResult) -> str:
    """GitHub-flavoured Markdown: the verdict, the gates (failures first), the comparison."""
    from batchmark.reports._render import _md_cell, _md_table, to_markdown

    lines = [f"## {_ICON[result.state]} {_headline(result)}", ""]
    against = (
        f" against baseline `{result.baseline}` (run `{result.baseline_run}`)"
        if result.baseline
        else " (no baseline)"
    )
    lines.append(f"Run `{result.run_id}`{against}; exit code {result.exit_code}.")
    if versus := model_pairs(result):
        pairs = "; ".join(f"**{_md_cell(v)}**" for v in versus)
        lines.append(f"Compared inside the run, paired by item: {pairs}.")
    lines += [f"Note: {_md_cell(note)}." for note in result.notes]
    if result.state == "incomplete" and result.comparison is None:
        lines += ["", f"Continue it with `batchmark ci --resume {result.run_id}`."]
        return "\n".join(lines) + "\n"
    counts = {s: sum(g.status == s for g in result.gates) for s in ("passed", "failed", "skipped")}
    lines += ["", f"### Gates ({', '.join(f'{n} {s}' for s, n in counts.items())})", ""]
    header = ["result", "scorer", "check", "cell", "value", "threshold", "detail"]

    def table(gates: list[GateOutcome]) -> str:
        rows = [
            [
                f"{_ICON[g.status]} {g.status}",
                g.scorer,
                g.check,
                g.cell,
                fmt_number(g.value),
                fmt_number(g.threshold),
                g.message,
            ]
            for g in gates
        ]
        return _md_table(header, rows)

    # Failures first, then skips; the passed checks folded away (a CI summary of many
    # cells would otherwise bury the one that failed).
    order = {"failed": 0, "skipped": 1}
    shown = sorted((g for g in result.gates if g.status != "passed"), key=lambda g: order[g.status])
    passed = [g for g in result.gates if g.status == "passed"]
    if shown:
        lines.append(table(shown))
    if passed:
        checks = "check" if len(passed) == 1 else "checks"
        lines += ["", f"<details><summary>{len(passed)} passed {checks}</summary>", ""]
        lines += [table(passed), "", "</details>"]
    if result.comparison is not None:
        lines += ["", to_markdown(result.comparison).rstrip()]
    for comparison in result.in_run:
        key = (comparison.baseline or "").removeprefix("model:")
        lines += ["", f"## In this run: models vs model `{_md_cell(key)}`"]
        lines += ["", to_markdown(comparison).rstrip()]
    return "\n".join(lines) + "\n"


def write_junit(result: CiResult, path: str | os.PathLike[str]) -> Path:
    """JUnit XML: one testsuite; one testcase per gate check per cell, and the run's."""
    suite = ET.Element("testsuite", name=f"batchmark ci {result.eval}")
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", result.run_id),
        ("state", result.state),
        ("exit_code", str(result.exit_code)),
        ("baseline", result.baseline or ""),
        ("baseline_run", result.baseline_run or ""),
        ("compared_in_run", "; ".join(model_pairs(result))),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    failures = skipped = errors = 0
    if result.comparison is None:
        case = ET.SubElement(suite, "testcase", classname=f"{result.eval}.run", name="complete")
        msg = f"run {result.run_id}: {result.reason}; `batchmark ci --resume {result.run_id}`"
        ET.SubElement(case, "error", message=msg, type="incomplete").text = msg
        errors = 1
    for g in result.gates:
        case = ET.SubElement(
            suite, "testcase", classname=f"{result.eval}.{g.scorer}", name=f"{g.check} [{g.cell}]"
        )
        case.set("time", "0")
        if g.status == "failed":
            ET.SubElement(case, "failure", message=g.message, type=g.check).text = g.message
            failures += 1
        elif g.status == "skipped":
            ET.SubElement(case, "skipped", message=g.message)
            skipped += 1
        else:
            ET.SubElement(case, "system-out").text = g.message
    tests = len(result.gates) + (1 if result.comparison is None else 0)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("timestamp", datetime.now(UTC).isoformat(timespec="seconds"))
    root = ET.Element("testsuites", name="batchmark ci")
    root.append(suite)
    ET.indent(root)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return out


def result_dict(result: CiResult) -> dict[str, Any]:
    """The verdict as plain data (``ci.json``)."""
    return {
        "eval": result.eval,
        "run_id": result.run_id,
        "state": result.state,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "baseline": result.baseline,
        "baseline_run": result.baseline_run,
        "against_models": list(result.against),
        "notes": list(result.notes),
        "failed_fraction": result.failed_fraction,
        "gates": [
            {
                "scorer": g.scorer,
                "check": g.check,
                "model_key": g.model_key,
                "variant": g.variant,
                "against_model": g.against,
                "status": g.status,
                "value": g.value,
                "threshold": g.threshold,
                "message": g.message,
            }
            for g in result.gates
        ],
    }


def write_reports(result: CiResult) -> CiResult:
    """``ci.json``, ``ci-summary.md`` and (once compared) ``ci-report.html`` in the run
    folder; returns the result with their paths."""
    from dataclasses import replace

    from batchmark.reports._html import write_html
    from batchmark.runs._store import atomic_writer

    folder = result.run_path
    ci_json = folder / "ci.json"
    previous = json.loads(ci_json.read_text(encoding="utf-8")) if ci_json.is_file() else {}
    write_atomic(ci_json, stable_json({**previous, **result_dict(result)}))
    paths = [ci_json, folder / "ci-summary.md"]
    write_atomic(paths[1], markdown_summary(result))
    if result.comparison is not None:
        paths.append(folder / "ci-report.html")
        title = f"batchmark ci {result.eval}: {result.run_id}"
        with atomic_writer(paths[2]) as fh:
            write_html(result.comparison, fh, title=title)
    return replace(result, reports=tuple(paths))
