"""Statistics: hand-computed examples, scipy on known and random data, invariants."""

from __future__ import annotations

import itertools
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from batchmark.reports._stats import (
    Z95,
    binom_two_sided_half,
    bonett_price,
    critical_value,
    item_diff,
    item_scores,
    mcnemar_exact,
    mean_ci,
    min_detectable_effect,
    min_detectable_effect_unpaired,
    norm_cdf,
    norm_ppf,
    paired_diff,
    pass_at_k,
    pass_hat_k,
    pearson,
    reduce_epochs,
    summarize_scores,
    t_ppf,
)

# ------------------------------------------------------------------ hand-computed


def test_mean_ci_of_five_pass_fail_items_by_hand() -> None:
    # values 1 0 1 1 0: mean 3/5 = 0.6; residuals .4 -.6 .4 .4 -.6, squares sum to
    # 3(.16) + 2(.36) = 1.2; s² = 1.2 / 4 = 0.3; SE = √(0.3 / 5) = √0.06.
    est = mean_ci([True, False, True, True, False])
    se = math.sqrt(0.06)
    assert (est.mean, est.n, est.n_clusters) == (pytest.approx(0.6), 5, None)
    assert est.se == pytest.approx(se)
    assert est.se == pytest.approx(0.2449490, abs=1e-7)
    # Pass/fail: the Wilson interval of 3/5 (z = 1.959964): centre (0.6 + 3.841459/10) /
    # 1.768292 = 0.556543, half 1.959964 · √(0.048 + 0.038415) / 1.768292 = 0.325833.
    assert est.method == "wilson"
    assert (est.ci_low, est.ci_high) == pytest.approx((0.2307, 0.8824), abs=1e-4)
    wald = mean_ci([True, False, True, True, False], dist="normal")
    assert wald.method == "wilson"  # dist chooses the quantile, not the kind, for [0, 1]


A = {"q1": 0.9, "q2": 0.5, "q3": 0.8, "q4": 0.2, "q5": 0.6, "q6": 1.0}
B = {"q1": 0.7, "q2": 0.5, "q3": 0.4, "q4": 0.1, "q5": 0.8, "q7": 0.0}


def test_paired_diff_of_five_shared_items_by_hand() -> None:
    # d = a - b on q1..q5: .2 0 .4 .1 -.2, mean .1; residuals .1 -.1 .3 0 -.3, squares
    # sum to .2; sd² = .2 / 4 = .05; SE = √(.05 / 5) = 0.1; CI .1 ± t(0.975, 4) · .1
    # (2.776445), or ± 1.959964 · .1 with dist="normal".
    # Pearson: a - ā = .3 -.1 .2 -.4 0, b - b̄ = .2 0 -.1 -.4 .3; Σ products = .2,
    # Σ squares = .3 and .3, r = 2/3.
    diff = paired_diff(A, B)
    assert diff.n == 5
    assert diff.mean == pytest.approx(0.1)
    assert diff.se == pytest.approx(0.1)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((-0.1776445, 0.3776445), abs=1e-7)
    z = paired_diff(A, B, dist="normal")
    assert (z.ci_low, z.ci_high) == pytest.approx((-0.0959964, 0.2959964), abs=1e-7)
    assert (diff.mean_a, diff.mean_b) == pytest.approx((0.6, 0.5))
    assert diff.correlation == pytest.approx(2 / 3)
    assert (diff.only_a, diff.only_b) == (("q6",), ("q7",))
    assert (diff.n_only_a, diff.n_only_b) == (1, 1)
    assert not diff.significant
    assert diff.mde == pytest.approx(2.8015852 * 0.1, abs=1e-7)


def test_clustered_se_by_hand() -> None:
    # x = 1 1 | 0 0 | 1 0, mean .5; residual sums per cluster 1, -1, 0; Σ squares = 2;
    # SE² = G/(G-1) · 2 / n² = 3/2 · 2/36 = 1/12 (Miller eq. 4 alone gives 2/36).
    est = mean_ci([1, 1, 0, 0, 1, 0], clusters=["g1", "g1", "g2", "g2", "g3", "g3"])
    assert est.se == pytest.approx(math.sqrt(1 / 12))
    assert est.n_clusters == 3
    assert mean_ci([1, 1, 0, 0, 1, 0]).se == pytest.approx(math.sqrt(0.05))


def test_clustered_paired_diff_clusters_the_differences() -> None:
    a = {"x": 1.0, "y": 1.0, "z": 0.0, "w": 1.0}
    b = {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}
    # d = 1 1 0 0, mean .5; cluster sums (x, y) 1, (z, w) -1; SE² = 2/1 · 2/16 = 1/4.
    diff = paired_diff(a, b, clusters={"x": "c1", "y": "c1", "z": "c2", "w": "c2"})
    assert diff.se == pytest.approx(0.5)
    assert diff.n_clusters == 2


def test_one_cluster_has_no_se() -> None:
    est = mean_ci([1, 0, 1], clusters=["g", "g", "g"])
    assert math.isnan(est.se) and est.n_clusters == 1


def test_cluster_labels_must_match_values() -> None:
    with pytest.raises(ValueError, match="2 labels for 3 values"):
        mean_ci([1, 0, 1], clusters=["a", "b"])


def test_missing_cluster_labels_form_their_own_cluster() -> None:
    est = mean_ci([1, 1, 0, 0], clusters=["a", "a", None, None])
    assert est.n_clusters == 2


def test_empty_and_single_values_give_nan_without_warnings() -> None:
    empty = mean_ci([])
    assert empty.n == 0 and all(math.isnan(v) for v in (empty.mean, empty.se, empty.ci_low))
    one = mean_ci([1.7])
    assert one.n == 1 and one.mean == 1.7 and math.isnan(one.se) and math.isnan(one.ci_high)
    assert math.isnan(mean_ci([1.7], dist="normal").ci_low)
    single = mean_ci([1.0])  # one pass: the Wilson interval of 1/1 is defined
    assert single.ci_low == pytest.approx(0.2065, abs=1e-4) and single.ci_high == 1.0
    nothing_shared = paired_diff({"a": 1.0}, {"b": 1.0})
    assert nothing_shared.n == 0 and math.isnan(nothing_shared.mean)
    assert not nothing_shared.significant


def test_t_interval_is_wider_than_normal_for_small_n() -> None:
    values = [1.2, 1.4, 1.9, 1.5]  # not in [0, 1]: mean ± q · SE, t by default
    z, t = mean_ci(values, dist="normal"), mean_ci(values)
    assert t.se == z.se and t.ci_high - t.ci_low > z.ci_high - z.ci_low
    assert t.ci_high - t.mean == pytest.approx(3.182446305 * t.se)


def test_mcnemar_one_against_six_matches_scipy_binomtest() -> None:
    # 2 · P(X ≤ 1) for X ~ Bin(7, 1/2) = 2 · (1 + 7) / 128 = 0.125.
    pairs = [(False, True)] + [(True, False)] * 6 + [(True, True)] * 3 + [(False, False)] * 2
    a = {f"q{i}": pa for i, (pa, _) in enumerate(pairs)}
    b = {f"q{i}": pb for i, (_, pb) in enumerate(pairs)}
    result = mcnemar_exact(a, b)
    assert (result.b01, result.b10, result.n) == (1, 6, 12)
    assert result.p_value == pytest.approx(0.125)
    assert result.p_value == pytest.approx(scipy.stats.binomtest(1, 7, 0.5).pvalue)


def test_mcnemar_without_discordant_items_is_one() -> None:
    assert mcnemar_exact({"x": True}, {"x": True, "y": False}).p_value == 1.0


def test_item_diff_goes_from_baseline_to_candidate() -> None:
    baseline = {"a": True, "b": False, "c": True, "d": False, "only_base": True}
    candidate = {"a": False, "b": True, "c": True, "d": False, "only_cand": False}
    assert item_diff(baseline, candidate) == {"regressed": ["a"], "improved": ["b"]}


# ------------------------------------------------------------------ epochs


def _brute_force(n: int, c: int, k: int) -> tuple[float, float]:
    """Fraction of k-subsets of n samples (c correct) with any / all correct."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return (
        sum(any(s) for s in subsets) / len(subsets),
        sum(all(s) for s in subsets) / len(subsets),
    )


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_and_pass_hat_k_match_subset_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            at, hat = _brute_force(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(at)
            assert pass_hat_k(n, c, k) == pytest.approx(hat)


def test_reduce_epochs_by_each_method() -> None:
    scores = {"x": [True, False, False, True], "y": [1.0, 1.0, 1.0, 1.0], "z": [0, 0, 0, 0]}
    assert reduce_epochs(scores, "mean") == {"x": 0.5, "y": 1.0, "z": 0.0}
    # x: 1 - C(2,2)/C(4,2) = 5/6; pass^2 = C(2,2)/C(4,2) = 1/6.
    assert reduce_epochs(scores, "pass_at_k", 2) == pytest.approx({"x": 5 / 6, "y": 1, "z": 0})
    assert reduce_epochs(scores, "pass_hat_k", 2) == pytest.approx({"x": 1 / 6, "y": 1, "z": 0})


def test_reduce_epochs_validates_k_and_scores() -> None:
    with pytest.raises(ValueError, match="k=3 is more than its 2 epochs"):
        reduce_epochs({"x": [True, False]}, "pass_at_k", 3)
    with pytest.raises(ValueError, match="needs k"):
        reduce_epochs({"x": [True]}, "pass_hat_k")
    with pytest.raises(ValueError, match="pass/fail scores"):
        reduce_epochs({"x": [0.5, 1.0]}, "pass_at_k", 1)
    with pytest.raises(ValueError, match="no scores"):
        reduce_epochs({"x": []})
    with pytest.raises(ValueError, match="method"):
        reduce_epochs({"x": [1.0]}, "median")  # type: ignore[arg-type]


# ------------------------------------------------------------------ quantiles and power


def test_norm_ppf_matches_scipy_over_a_grid() -> None:
    grid = np.concatenate(
        [np.logspace(-300, -2, 200), np.linspace(0.001, 0.999, 999), 1 - np.logspace(-15, -2, 50)]
    )
    ours = np.array([norm_ppf(p) for p in grid])
    np.testing.assert_allclose(ours, scipy.stats.norm.ppf(grid), rtol=0, atol=1e-9)
    assert norm_ppf(0.0) == -math.inf and norm_ppf(1.0) == math.inf
    with pytest.raises(ValueError):
        norm_ppf(1.5)


def test_norm_cdf_matches_scipy() -> None:
    xs = np.linspace(-30, 8, 400)
    ours = np.array([norm_cdf(x) for x in xs])
    np.testing.assert_allclose(ours, scipy.stats.norm.cdf(xs), rtol=1e-12, atol=0)


@pytest.mark.parametrize("df", [*range(1, 40), 99, 200, 201, 250, 1000, 10**5])
def test_t_ppf_matches_scipy(df: int) -> None:
    ps = [0.0005, 0.025, 0.05, 0.3, 0.5, 0.8, 0.9, 0.95, 0.975, 0.995, 0.9995]
    ours = [t_ppf(p, df) for p in ps]
    np.testing.assert_allclose(ours, scipy.stats.t.ppf(ps, df), rtol=0, atol=1e-9)


def test_critical_values() -> None:
    assert critical_value() == Z95 == pytest.approx(scipy.stats.norm.ppf(0.975), abs=1e-15)
    assert critical_value(0.9) == pytest.approx(scipy.stats.norm.ppf(0.95))
    assert critical_value(dist="t", df=4) == pytest.approx(scipy.stats.t.ppf(0.975, 4))
    assert math.isnan(critical_value(dist="t", df=0))
    with pytest.raises(ValueError):
        critical_value(1.0)


def test_min_detectable_effect_closed_form() -> None:
    z = scipy.stats.norm.ppf(0.975) + scipy.stats.norm.ppf(0.8)  # 2.8015852...
    assert min_detectable_effect(100, 0.5) == pytest.approx(z * 0.5 / 10, rel=1e-12)
    assert min_detectable_effect(400, 0.5) == pytest.approx(0.07003963, abs=1e-8)
    # At the MDE the one-sided power of a z test is exactly `power`.
    se = 0.5 / 10
    assert norm_cdf(min_detectable_effect(100, 0.5) / se - Z95) == pytest.approx(0.8)
    z90 = scipy.stats.norm.ppf(0.995) + scipy.stats.norm.ppf(0.9)
    assert min_detectable_effect(50, 1.0, alpha=0.01, power=0.9) == pytest.approx(
        z90 / math.sqrt(50)
    )
    assert math.isnan(min_detectable_effect(0, 0.5))


def test_unpaired_mde_with_equal_groups_is_paired_mde_of_uncorrelated_scores() -> None:
    paired = min_detectable_effect(200, math.sqrt(0.3**2 + 0.4**2))
    assert min_detectable_effect_unpaired(200, 200, 0.3, 0.4) == pytest.approx(paired)
    assert math.isnan(min_detectable_effect_unpaired(0, 10, 0.3, 0.4))


def test_binomial_p_value_matches_scipy_for_every_small_table() -> None:
    for n in range(0, 31):
        for k in range(n + 1):
            expected = scipy.stats.binomtest(k, n, 0.5).pvalue if n else 1.0
            assert binom_two_sided_half(k, n) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------ random data vs scipy


@pytest.mark.parametrize("seed", range(5))
def test_mean_ci_matches_scipy_on_random_data(seed: int) -> None:
    x = np.random.default_rng(seed).normal(0.6, 0.2, size=37) + 1.0  # outside [0, 1]
    est, t_est = mean_ci(x, dist="normal"), mean_ci(x)
    assert est.se == pytest.approx(scipy.stats.sem(x))
    low, high = scipy.stats.t.interval(0.95, 36, loc=x.mean(), scale=scipy.stats.sem(x))
    assert (t_est.ci_low, t_est.ci_high) == pytest.approx((low, high))
    low, high = scipy.stats.norm.interval(0.95, loc=x.mean(), scale=scipy.stats.sem(x))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high))


@pytest.mark.parametrize("seed", range(5))
def test_paired_diff_matches_scipy_ttest_rel_and_pearsonr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    skill = rng.uniform(size=60)
    xa, xb = np.clip(skill + rng.normal(0, 0.1, 60), 0, 1), (skill > 0.45).astype(float)
    diff = paired_diff(dict(enumerate(xa)), dict(enumerate(xb)), dist="t")
    test = scipy.stats.ttest_rel(xa, xb)
    assert diff.se == pytest.approx((xa - xb).mean() / test.statistic)
    ci = test.confidence_interval(0.95)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((ci.low, ci.high))
    assert diff.correlation == pytest.approx(scipy.stats.pearsonr(xa, xb).statistic)
    assert pearson(xa, xb) == diff.correlation


def test_pearson_of_constant_or_single_values_is_nan() -> None:
    assert math.isnan(pearson([1, 1, 1], [0, 1, 0]))
    assert math.isnan(pearson([1], [0]))


def test_pearson_of_tiny_values_does_not_underflow() -> None:
    # Σ(x-x̄)² is ~1e-292 here: its square underflows to 0, its square root does not.
    x = [0.0, 4.5e-146]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pearson(x, x) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_mcnemar_matches_scipy_binomtest_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = dict(enumerate(rng.uniform(size=300) < 0.6))
    b = dict(enumerate(rng.uniform(size=300) < 0.5))
    result = mcnemar_exact(a, b)
    expected = scipy.stats.binomtest(result.b01, result.b01 + result.b10, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ invariants

scores = st.dictionaries(
    st.integers(0, 60), st.floats(0, 1, allow_nan=False), min_size=0, max_size=40
)


@given(scores)
def test_paired_diff_with_itself_is_exactly_zero(a: dict[int, float]) -> None:
    diff = paired_diff(a, a)
    assert diff.n == len(a) and not diff.only_a and not diff.only_b
    if a:
        assert diff.mean == 0.0
    if len(a) >= 2:
        assert diff.se == 0.0 and not diff.significant


@given(scores, scores)
def test_swapping_sides_negates_the_difference(a: dict[int, float], b: dict[int, float]) -> None:
    ab, ba = paired_diff(a, b), paired_diff(b, a)
    assert ab.n == ba.n and set(ab.only_a) == set(ba.only_b)
    if ab.n:
        assert ab.mean == pytest.approx(-ba.mean, abs=1e-12)
    if ab.n >= 2:
        assert ab.se == pytest.approx(ba.se, abs=1e-12)
        assert ab.significant == ba.significant


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=50))
def test_interval_contains_the_mean(values: list[float]) -> None:
    est = mean_ci(values)
    assert est.ci_low <= est.mean <= est.ci_high


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=40))
def test_one_item_per_cluster_gives_the_ordinary_se(values: list[float]) -> None:
    clustered = mean_ci(values, clusters=list(range(len(values))))
    assert clustered.se == pytest.approx(mean_ci(values).se, abs=1e-12)


@given(
    st.dictionaries(st.integers(0, 30), st.booleans(), max_size=30),
    st.dictionaries(st.integers(0, 30), st.booleans(), max_size=30),
)
def test_mcnemar_counts_are_the_item_diff(a: dict[int, bool], b: dict[int, bool]) -> None:
    diff, result = item_diff(a, b), mcnemar_exact(a, b)
    assert (result.b01, result.b10) == (len(diff["improved"]), len(diff["regressed"]))
    assert 0.0 < result.p_value <= 1.0


# ------------------------------------------------------------------ data frames


def _scores_df() -> pd.DataFrame:
    rows = []
    for variant, passes in {"base": [1, 1, 0, 1, 0, 0], "new": [1, 1, 1, 1, 0, 1]}.items():
        for row_id in range(3):
            for epoch in range(2):
                passed = bool(passes[2 * row_id + epoch])
                rows.append(
                    {
                        "model_key": "m",
                        "variant": variant,
                        "scorer": "exact",
                        "row_id": f"r{row_id}",
                        "epoch": epoch,
                        "score": float(passed),
                        "passed": passed,
                        "topic": "t0" if row_id < 2 else "t1",
                    }
                )
    rows.append({**rows[0], "scorer": "judge", "score": None, "passed": None})
    return pd.DataFrame(rows)


def test_item_scores_reduce_epochs_per_item() -> None:
    per_item = item_scores(_scores_df())
    assert per_item.loc[("m", "base", "exact")].to_dict() == {"r0": 1.0, "r1": 0.5, "r2": 0.0}
    at2 = item_scores(_scores_df(), method="pass_at_k", k=2)
    assert at2.loc[("m", "new", "exact")].to_dict() == {"r0": 1.0, "r1": 1.0, "r2": 1.0}


def test_summarize_scores_counts_items_not_epochs() -> None:
    table = summarize_scores(_scores_df())
    assert list(table.columns) == [
        "model_key", "variant", "scorer", "mean", "se", "ci_low", "ci_high", "n",
        "n_clusters", "n_missing",
    ]  # fmt: skip
    base = table.iloc[0]
    # Items 1, .5, 0: mean .5, s² = (.25 + 0 + .25) / 2 = .25, SE = √(.25 / 3).
    assert (base.variant, base.n, base.n_missing) == ("base", 3, 0)
    assert (base["mean"], base.se) == pytest.approx((0.5, math.sqrt(0.25 / 3)))


def test_summarize_scores_keeps_cells_whose_scores_are_all_missing() -> None:
    table = summarize_scores(_scores_df())
    judge = table[table.scorer == "judge"].iloc[0]
    assert (judge.n, judge.n_missing) == (0, 1) and math.isnan(judge["mean"])


def test_summarize_scores_clusters_by_a_field() -> None:
    table = summarize_scores(_scores_df(), cluster_field="topic", method="pass_hat_k", k=2)
    base = table.iloc[0]
    # pass^2 per item: 1, 0, 0 (mean 1/3); topics (r0, r1) and (r2): residual sums
    # 2/3 - 1/3 = 1/3 and -1/3; SE² = 2/1 · (2/9) / 9.
    assert base["mean"] == pytest.approx(1 / 3)
    assert base.se == pytest.approx(math.sqrt(2 * (2 / 9) / 9))
    assert base.n_clusters == 2


def test_summarize_an_empty_frame() -> None:
    table = summarize_scores(_scores_df().iloc[:0])
    assert table.empty and "mean" in table.columns


def test_docs_example_runs() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "statistics.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    exec(compile(example, "docs/statistics.md", "exec"), {})


def test_the_docs_examples_figures_are_what_the_code_computes() -> None:
    """The example's comments kept the figures of the z intervals (CI 0.253 to 1.080 for
    4/6, -0.53 to 0.93 for the difference) after the Wilson and t intervals came in."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "statistics.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    names: dict[str, object] = {}
    exec(compile(example, "docs/statistics.md", "exec"), names)
    for line in example.splitlines():
        found = re.search(r"^(est|diff) = .*CI (-?[0-9.]+) to (-?[0-9.]+)", line)
        if found:
            est = names[found[1]]
            shown = (float(found[2]), float(found[3]))
            assert shown == (round(est.ci_low, 2), round(est.ci_high, 2)) or shown == (  # type: ignore[attr-defined]
                round(est.ci_low, 3),  # type: ignore[attr-defined]
                round(est.ci_high, 3),  # type: ignore[attr-defined]
            ), line
            names.pop(found[1])
    assert "est" not in names and "diff" not in names  # both lines were checked


# ------------------------------------------------------------------ bounded intervals


@pytest.mark.parametrize("n", [1, 2, 5, 16, 30])
def test_pass_rates_get_the_wilson_interval_of_scipy(n: int) -> None:
    for k in range(n + 1):
        est = mean_ci([True] * k + [False] * (n - k))
        expected = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (est.ci_low, est.ci_high) == pytest.approx((expected.low, expected.high))
        assert 0.0 <= est.ci_low < est.ci_high <= 1.0  # never zero width, never past 1


def test_15_of_16_and_16_of_16_stay_inside_0_1_with_honest_width() -> None:
    """Issue 17: 15/16 was shown as 0.938 [0.854, 1.021] and 16/16 as [1.000, 1.000]."""
    almost, every = mean_ci([1] * 15 + [0]), mean_ci([1] * 16)
    assert (almost.ci_low, almost.ci_high) == pytest.approx((0.7167, 0.9889), abs=1e-4)
    assert (every.ci_low, every.ci_high) == pytest.approx((0.8064, 1.0), abs=1e-4)
    none = mean_ci([0] * 16)
    assert none.ci_low == 0.0 and none.ci_high == pytest.approx(0.1936, abs=1e-4)


def test_grades_between_0_and_1_get_a_wilson_interval_at_their_effective_size() -> None:
    """Scores in [0, 1] that are not pass/fail: Wilson at n_eff = p(1-p)/SE²; bounded."""
    grades = [1.0] * 14 + [0.5, 1.0]
    est = mean_ci(grades)
    n_eff = est.mean * (1 - est.mean) / est.se**2
    q = Z95
    centre = (est.mean + q * q / (2 * n_eff)) / (1 + q * q / n_eff)
    half = q * math.sqrt(est.mean * (1 - est.mean) / n_eff + q * q / (4 * n_eff**2))
    half /= 1 + q * q / n_eff
    assert (est.ci_low, est.ci_high) == pytest.approx((centre - half, min(1.0, centre + half)))
    assert est.ci_high <= 1.0 and est.method == "wilson"
    same = mean_ci([0.5] * 10)  # no spread at all: as if pass/fail (5 of 10), never zero width
    expected = scipy.stats.binomtest(5, 10).proportion_ci(0.95, method="wilson")
    assert (same.ci_low, same.ci_high) == pytest.approx((expected.low, expected.high))


def test_few_clusters_use_t_with_g_minus_1_df_and_are_wider_than_unclustered() -> None:
    """Issue 17: with 3 clusters, z made the clustered interval narrower than the
    unclustered one."""
    values = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    labels = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    plain, clustered = mean_ci(values), mean_ci(values, clusters=labels)
    assert clustered.n_clusters == 3 and clustered.method == "wilson"
    assert clustered.ci_high - clustered.ci_low > plain.ci_high - plain.ci_low
    n_eff = clustered.mean * (1 - clustered.mean) / clustered.se**2
    q = scipy.stats.t.ppf(0.975, 2)
    denominator = 1 + q * q / n_eff
    centre = (clustered.mean + q * q / (2 * n_eff)) / denominator
    half = q * math.sqrt(clustered.mean * (1 - clustered.mean) / n_eff + q * q / (4 * n_eff**2))
    expected = (max(0.0, centre - half / denominator), min(1.0, centre + half / denominator))
    assert (clustered.ci_low, clustered.ci_high) == pytest.approx(expected)
    unbounded = mean_ci([v + 1 for v in values], clusters=labels)
    se = unbounded.se
    assert unbounded.ci_high - unbounded.mean == pytest.approx(scipy.stats.t.ppf(0.975, 2) * se)


def test_a_paired_difference_of_0_1_scores_stays_inside_minus_1_1() -> None:
    a = {i: 1.0 for i in range(4)}
    b = {0: 0.0, 1: 0.0, 2: 0.0, 3: 1.0}
    diff = paired_diff(a, b)
    assert diff.ci_high == 1.0 and diff.ci_low > -1.0  # 0.75 + 3.18 · 0.25 would be 1.55
    wide = paired_diff({0: 2.0, 1: 2.0, 2: 2.0, 3: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0, 3: 1.0})
    assert wide.ci_high > 2.0  # outside [0, 1]: not clipped


def test_bonett_price_matches_the_published_example() -> None:
    """vcmeta::se.prop.ps(16, 64, 5, 15) (Bonett & Price 2012's adjusted estimate and
    SE): estimate 0.5784314, SE 0.05953213; the interval is estimate ± z · SE."""
    z = scipy.stats.norm.ppf(0.975)
    low, high = bonett_price(64, 5, 100, z)
    assert (low + high) / 2 == pytest.approx(0.5784314, abs=1e-7)
    assert (high - low) / (2 * z) == pytest.approx(0.05953213, abs=1e-8)
    # The same through paired_diff on 100 pass/fail items: 16 both, 64 gained, 5 lost.
    a = {i: 1 if i < 80 else 0 for i in range(100)}
    b = {i: 1 if i < 16 or 80 <= i < 85 else 0 for i in range(100)}
    diff = paired_diff(a, b)
    assert diff.method == "bonett-price" and diff.mean == pytest.approx(0.59)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((low, high))


def test_every_item_changing_the_same_way_is_not_false_certainty() -> None:
    """Issue 17: 16 of 16 items failing after a change read -1.000 [-1.000, -1.000]."""
    diff = paired_diff({i: 0 for i in range(16)}, {i: 1 for i in range(16)})
    assert diff.mean == -1.0 and diff.ci_low == -1.0
    assert -0.8 < diff.ci_high < -0.6  # a width, and still clearly a regression
    assert diff.significant


@pytest.mark.parametrize(
    ("n", "both", "gain", "loss", "t_falls_short"),
    [
        (16, 0.8, 0.1, 0.0, True),  # few items change, all one way: t covers ~81%
        (10, 0.6, 0.1, 0.0, True),
        (20, 0.5, 0.1, 0.1, False),
        (30, 0.6, 0.15, 0.05, False),
        (50, 0.2, 0.3, 0.1, False),
    ],
)
def test_bonett_price_keeps_nominal_coverage_where_t_falls_short(
    n: int, both: float, gain: float, loss: float, t_falls_short: bool
) -> None:
    """Seeded: 4,000 simulated paired pass/fail comparisons per setting (Monte Carlo
    error about 0.35%). Bonett-Price holds the true difference ``gain - loss`` at least
    about 95% of the time (conservative at small n); the plain ``d̄ ± t · SE`` interval
    falls far short when few items change, all the same way."""
    rng = np.random.default_rng(n)
    z = scipy.stats.norm.ppf(0.975)
    t = scipy.stats.t.ppf(0.975, n - 1)
    draws = rng.multinomial(n, [both, gain, loss, 1 - both - gain - loss], size=4000)
    truth = gain - loss
    held = plain = 0
    for _, f, g, _ in draws:
        low, high = bonett_price(int(f), int(g), n, z)
        held += low <= truth <= high
        d = np.array([1.0] * int(f) + [-1.0] * int(g) + [0.0] * (n - int(f) - int(g)))
        half = t * d.std(ddof=1) / math.sqrt(n)
        plain += d.mean() - half <= truth <= d.mean() + half
    assert held / 4000 >= 0.943
    assert (plain / 4000 < 0.9) == t_falls_short


def test_clusters_never_narrow_a_pass_fail_interval_below_bonett_price() -> None:
    """Review of issue 17: 16 items all failing in 4 clusters read [-1, -1] (clustered t,
    SE 0), narrower than the unclustered [-1, -0.677]."""
    a, b = {i: 0.0 for i in range(16)}, {i: 1.0 for i in range(16)}
    plain = paired_diff(a, b)
    clustered = paired_diff(a, b, clusters={i: i // 4 for i in range(16)})
    assert clustered.method == "t+bonett-price"
    assert (clustered.ci_low, clustered.ci_high) == (plain.ci_low, plain.ci_high)
    # Where the clustered t interval is the wider one, it is kept as it is.
    rng = np.random.default_rng(3)
    a = {i: float(rng.random() < 0.5) for i in range(40)}
    b = {i: float(rng.random() < 0.5) for i in range(40)}
    wide = paired_diff(a, b, clusters={i: i // 10 for i in range(40)})
    t_only = paired_diff(a, b, clusters={i: i // 10 for i in range(40)}, dist="t")
    assert wide.ci_low <= t_only.ci_low and wide.ci_high >= t_only.ci_high


def test_the_mde_of_pairs_that_all_changed_alike_is_not_zero() -> None:
    diff = paired_diff({i: 0 for i in range(16)}, {i: 1 for i in range(16)})
    assert diff.se == 0.0 and diff.mde == pytest.approx(2.8016 * diff.se_floor, rel=1e-3)
    assert diff.mde > 0.1
