"""The comparison tables' numbers: hand-computed on small synthetic data and real runs.

Rendering is tested separately (tests/reports/test_render.py); here only the DataFrames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import scipy.stats

import batchmark
from batchmark.reports._compare import (
    CELL_COLUMNS,
    COST_COLUMNS,
    DIFF_COLUMNS,
    ITEM_COLUMNS,
    CompareError,
    compare,
    compare_scores,
    report,
)

from .support import JUDGE, RIGHT, ROWS, html_items, isolated, make_run

INCLUDES = {"includes": {"target": "{{ answer }}"}}


def scores_frame(cells: dict[tuple[str, str], dict[str, Any]], **extra: Any) -> pd.DataFrame:
    """A scores DataFrame: ``{(variant, row_id): score or [epoch scores] or None (invalid)}``.

    Every row is run ``r``, model ``m``, scorer ``s``; ``passed`` is ``score == 1``.
    """
    rows = []
    for (variant, row_id), value in cells.items():
        values = value if isinstance(value, list) else [value]
        for epoch, v in enumerate(values):
            rows.append(
                {
                    "run": "r",
                    "custom_id": f"{variant}-{row_id}-{epoch}",
                    "variant": variant,
                    "model_key": "m",
                    "row_id": row_id,
                    "epoch": epoch,
                    "scorer": "s",
                    "score": None if v is None else float(v),
                    "passed": None if v is None else v == 1,
                    "invalid": v is None,
                    "explanation": "",
                    "answer": None,
                    **{k: f[row_id] for k, f in extra.items()},
                }
            )
    return pd.DataFrame(rows)


# Baseline a: q1..q5; candidate b: q1..q4 and q6, plus an invalid q7.
BASE = {"q1": 1, "q2": 1, "q3": 0, "q4": 1, "q5": 0}
CAND = {"q1": 1, "q2": 0, "q3": 1, "q4": 1, "q6": 1, "q7": None}
UNEVEN = scores_frame(
    {**{("a", i): v for i, v in BASE.items()}, **{("b", i): v for i, v in CAND.items()}}
)


def one(df: pd.DataFrame, **where: Any) -> dict[str, Any]:
    rows = df
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


# --------------------------------------------------------------------------- synthetic


def test_cell_mean_se_and_interval_are_over_items() -> None:
    tables = compare_scores(UNEVEN)
    a = one(tables.cells, variant="a")
    se = math.sqrt(0.3) / math.sqrt(5)  # deviations .4 .4 -.6 .4 -.6: s² = 1.2 / 4
    assert (a["mean"], a["n"], a["n_missing"], a["pass_rate"]) == (0.6, 5, 0, 0.6)
    assert a["se"] == pytest.approx(se)
    wilson = scipy.stats.binomtest(3, 5).proportion_ci(0.95, method="wilson")  # pass/fail
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((wilson.low, wilson.high))
    assert list(tables.cells.columns) == CELL_COLUMNS


def test_invalid_scores_are_left_out_and_counted() -> None:
    b = one(compare_scores(UNEVEN).cells, variant="b")
    assert (b["mean"], b["n"], b["n_missing"], b["pass_rate"]) == (0.8, 5, 1, 0.8)


def test_only_shared_items_are_paired_and_the_rest_reported() -> None:
    tables = compare_scores(UNEVEN)
    assert tables.baseline == "variant:a"
    d = one(tables.diffs, variant="b")
    # Shared q1..q4: d = b - a = [0, -1, +1, 0]: mean 0, sd √(2/3), se sd/2.
    se = math.sqrt(2 / 3) / 2
    assert (d["n"], d["n_only_candidate"], d["n_only_baseline"]) == (4, 1, 1)
    assert (d["mean"], d["mean_baseline"], d["diff"]) == (0.75, 0.75, 0.0)
    assert d["se"] == pytest.approx(se)
    # Pass/fail pairs: Bonett-Price, one gained (f) and one lost (g) of n = 4:
    # p1 = p2 = 2/6, centre 0, half z * sqrt((2/6 + 2/6 - 0) / 6).
    half = scipy.stats.norm.ppf(0.975) * math.sqrt((4 / 6) / 6)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((-half, half))
    assert d["corr"] == pytest.approx(-1 / 3)
    assert d["mde"] == pytest.approx((1.959964 + 0.841621) * se)
    assert not d["significant"]
    # One improved (q3), one regressed (q2): p = 2 · P(X <= 1 | n=2, 1/2) capped at 1.
    assert (d["improved"], d["regressed"], d["p_value"]) == (1, 1, 1.0)
    assert list(tables.diffs.columns) == DIFF_COLUMNS


def test_changed_items_name_row_and_custom_ids() -> None:
    items = compare_scores(UNEVEN).items
    assert list(items.columns) == ITEM_COLUMNS
    got = items[["row_id", "change", "custom_id", "baseline_custom_id"]].values.tolist()
    assert got == [["q2", "regressed", "b-q2-0", "a-q2-0"], ["q3", "improved", "b-q3-0", "a-q3-0"]]


def test_a_clear_difference_is_significant_with_a_small_mcnemar_p() -> None:
    base = {("a", f"q{i}"): 0 for i in range(8)}
    cand = {("b", f"q{i}"): int(i < 6) for i in range(8)}
    d = one(compare_scores(scores_frame({**base, **cand})).diffs, variant="b")
    se = math.sqrt(6 * 0.25**2 + 2 * 0.75**2) / math.sqrt(7) / math.sqrt(8)
    assert d["diff"] == 0.75 and d["se"] == pytest.approx(se)
    assert d["significant"] and d["ci_low"] > 0
    assert d["p_value"] == pytest.approx(2 / 2**6)  # 6 improved, none regressed


EPOCHS = scores_frame(
    {("a", "q1"): [1, 0], ("a", "q2"): [1, 1], ("a", "q3"): [0, 0]}
    | {("b", "q1"): [1, 1], ("b", "q2"): [1, 1], ("b", "q3"): [0, 1]}
)


@pytest.mark.parametrize(
    ("reducer", "k", "mean_a"),
    [("mean", None, 0.5), ("pass_at_k", 1, 0.5), ("pass_at_k", 2, 2 / 3), ("pass_hat_k", 2, 1 / 3)],
)
def test_epochs_are_reduced_per_item_first(reducer: str, k: int | None, mean_a: float) -> None:
    a = one(compare_scores(EPOCHS, reducer=reducer, k=k).cells, variant="a")
    assert a["n"] == 3  # items, not samples
    assert a["mean"] == pytest.approx(mean_a)


def test_mcnemar_needs_pass_fail_items() -> None:
    mean = one(compare_scores(EPOCHS).diffs, variant="b")
    assert math.isnan(mean["p_value"])  # q1 is 0.5 in a, q3 0.5 in b
    assert (mean["improved"], mean["regressed"]) == (0, 0)
    at2 = one(compare_scores(EPOCHS, reducer="pass_at_k", k=2).diffs, variant="b")
    assert (at2["improved"], at2["regressed"], at2["p_value"]) == (1, 0, 1.0)  # q3


def test_reducer_errors_are_user_errors() -> None:
    with pytest.raises(CompareError, match="needs k"):
        compare_scores(EPOCHS, reducer="pass_at_k")
    with pytest.raises(CompareError, match="k=3 is more than its 2 epochs"):
        compare_scores(EPOCHS, reducer="pass_hat_k", k=3)


def test_clustered_standard_errors() -> None:
    topic = {"q1": "x", "q2": "x", "q3": "y", "q4": "y"}
    df = scores_frame(
        {("a", "q1"): 1, ("a", "q2"): 1, ("a", "q3"): 0, ("a", "q4"): 0}, cluster=topic
    )
    plain = one(compare_scores(df).cells, variant="a")
    clustered = one(compare_scores(df, cluster_field="cluster").cells, variant="a")
    assert plain["se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    # Cluster residual sums +1 and -1: SE² = G/(G-1) · 2 / n² = 2 · 2 / 16.
    assert (clustered["se"], clustered["n_clusters"]) == (pytest.approx(0.5), 2)


def test_unknown_baseline_lists_what_there_is() -> None:
    with pytest.raises(CompareError, match=r"baseline 'zz' .*variants: a, b; models: m"):
        compare_scores(UNEVEN, baseline="zz")


def test_a_baseline_named_with_its_kind_picks_that_axis() -> None:
    """`model:m` is model m, also where a variant is named m (a bare `m` is the variant)."""
    import pandas as pd

    df = scores_frame({("m", "q1"): 1, ("m", "q2"): 0, ("x", "q1"): 1, ("x", "q2"): 1})
    df = pd.concat([df, df.assign(model_key="n", score=1.0, passed=True)], ignore_index=True)

    assert compare_scores(df, baseline="m").baseline == "variant:m"
    by_model = compare_scores(df, baseline="model:m")
    assert by_model.baseline == "model:m"
    pairs = by_model.diffs[["model_key", "baseline_model_key"]].drop_duplicates()
    assert pairs.values.tolist() == [["n", "m"]]
    assert compare_scores(df, baseline="variant:x").baseline == "variant:x"


def test_baseline_may_be_the_other_variant() -> None:
    d = one(compare_scores(UNEVEN, baseline="b").diffs, variant="a")
    assert (d["baseline_variant"], d["n_only_candidate"], d["n_only_baseline"]) == ("b", 1, 1)


# --------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, batchmark.Run]]:
    """A judged run of six items, and a second run on items q2..q7."""
    root = tmp_path_factory.mktemp("compare")
    with isolated(root):
        shifted = [*ROWS[1:], {"id": "q7", "question": "What is 7 + 7?", "answer": "14"}]
        yield {
            "main": make_run(root / "main", scorers=[INCLUDES, JUDGE]),
            "shifted": make_run(root / "shifted", rows=[{**r, "topic": "t"} for r in shifted]),
            "single": make_run(root / "single", models=["claude-haiku-4-5"], variants=("plain",)),
        }


def test_report_of_a_run_compares_variants_on_each_model(runs: dict[str, batchmark.Run]) -> None:
    comp = report(runs["main"])
    assert comp.baseline == "variant:plain" and comp.runs == (runs["main"].id,)
    for (model, variant), right in RIGHT.items():
        for scorer in ("includes", "grader"):
            cell = one(comp.cells, model_key=model, variant=variant, scorer=scorer)
            assert (cell["mean"], cell["n"]) == (pytest.approx(len(right) / 6), 6)
    d = one(comp.diffs, model_key="claude-haiku-4-5", variant="terse", scorer="includes")
    # d = [0, 0, 0, 1, 1, 0]: mean 1/3, s² = (4/9 · 4 + 4/9 · 2) / 5... = 12/45.
    assert d["diff"] == pytest.approx(1 / 3)
    assert d["se"] == pytest.approx(math.sqrt(12 / 45) / math.sqrt(6))
    assert (d["improved"], d["regressed"], d["p_value"]) == (2, 0, 0.5)
    assert len(comp.diffs) == 4  # 2 models x 2 scorers, terse vs plain


def test_changed_items_carry_the_runs_custom_ids(runs: dict[str, batchmark.Run]) -> None:
    comp = report(runs["main"])
    ids = {
        (r["variant"], r["model_key"], r["row_id"]): r["custom_id"] for r in runs["main"].requests()
    }
    items = comp.items[comp.items["scorer"] == "grader"]
    assert [(i["row_id"], i["change"], i["model_key"]) for i in items.to_dict("records")] == [
        ("q4", "improved", "claude-haiku-4-5"),
        ("q5", "improved", "claude-haiku-4-5"),
        ("q1", "regressed", "claude-sonnet-4-6"),
    ]
    for i in items.to_dict("records"):
        assert i["custom_id"] == ids["terse", i["model_key"], i["row_id"]]
        assert i["baseline_custom_id"] == ids["plain", i["model_key"], i["row_id"]]


def test_baseline_model_compares_models_on_each_variant(runs: dict[str, batchmark.Run]) -> None:
    comp = report(runs["main"], baseline="claude-sonnet-4-6")
    assert comp.baseline == "model:claude-sonnet-4-6"
    d = one(comp.diffs, model_key="claude-haiku-4-5", variant="plain", scorer="includes")
    assert (d["diff"], d["regressed"], d["improved"]) == (-0.5, 3, 0)


def test_runs_with_different_items_pair_only_shared_ones(runs: dict[str, batchmark.Run]) -> None:
    comp = compare([runs["main"], runs["shifted"]])
    assert comp.baseline == f"run:{runs['main'].id}"
    # The shifted run has no judge: only `includes` is compared, cell by cell.
    assert set(comp.diffs["scorer"]) == {"includes"} and len(comp.diffs) == 4
    d = one(comp.diffs, model_key="claude-haiku-4-5", variant="terse")
    assert (d["n"], d["n_only_candidate"], d["n_only_baseline"]) == (5, 1, 1)  # q7 / q1
    # Same answers on q2..q6 (q2-q5 right); the shifted run's own mean includes q7.
    assert (d["mean"], d["mean_baseline"], d["diff"], d["se"]) == (0.8, 0.8, 0.0, 0.0)
    cell = one(comp.cells, run=runs["shifted"].id, model_key="claude-haiku-4-5", variant="terse")
    assert (cell["mean"], cell["n"]) == (pytest.approx(4 / 6), 6)


def test_cost_is_the_runs_summary_at_batch_prices(runs: dict[str, batchmark.Run]) -> None:
    cost = report(runs["main"]).cost
    assert list(cost.columns) == COST_COLUMNS
    summary = {(c["model"], c["variant"]): c for c in runs["main"].summary()}
    assert set(zip(cost["model_key"], cost["variant"], strict=True)) == set(summary)
    assert "judge:grader" in set(cost["variant"])
    for c in cost.to_dict("records"):
        assert c["cost_usd"] == pytest.approx(summary[c["model_key"], c["variant"]]["cost_usd"])
        assert c["cost_standard_usd"] == pytest.approx(2 * c["cost_usd"])
        assert c["saving_usd"] == pytest.approx(c["cost_usd"]) and c["cost_usd"] > 0


def test_cluster_field_is_read_from_the_dataset(runs: dict[str, batchmark.Run]) -> None:
    comp = report(runs["main"], cluster_field="topic")
    cell = one(comp.cells, model_key="claude-haiku-4-5", variant="plain", scorer="includes")
    # q1-q3 (small) right, q4-q6 (large) wrong: residual sums ±1.5, SE² = 2 · 4.5 / 36.
    assert (cell["se"], cell["n_clusters"]) == (pytest.approx(0.5), 2)
    d = one(comp.diffs, model_key="claude-haiku-4-5", scorer="includes")
    assert d["n_clusters"] == 2
    # Two clusters: the report says the intervals are rough (t with 1 df is very wide).
    assert any("only 2 cluster(s)" in n and "'topic'" in n for n in comp.notes)
    assert not any("cluster" in n for n in report(runs["main"]).notes)
    with pytest.raises(CompareError, match="cluster field 'nope' is not a column"):
        report(runs["main"], cluster_field="nope")


def test_samples_hold_prompt_response_and_explanations(runs: dict[str, batchmark.Run]) -> None:
    samples = report(runs["main"]).samples
    assert len(samples) == 24
    s = one(samples, model_key="claude-haiku-4-5", variant="terse", row_id="q6")
    assert s["prompt"] == "system: Answer tersely.\n\nuser: What is 6 + 6?"
    assert s["response"] == "I do not know."
    grader = next(x for x in s["scores"] if x["scorer"] == "grader")
    assert grader["explanation"] == "reference 12 missing" and grader["passed"] is False


def test_a_single_cell_run_has_no_baseline(runs: dict[str, batchmark.Run]) -> None:
    comp = report(runs["single"])
    assert comp.baseline is None and comp.diffs.empty and comp.items.empty
    assert len(comp.cells) == 1


def test_a_run_listed_twice_is_refused(runs: dict[str, batchmark.Run]) -> None:
    with pytest.raises(CompareError, match="listed twice"):
        compare([runs["single"], runs["single"]])


def test_reading_a_run_folder_gives_the_same_tables(runs: dict[str, batchmark.Run]) -> None:
    again = report(batchmark.open_run(Path(runs["main"].path)))
    pd.testing.assert_frame_equal(again.diffs, report(runs["main"]).diffs)


def test_html_item_view_holds_every_request_once_and_each_prompt_once(
    runs: dict[str, batchmark.Run],
) -> None:
    from batchmark.reports._render import render

    comp = report(runs["main"])
    page = render(comp, "html")
    items = html_items(page)
    assert [i["row_id"] for i in items] == [r["id"] for r in ROWS]
    samples = comp.samples
    for item in items:
        # 2 models x 2 variants: 4 cells, but only the 2 variants' prompts, each once
        assert len(item["cells"]) == 4 and len(item["prompts"]) == 2
        for cell in item["cells"]:
            s = one(samples, custom_id=cell["custom_id"])
            assert cell["prompt"] == s["prompt"] and cell["response"] == s["response"]
            assert [x["why"] for x in cell["scores"]] == [
                x["explanation"] or "" for x in s["scores"]
            ]
    # The system prompt of 12 requests, written once in the whole page.
    assert page.count("Answer tersely.") == 1


def test_html_item_view_of_two_runs_has_each_runs_cells_under_the_shared_row_ids(
    runs: dict[str, batchmark.Run],
) -> None:
    from batchmark.reports._render import render

    items = html_items(render(compare([runs["main"], runs["shifted"]]), "html"))
    by_run = [(i["row_id"], len(i["cells"])) for i in items]
    # The main run's rows, then the shifted run's (q2..q7), 4 cells each; the page's
    # script lists q2..q6 once each, with both runs' cells.
    assert by_run == [(r["id"], 4) for r in ROWS] + [(f"q{i}", 4) for i in range(2, 8)]
    labels = {c["cell"] for i in items for c in i["cells"]}
    assert len(labels) == 8  # run / model / variant: 2 runs x 2 models x 2 variants
