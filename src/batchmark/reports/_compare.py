"""Comparison tables: per-cell scores with error bars, paired differences, item diffs, cost.

``compare(runs)`` reads the runs (scores, responses, cost, dataset clusters) and hands plain
DataFrames to :func:`compare_scores`, which does the arithmetic with ``batchmark.reports._stats``
only. docs/report.md describes every column; docs/statistics.md every formula.

A *cell* is (run, model key, variant, scorer). Each non-baseline cell is compared with the
baseline cell that agrees with it on every other coordinate: with ``baseline`` a run id,
the same model, variant and scorer in that run; a variant name, the same run, model and
scorer with that variant; a model key, the same run, variant and scorer with that model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchmark._errors import CompareError
from batchmark.reports._numbers import as_number, is_missing
from batchmark.reports._provenance import EMULATED, provenance_notes

if TYPE_CHECKING:  # pandas is imported when a comparison is made, not with the package
    import pandas as pd

    from batchmark.runs._run import Run

__all__ = ["Comparison", "compare", "compare_scores", "iter_samples", "report"]

CELL = ("run", "model_key", "variant", "scorer")
"""The coordinates of one cell of a comparison."""

_AXIS_LABEL = {"run": "run", "variant": "variant", "model_key": "model"}

CELL_COLUMNS = [
    *CELL,
    "mean",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_clusters",
    "n_missing",
    "pass_rate",
]
DIFF_COLUMNS = [
    *CELL,
    "baseline_run",
    "baseline_model_key",
    "baseline_variant",
    "n",
    "n_only_candidate",
    "n_only_baseline",
    "mean",
    "mean_baseline",
    "diff",
    "se",
    "ci_low",
    "ci_high",
    "corr",
    "significant",
    "mde",
    "n_clusters",
    "improved",
    "regressed",
    "p_value",
    "ci_method",
]
ITEM_COLUMNS = [
    *CELL,
    "baseline_run",
    "baseline_model_key",
    "baseline_variant",
    "row_id",
    "change",
    "custom_id",
    "baseline_custom_id",
]
COST_COLUMNS = [
    "run",
    "model_key",
    "variant",
    "requests",
    "succeeded",
    "errored",
    "cached",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cost_usd",
    "cost_standard_usd",
    "saving_usd",
    "reused_cost_usd",
]
SAMPLE_COLUMNS = [
    "run",
    "model_key",
    "variant",
    "row_id",
    "epoch",
    "custom_id",
    "status",
    "prompt",
    "response",
    "thinking",
    "scores",
]


@dataclass(frozen=True)
class Comparison:
    """The comparison tables, as DataFrames (docs/report.md lists their columns).

    ``cells``: one row per run x model x variant x scorer. ``diffs``: each other cell
    against its baseline cell, paired on shared items. ``items``: the shared items whose
    pass/fail outcome changed. ``cost``: tokens and cost per run x model x variant (judge
    requests as variant ``judge:<name>``). ``samples``: one row per response with its
    prompt, response text (the answer and tool calls), thinking (apart) and scores, for
    the per-item view of the HTML report (streamed by ``iter_samples``).
    ``notes``: one line each where stored scores come from another scorer config than
    the run's, or than another run's (``_provenance``).
    """

    cells: pd.DataFrame
    diffs: pd.DataFrame
    items: pd.DataFrame
    cost: pd.DataFrame
    baseline: str | None
    """What the baseline was: ``run:<id>``, ``variant:<name>`` or ``model:<key>``."""
    reducer: str = "mean"
    k: int | None = None
    cluster_field: str | None = None
    runs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sample_runs: tuple[Run, ...] = ()
    """The runs whose requests make the per-item view (read when asked, never held)."""

    def iter_samples(self) -> Iterator[dict[str, Any]]:
        """One record per request of :attr:`sample_runs` (the columns of :attr:`samples`),
        streamed from the ledgers run by run in grid order: a row's requests are adjacent."""
        return iter_samples(self.sample_runs)

    @property
    def samples(self) -> pd.DataFrame:
        """:meth:`iter_samples` as a DataFrame (it holds every prompt and response)."""
        import pandas as pd

        return pd.DataFrame(list(self.iter_samples()), columns=SAMPLE_COLUMNS)

    def __repr__(self) -> str:
        """One line: the runs, the baseline, the table sizes and the notes' count."""
        significant = int(self.diffs["significant"].sum()) if len(self.diffs) else 0
        notes = f", {len(self.notes)} note(s)" if self.notes else ""
        emulated = f", {EMULATED}" if any(n.startswith(EMULATED) for n in self.notes) else ""
        return (
            f"<Comparison of {', '.join(self.runs)}: baseline {self.baseline}, "
            f"{len(self.cells)} cells, {len(self.diffs)} differences ({significant} "
            f"significant), {len(self.items)} changed items{notes}{emulated}>"
        )

    def _repr_html_(self) -> str:
        """The scores, differences and cost as HTML tables (Jupyter)."""
        from batchmark.reports._notebook import comparison_html

        return comparison_html(self)


# --------------------------------------------------------------------------- reading


def report(
    run: Run,
    *,
    baseline: str | None = None,
    reducer: str = "mean",
    k: int | None = None,
    cluster_field: str | None = None,
) -> Comparison:
    """The comparison tables of one run: ``compare([run], ...)``."""
    return compare([run], baseline=baseline, reducer=reducer, k=k, cluster_field=cluster_field)


def compare(
    runs: Sequence[Run],
    *,
    baseline: str | None = None,
    reducer: str = "mean",
    k: int | None = None,
    cluster_field: str | None = None,
) -> Comparison:
    """Compare the cells of ``runs``: scores with 95% CIs, paired differences, cost.

    ``baseline`` is a run id, a variant name or a model key (looked up in that order), or
    one of them named with its kind: ``run:ID``, ``variant:NAME``, ``model:KEY``.
    Default: with several runs, the first run; with one run, its first variant, or its
    first model when it has a single variant. ``reducer`` (``mean``, ``pass_at_k``,
    ``pass_hat_k``, with ``k``) reduces each item's epochs. ``cluster_field`` names a
    dataset column grouping related items (clustered standard errors).
    """
    import pandas as pd

    if not runs:
        raise CompareError("nothing to compare: no runs given")
    ids = [r.id for r in runs]
    if len(set(ids)) != len(ids):
        raise CompareError(f"a run is listed twice: {', '.join(ids)}")
    frames = []
    for run in runs:
        df = run.scores_df(SCORE_COLUMNS)
        if df.empty:
            continue
        df.insert(0, "run", run.id)
        if cluster_field is not None:
            clusters = _clusters(run, cluster_field)
            df["cluster"] = df["row_id"].map(clusters)
        frames.append(df)
    scores = pd.concat(frames, ignore_index=True) if frames else _empty_scores(cluster_field)
    comparison = compare_scores(
        scores,
        baseline=baseline,
        reducer=reducer,
        k=k,
        cluster_field="cluster" if cluster_field is not None else None,
        runs=ids,
    )
    return Comparison(
        cells=comparison.cells,
        diffs=comparison.diffs,
        items=comparison.items,
        cost=_cost(runs),
        sample_runs=tuple(runs),
        baseline=comparison.baseline,
        reducer=reducer,
        k=k,
        cluster_field=cluster_field,
        runs=tuple(ids),
        notes=(*provenance_notes(runs), *_cluster_notes(comparison.cells, cluster_field)),
    )


FEW_CLUSTERS = 30
"""Below this many clusters a clustered interval is rough, whatever its quantile."""


def _cluster_notes(cells: pd.DataFrame, cluster_field: str | None) -> list[str]:
    """A note when some cell has fewer than ``FEW_CLUSTERS`` clusters."""
    if cluster_field is None or cells.empty:
        return []
    counts = [int(g) for g in cells["n_clusters"].tolist() if not is_missing(g)]
    few = sorted({g for g in counts if g < FEW_CLUSTERS})
    if not few:
        return []
    shown = ", ".join(str(g) for g in few)
    return [
        f"clustered by {cluster_field!r} with only {shown} cluster(s) in some cells: the "
        f"intervals use t with G-1 degrees of freedom, but below {FEW_CLUSTERS} clusters "
        "they are rough; read them as indications"
    ]


SCORE_COLUMNS = [*CELL[1:], "custom_id", "row_id", "epoch", "score", "passed", "invalid"]
"""The columns of ``Run.scores_df()`` a comparison reads (then ``run`` goes in front)."""


def _empty_scores(cluster_field: str | None) -> pd.DataFrame:
    import pandas as pd

    columns = ["run", *SCORE_COLUMNS]
    return pd.DataFrame(columns=[*columns, *(["cluster"] if cluster_field else [])])


def _clusters(run: Run, field: str) -> dict[str, Any]:
    """Each row id's value of ``field`` in the run's dataset."""
    from batchmark.runs._datasets import iter_rows

    out: dict[str, Any] = {}
    for row in iter_rows(run.spec()):
        if field not in row.data:
            raise CompareError(
                f"run {run.id}: cluster field {field!r} is not a column of the dataset "
                f"(available: {', '.join(row.data)})"
            )
        value = row.data[field]
        out[row.id] = None if value == "" else value
    return out


def _cost(runs: Sequence[Run]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for run in runs:
        for cell in run.summary():
            row = {"run": run.id, "model_key": cell.pop("model"), **cell}
            standard, cost = row["cost_standard_usd"], row["cost_usd"]
            row["saving_usd"] = None if cost is None else standard - cost
            rows.append(row)
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        else:
            parts.append(f"[{block.get('type')}]")
    return "".join(parts)


def _prompt(params: Mapping[str, Any]) -> str:
    lines = []
    if params.get("system"):
        lines.append(f"system: {_text(params['system'])}")
    for m in params.get("messages", []):
        lines.append(f"{m['role']}: {_text(m['content'])}")
    return "\n\n".join(lines)


def _peeking(records: Iterator[dict[str, Any]]) -> Callable[[str], list[dict[str, Any]]]:
    """``take(custom_id)``: the records at the head of ``records`` with that custom_id
    (the streams are all in grid order, so a request's records are next or absent)."""
    head: list[dict[str, Any] | None] = [next(records, None)]

    def take(custom_id: str) -> list[dict[str, Any]]:
        out = []
        while head[0] is not None and head[0]["custom_id"] == custom_id:
            out.append(head[0])
            head[0] = next(records, None)
        return out

    return take


def iter_samples(runs: Sequence[Run]) -> Iterator[dict[str, Any]]:
    """One record per request: its prompt, response and every score, for the per-item
    view; requests with their final responses, and scores, read side by side in grid
    order."""
    for run in runs:
        scores = _peeking(run.scores())
        for req in run.answered_requests():
            custom_id = req["custom_id"]
            resp = req["data"] or {}
            text = resp.get("text") or ""
            for call in resp.get("tool_calls") or []:
                text += f"\n[tool_use {call.get('name')}] {call.get('input')}"
            if resp.get("error_type"):
                text += f"[{resp['error_type']}] {resp.get('error_message') or ''}"
            yield {
                "run": run.id,
                "model_key": req["model_key"],
                "variant": req["variant"],
                "row_id": req["row_id"],
                "epoch": req["epoch"],
                "custom_id": custom_id,
                "status": req["status"] or req["state"],
                "prompt": _prompt(req["params"]),
                "response": text.strip(),
                "thinking": resp.get("thinking") or "",
                "scores": [
                    {
                        "scorer": rec["scorer"],
                        "score": as_number(rec["score"]),
                        "passed": None if is_missing(rec["passed"]) else bool(rec["passed"]),
                        "invalid": bool(rec["invalid"]),
                        "explanation": rec.get("explanation"),
                    }
                    for rec in scores(custom_id)
                ],
            }


# --------------------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class _Tables:
    cells: pd.DataFrame
    diffs: pd.DataFrame
    items: pd.DataFrame
    baseline: str | None


def compare_scores(
    scores: pd.DataFrame,
    *,
    baseline: str | None = None,
    reducer: str = "mean",
    k: int | None = None,
    cluster_field: str | None = None,
    runs: Sequence[str] | None = None,
) -> _Tables:
    """The cells, diffs and items tables from a scores DataFrame (pure; no I/O).

    ``scores`` has the columns of ``Run.scores_df()`` plus ``run`` (and ``cluster_field``
    when given). ``runs`` orders the runs (default: their order of appearance).
    """
    import pandas as pd

    from batchmark.reports._stats import item_values, mcnemar_exact, paired_diff, summarize_scores

    if reducer not in ("mean", "pass_at_k", "pass_hat_k"):
        raise CompareError(f"reducer must be mean, pass_at_k or pass_hat_k, got {reducer!r}")
    if reducer != "mean" and k is None:
        raise CompareError(f"the {reducer} reducer needs k (--k N)")
    df = scores.copy()
    # Invalid scores are left out (counted in n_missing), for the pass/fail outcome too.
    invalid = df["invalid"].astype(bool)
    df["score"] = pd.to_numeric(df["score"], errors="coerce").astype(float).where(~invalid)
    passed = df["passed"].map(lambda v: math.nan if is_missing(v) else float(bool(v)))
    df["passed"] = passed.astype(float).where(~invalid)
    run_order = list(runs) if runs is not None else list(dict.fromkeys(df["run"]))
    axis, value = _resolve_baseline(df, baseline, run_order)
    method: Any = reducer
    try:
        values = item_values(df, method=method, k=k, by=CELL)
        cells = summarize_scores(
            df, method=method, k=k, cluster_field=cluster_field, by=CELL, values=values
        ).astype({"n": int, "n_missing": int})
        per_cell = _by_cell(values)
        del values  # the flat dict: per_cell holds the same, by cell
        # An item's pass/fail outcome: its ``passed`` reduced like its score (pass@k and
        # pass^k reduce ``passed`` already).
        per_cell_outcome = (
            _by_cell(item_values(df, method=method, k=k, by=CELL, column="passed"))
            if reducer == "mean"
            else per_cell
        )
    except ValueError as err:
        raise CompareError(str(err)) from err
    rates = df.groupby(list(CELL), sort=False)["passed"].mean()
    cells["pass_rate"] = [rates.get(tuple(c), math.nan) for c in cells[list(CELL)].values]
    cells = _sorted(cells[CELL_COLUMNS], df, run_order)
    if axis is None or not len(df):
        empty_diffs = pd.DataFrame(columns=DIFF_COLUMNS)
        return _Tables(cells, empty_diffs, pd.DataFrame(columns=ITEM_COLUMNS), None)

    cluster_of: dict[Hashable, Hashable] = {}
    if cluster_field is not None:
        labels = df.groupby(["run", "row_id"], sort=False)[cluster_field].first()
        cluster_of = {key: label for key, label in labels.items()}
    position = {name: i for i, name in enumerate(CELL)}
    diffs, items = [], []
    for cell in cells[list(CELL)].itertuples(index=False, name=None):
        if cell[position[axis]] == value:
            continue
        base = list(cell)
        base[position[axis]] = value
        base_cell = tuple(base)
        if base_cell not in per_cell:
            continue
        cand, ref = per_cell.get(cell, {}), per_cell[base_cell]
        clusters = None
        if cluster_field is not None:
            shared = [i for i in cand if i in ref]
            clusters = {
                i: cluster_of.get((base_cell[0], i), cluster_of.get((cell[0], i))) for i in shared
            }
        d = paired_diff(cand, ref, clusters=clusters)
        ref_out, cand_out = per_cell_outcome.get(base_cell, {}), per_cell_outcome.get(cell, {})
        changed = _changes(ref_out, cand_out)
        binary = all(v in (0.0, 1.0) for v in (*ref_out.values(), *cand_out.values()))
        p_value = math.nan
        if binary and ref_out and cand_out:
            p_value = mcnemar_exact(
                {i: bool(v) for i, v in ref_out.items()}, {i: bool(v) for i, v in cand_out.items()}
            ).p_value
        diffs.append(
            {
                **dict(zip(CELL, cell, strict=True)),
                "baseline_run": base_cell[0],
                "baseline_model_key": base_cell[1],
                "baseline_variant": base_cell[2],
                "n": d.n,
                "n_only_candidate": d.n_only_a,
                "n_only_baseline": d.n_only_b,
                "mean": d.mean_a,
                "mean_baseline": d.mean_b,
                "diff": d.mean,
                "se": d.se,
                "ci_low": d.ci_low,
                "ci_high": d.ci_high,
                "corr": d.correlation,
                "significant": d.significant,
                "mde": d.mde,
                "n_clusters": d.n_clusters,
                "improved": len(changed["improved"]),
                "regressed": len(changed["regressed"]),
                "p_value": p_value,
                "ci_method": d.method,
            }
        )
        for change in ("regressed", "improved"):
            for row_id in changed[change]:
                items.append(
                    {
                        **dict(zip(CELL, cell, strict=True)),
                        "baseline_run": base_cell[0],
                        "baseline_model_key": base_cell[1],
                        "baseline_variant": base_cell[2],
                        "row_id": row_id,
                        "change": change,
                        "custom_id": (*cell, row_id),  # until looked up, below
                        "baseline_custom_id": (*base_cell, row_id),
                    }
                )
    if items:  # each changed item's request (epoch 0), looked up for those items only
        changed_rows = df[df["row_id"].isin({i["row_id"] for i in items})]
        first_ids = (
            changed_rows.groupby([*CELL, "row_id"], sort=False, observed=True)["custom_id"]
            .first()
            .to_dict()
        )
        for item in items:
            item["custom_id"] = first_ids.get(item["custom_id"])
            item["baseline_custom_id"] = first_ids.get(item["baseline_custom_id"])
    diff_df = pd.DataFrame(diffs, columns=DIFF_COLUMNS)
    diff_df["significant"] = diff_df["significant"].astype(bool)
    for col in ("n", "n_only_candidate", "n_only_baseline", "improved", "regressed"):
        diff_df[col] = diff_df[col].astype(int)
    return _Tables(
        cells, diff_df, pd.DataFrame(items, columns=ITEM_COLUMNS), f"{_AXIS_LABEL[axis]}:{value}"
    )


def _sorted(cells: pd.DataFrame, df: pd.DataFrame, runs: Sequence[str]) -> pd.DataFrame:
    """Cells by run (as given), model, variant, scorer (each in order of appearance)."""
    if cells.empty:
        return cells.reset_index(drop=True)
    order = {"run": {r: i for i, r in enumerate(runs)}}
    for col in CELL[1:]:
        order[col] = {v: i for i, v in enumerate(dict.fromkeys(df[col]))}
    keys = cells[list(CELL)].apply(lambda c: tuple(order[k][c[k]] for k in CELL), axis=1)
    return cells.loc[keys.sort_values(kind="stable").index].reset_index(drop=True)


def _by_cell(values: Mapping[tuple, float]) -> dict[tuple, dict[Hashable, float]]:
    out: dict[tuple, dict[Hashable, float]] = {}
    for (*cell, row_id), v in values.items():
        out.setdefault(tuple(cell), {})[row_id] = float(v)
    return out


def _changes(ref: Mapping[Hashable, float], cand: Mapping[Hashable, float]) -> dict[str, list]:
    """Shared items that went from pass (1) to fail (0) and back, in the baseline's order.

    An item whose outcome is neither (epochs that disagree) changes nothing.
    """
    shared = [i for i in ref if i in cand]
    return {
        "regressed": [i for i in shared if ref[i] == 1.0 and cand[i] == 0.0],
        "improved": [i for i in shared if ref[i] == 0.0 and cand[i] == 1.0],
    }


def _resolve_baseline(
    df: pd.DataFrame, baseline: str | None, runs: Sequence[str]
) -> tuple[str | None, Any]:
    """(column, value) of the baseline; (None, None) when there is nothing to compare."""
    variants = list(dict.fromkeys(df["variant"]))
    models = list(dict.fromkeys(df["model_key"]))
    if baseline is None:
        if len(runs) > 1:
            return "run", runs[0]
        if len(variants) > 1:
            return "variant", variants[0]
        if len(models) > 1:
            return "model_key", models[0]
        return None, None
    axes = (("run", runs), ("variant", variants), ("model_key", models))
    for axis, names in axes:  # `model:KEY` (as `Comparison.baseline` reads) names the axis
        label = f"{_AXIS_LABEL[axis]}:"
        if baseline.startswith(label) and baseline[len(label) :] in names:
            return axis, baseline[len(label) :]
    for axis, names in axes:
        if baseline in names:
            return axis, baseline
    raise CompareError(
        f"baseline {baseline!r} is not a run, variant or model of this comparison "
        f"(runs: {', '.join(runs)}; variants: {', '.join(variants)}; "
        f"models: {', '.join(models)})"
    )
