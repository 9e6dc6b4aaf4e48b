"""Statistics for comparison tables: means with error bars, paired differences, power.

Pure functions, plain data in and out, following Miller (2024), "Adding Error Bars to
Evals: A Statistical Approach to Language Model Evaluations" (arXiv 2411.00640). The unit
of analysis is the *item* (a dataset row): epochs are reduced per item first
(:func:`reduce_epochs`), then items are averaged (:func:`mean_ci`) or paired across two
cells (:func:`paired_diff`, :func:`mcnemar_exact`, :func:`item_diff`).

Confidence intervals are ``mean ± q · SE``. By default ``q`` is the normal quantile
(``z = 1.959964`` at 95%), as Miller recommends for evals with hundreds of items;
``dist="t"`` uses Student's t with ``n - 1`` degrees of freedom (``G - 1`` with ``G``
clusters), wider and more honest when n is small. Neither needs scipy: the normal
quantile is Acklam's approximation refined by one Halley step, the t quantile inverts the
closed-form t distribution (Abramowitz & Stegun 26.7.3-4) by bisection.

docs/statistics.md explains every number of a comparison table in words.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Dist = Literal["normal", "t"]
Reducer = Literal["mean", "pass_at_k", "pass_hat_k"]

Z95 = 1.959963984540054
"""The 97.5% normal quantile: a 95% interval is ``mean ± Z95 · SE``."""

GROUP_COLUMNS = ("model_key", "variant", "scorer")
"""The columns that make one cell of a comparison table."""

_NAN = math.nan

# --------------------------------------------------------------------------- quantiles

# Acklam's rational approximation of the normal quantile (relative error < 1.15e-9).
_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687,
      138.3577518672690, -30.66479806614716, 2.506628277459239)  # fmt: skip
_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866,
      66.80131188771972, -13.28068155288572)  # fmt: skip
_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
      -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
_P_LOW = 0.02425


def _poly(coefs: Sequence[float], x: float) -> float:
    """Horner: ``coefs[0] x^(m-1) + ... + coefs[-1]``."""
    acc = 0.0
    for c in coefs:
        acc = acc * x + c
    return acc


def norm_cdf(x: float) -> float:
    """Standard normal CDF: ``Φ(x) = erfc(-x / √2) / 2`` (erfc keeps the lower tail exact)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Standard normal quantile ``Φ⁻¹(p)``, absolute error below 1e-12 on [1e-300, 1-1e-16].

    Acklam's rational approximation, then one Halley step on ``Φ(x) - p``:
    ``u = (Φ(x) - p) · √(2π) · exp(x²/2)``, ``x ← x - u / (1 + x·u/2)``.
    """
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"norm_ppf needs 0 <= p <= 1, got {p}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        x = _poly(_C, q) / (_poly(_D, q) * q + 1.0)
    elif p <= 1.0 - _P_LOW:
        q = p - 0.5
        r = q * q
        x = _poly(_A, r) * q / (_poly(_B, r) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -_poly(_C, q) / (_poly(_D, q) * q + 1.0)
    # Refine against the upper tail for p > 1/2 so that 1 - p keeps its digits.
    err = norm_cdf(x) - p if p <= 0.5 else (1.0 - p) - norm_cdf(-x)
    u = err * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


_T_EXACT_MAX_DF = 200
"""Above this many degrees of freedom the Cornish-Fisher expansion is exact to ~1e-12."""


def _t_central_mass(theta: float, df: int) -> float:
    """``P(|T| < √df · tan θ)`` for Student's t with integer ``df`` (A&S 26.7.3-4).

    With ``c = cos θ``: odd ``df``, ``(2/π)(θ + sin θ · c · Σ_j c^(2j) Π_{i≤j} 2i/(2i+1))``
    for ``j = 0..(df-3)/2``; even ``df``, ``sin θ · Σ_j c^(2j) Π_{i≤j} (2i-1)/(2i)`` for
    ``j = 0..(df-2)/2``.
    """
    c2 = math.cos(theta) ** 2
    total, term = 1.0, 1.0
    if df % 2:
        for i in range(1, (df - 3) // 2 + 1):
            term *= c2 * (2 * i) / (2 * i + 1)
            total += term
        inner = math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0
        return 2.0 / math.pi * (theta + inner)
    for i in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2 * i - 1) / (2 * i)
        total += term
    return math.sin(theta) * total


def _t_cornish_fisher(x: float, df: float) -> float:
    """The t quantile from the normal one ``x`` (A&S 26.7.5), for large ``df``."""
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t_ppf(p: float, df: int) -> float:
    """Student's t quantile with ``df`` degrees of freedom (absolute error below 1e-9).

    For ``df <= 200`` (an integer) the exact CDF (A&S 26.7.3-4) is inverted by bisection on
    ``θ = atan(t / √df)``; above, the Cornish-Fisher expansion of the normal quantile.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p}")
    if df > _T_EXACT_MAX_DF:
        return _t_cornish_fisher(norm_ppf(p), df)
    if df < 1 or int(df) != df:
        raise ValueError(f"t_ppf needs an integer df >= 1 up to {_T_EXACT_MAX_DF}, got {df}")
    df = int(df)
    target = abs(2.0 * p - 1.0)
    lo, hi = 0.0, math.pi / 2
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _t_central_mass(mid, df) < target else (lo, mid)
    t = math.sqrt(df) * math.tan(0.5 * (lo + hi))
    return t if p >= 0.5 else -t


def critical_value(confidence: float = 0.95, *, dist: Dist = "normal", df: int = 0) -> float:
    """The two-sided multiplier ``q`` of ``mean ± q · SE``: ``Φ⁻¹((1+c)/2)`` or t's.

    ``df < 1`` with ``dist="t"`` gives NaN (no interval can be formed).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    p = 0.5 * (1.0 + confidence)
    if dist == "normal":
        return Z95 if confidence == 0.95 else norm_ppf(p)
    if dist == "t":
        return t_ppf(p, df) if df >= 1 else _NAN
    raise ValueError(f"dist must be 'normal' or 't', got {dist!r}")


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True, slots=True)
class MeanCI:
    """A mean with its standard error and confidence interval.

    ``n`` counts the values (items); ``n_clusters`` is set when the SE is clustered.
    Every float is NaN when ``n == 0``; ``se`` and the interval are NaN when ``n == 1``.
    """

    mean: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int | None = None


def _as_array(values: Iterable[float | bool]) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=float)


def _se(x: np.ndarray, clusters: Sequence[Hashable] | None) -> tuple[float, int | None]:
    """SE of the mean of ``x`` and the number of clusters (None when not clustered).

    Unclustered: ``s / √n`` with ``s² = Σ(x_i - x̄)² / (n - 1)``.

    Clustered (Miller eq. 4 with the CR1 small-sample factor ``G/(G-1)``, as Stata's
    ``vce(cluster)``): ``SE² = G/(G-1) · Σ_g (Σ_{i∈g} (x_i - x̄))² / n²`` over the ``G``
    clusters. With one item per cluster this equals ``s² / n``; with ``G = 1`` it is NaN.
    """
    n = len(x)
    if clusters is None:
        if n < 2:
            return _NAN, None
        return float(np.std(x, ddof=1) / math.sqrt(n)), None
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} labels for {n} values")
    resid = (
        pd.Series(x - x.mean()).groupby(list(clusters), sort=False, dropna=False).sum().to_numpy()
    )
    g = len(resid)
    if g < 2:
        return _NAN, g
    return math.sqrt(g / (g - 1) * float(np.sum(resid**2)) / n**2), g


def _estimate(
    x: np.ndarray,
    clusters: Sequence[Hashable] | None,
    confidence: float,
    dist: Dist,
) -> MeanCI:
    n = len(x)
    if n == 0:
        return MeanCI(_NAN, _NAN, _NAN, _NAN, 0, 0 if clusters is not None else None)
    mean = float(x.mean())
    se, g = _se(x, clusters)
    df = (g if g is not None else n) - 1
    half = critical_value(confidence, dist=dist, df=df) * se
    return MeanCI(mean, se, mean - half, mean + half, n, g)


def mean_ci(
    values: Iterable[float | bool],
    *,
    clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    dist: Dist = "normal",
) -> MeanCI:
    """Mean of ``values`` with its standard error and ``confidence`` interval.

    ``x̄ = Σ x_i / n``; ``SE = s / √n`` with ``s² = Σ(x_i - x̄)² / (n - 1)``. With
    ``clusters`` (one label per value, ``G`` distinct labels; a missing label is a cluster
    of its own), Miller's eq. 4 with the CR1 factor:
    ``SE² = G/(G-1) · Σ_g (Σ_{i∈g} (x_i - x̄))² / n²``. Interval ``x̄ ± q · SE`` with ``q``
    from :func:`critical_value` (``z = 1.959964`` by default; t with ``n-1``, or ``G-1``
    when clustered, degrees of freedom for ``dist="t"``).
    """
    return _estimate(_as_array(values), clusters, confidence, dist)


# --------------------------------------------------------------------------- epochs


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): ``1 - C(n-c, k) / C(n, k)``.

    The probability that at least one of ``k`` samples drawn without replacement from
    ``n`` (of which ``c`` are correct) is correct.
    """
    _check_k(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k (Yao et al. 2024, τ-bench): ``C(c, k) / C(n, k)``.

    The probability that all ``k`` samples drawn without replacement are correct.
    """
    _check_k(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_k(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of epochs ({n}), got {k}")


def _n_correct(scores: Sequence[float | bool], item: Hashable) -> int:
    if any(float(s) not in (0.0, 1.0) for s in scores):
        raise ValueError(f"item {item!r}: pass@k and pass^k need pass/fail scores (0 or 1)")
    return int(sum(float(s) for s in scores))


def reduce_epochs(
    scores_by_item: Mapping[Hashable, Sequence[float | bool]],
    method: Reducer = "mean",
    k: int | None = None,
) -> dict[Hashable, float]:
    """One score per item from its epochs (repeated samples).

    - ``mean``: ``Σ s_e / n`` over the item's ``n`` epochs (Miller §4: lowers the variance
      of the eval mean without changing its expectation);
    - ``pass_at_k``: :func:`pass_at_k` with ``c`` correct of ``n`` (``k`` required);
    - ``pass_hat_k``: :func:`pass_hat_k` (``k`` required).

    Raises ``ValueError`` for an item without scores, ``k > n``, or non 0/1 scores with
    ``pass_at_k`` / ``pass_hat_k``.
    """
    if method not in ("mean", "pass_at_k", "pass_hat_k"):
        raise ValueError(f"method must be mean, pass_at_k or pass_hat_k, got {method!r}")
    if method != "mean" and k is None:
        raise ValueError(f"{method} needs k")
    out: dict[Hashable, float] = {}
    for item, scores in scores_by_item.items():
        n = len(scores)
        if n == 0:
            raise ValueError(f"item {item!r} has no scores")
        if method == "mean":
            out[item] = sum(float(s) for s in scores) / n
            continue
        assert k is not None
        if k > n:
            raise ValueError(f"item {item!r}: k={k} is more than its {n} epochs")
        reduce = pass_at_k if method == "pass_at_k" else pass_hat_k
        out[item] = reduce(n, _n_correct(scores, item), k)
    return out


# --------------------------------------------------------------------------- paired


@dataclass(frozen=True, slots=True)
class PairedDiff:
    """``a - b`` on the items both share, with its paired SE and interval.

    ``mean_a`` and ``mean_b`` are the two means on the shared items only; ``correlation``
    is Pearson's r between the two score vectors (NaN when either is constant or
    ``n < 2``); ``only_a`` / ``only_b`` are the item ids present on one side only.
    """

    mean: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    mean_a: float
    mean_b: float
    correlation: float
    only_a: tuple[Hashable, ...]
    only_b: tuple[Hashable, ...]
    n_clusters: int | None = None

    @property
    def n_only_a(self) -> int:
        """How many items only ``a`` has."""
        return len(self.only_a)

    @property
    def n_only_b(self) -> int:
        """How many items only ``b`` has."""
        return len(self.only_b)

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (False when it is undefined)."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def mde(self) -> float:
        """Minimum detectable effect at this n: ``(z_{0.975} + z_{0.8}) · SE`` ≈ 2.80 · SE."""
        return (Z95 + norm_ppf(0.8)) * self.se


def _split_ids(
    a: Mapping[Hashable, object], b: Mapping[Hashable, object]
) -> tuple[list[Hashable], tuple[Hashable, ...], tuple[Hashable, ...]]:
    """Shared ids (in ``a``'s order), ids only in ``a``, ids only in ``b``."""
    shared = [i for i in a if i in b]
    return shared, tuple(i for i in a if i not in b), tuple(i for i in b if i not in a)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's ``r = Σ(x-x̄)(y-ȳ) / √(Σ(x-x̄)² Σ(y-ȳ)²)``; NaN if ``n < 2`` or constant."""
    xa, ya = _as_array(x), _as_array(y)
    if len(xa) < 2:
        return _NAN
    dx, dy = xa - xa.mean(), ya - ya.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    # √sxx·√syy, not √(sxx·syy): the product of two tiny sums can underflow to 0.
    denominator = math.sqrt(sxx) * math.sqrt(syy)
    if denominator == 0.0:
        return _NAN
    return float(np.clip((dx @ dy) / denominator, -1.0, 1.0))


def paired_diff(
    a: Mapping[Hashable, float | bool],
    b: Mapping[Hashable, float | bool],
    *,
    clusters: Mapping[Hashable, Hashable] | None = None,
    confidence: float = 0.95,
    dist: Dist = "normal",
) -> PairedDiff:
    """Paired difference ``a - b`` over the items both score (Miller §5).

    ``d_i = a_i - b_i``; mean ``d̄``; ``SE = sd(d) / √n`` (``ddof=1``), or clustered by
    ``clusters[item]`` as in :func:`mean_ci`; interval ``d̄ ± q · SE``. Pairing removes
    the item difficulty both share: ``Var(d) = Var(a) + Var(b) - 2 Cov(a, b)``.
    """
    shared, only_a, only_b = _split_ids(a, b)
    xa = _as_array(a[i] for i in shared)
    xb = _as_array(b[i] for i in shared)
    labels = None if clusters is None else [clusters[i] for i in shared]
    est = _estimate(xa - xb, labels, confidence, dist)
    n = len(shared)
    return PairedDiff(
        mean=est.mean,
        se=est.se,
        ci_low=est.ci_low,
        ci_high=est.ci_high,
        n=n,
        mean_a=float(xa.mean()) if n else _NAN,
        mean_b=float(xb.mean()) if n else _NAN,
        correlation=pearson(xa, xb),
        only_a=only_a,
        only_b=only_b,
        n_clusters=est.n_clusters,
    )


@dataclass(frozen=True, slots=True)
class McNemar:
    """McNemar's exact test on the items both score pass/fail.

    ``b01``: ``a`` failed and ``b`` passed; ``b10``: ``a`` passed and ``b`` failed.
    ``p_value`` is two-sided; 1.0 when there are no discordant items.
    """

    b01: int
    b10: int
    n: int
    p_value: float


def binom_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided binomial p-value for ``k`` of ``n`` with ``p = 1/2``.

    ``min(1, 2 · P(X ≤ min(k, n-k)))`` with ``P(X ≤ m) = Σ_{i≤m} C(n, i) / 2ⁿ``, computed
    in exact integers.
    """
    m = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(m + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_exact(a: Mapping[Hashable, bool], b: Mapping[Hashable, bool]) -> McNemar:
    """McNemar's exact test: under H0 each discordant item is equally likely either way.

    ``p = min(1, 2 · P(X ≤ min(b01, b10)))`` with ``X ~ Binomial(b01 + b10, 1/2)``.
    """
    shared, _, _ = _split_ids(a, b)
    b01 = sum(1 for i in shared if not a[i] and b[i])
    b10 = sum(1 for i in shared if a[i] and not b[i])
    return McNemar(b01, b10, len(shared), binom_two_sided_half(b01, b01 + b10))


def item_diff(a: Mapping[Hashable, bool], b: Mapping[Hashable, bool]) -> dict[str, list[Hashable]]:
    """Items whose pass/fail changed from the baseline ``a`` to the candidate ``b``.

    ``regressed``: passed in ``a``, failed in ``b``; ``improved``: failed in ``a``, passed
    in ``b``. Only shared items, in ``a``'s order.
    """
    shared, _, _ = _split_ids(a, b)
    return {
        "regressed": [i for i in shared if a[i] and not b[i]],
        "improved": [i for i in shared if not a[i] and b[i]],
    }


# --------------------------------------------------------------------------- power


def _z_sum(alpha: float, power: float) -> float:
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    return norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power)


def min_detectable_effect(
    n: int, sd_diff: float, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest true paired difference detected with probability ``power`` at level ``alpha``.

    ``MDE = (z_{1-α/2} + z_{power}) · sd_diff / √n`` (≈ 2.80 · sd_diff / √n at the
    defaults), with ``sd_diff`` the sd of per-item differences. NaN when ``n < 1``.
    """
    if n < 1:
        return _NAN
    return _z_sum(alpha, power) * sd_diff / math.sqrt(n)


def min_detectable_effect_unpaired(
    n_a: int,
    n_b: int,
    sd_a: float,
    sd_b: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """MDE for two independent samples: ``(z_{1-α/2} + z_{power}) · √(sd_a²/n_a + sd_b²/n_b)``."""
    if n_a < 1 or n_b < 1:
        return _NAN
    return _z_sum(alpha, power) * math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)


# --------------------------------------------------------------------------- data frames


def item_scores(
    df: pd.DataFrame,
    *,
    method: Reducer = "mean",
    k: int | None = None,
    by: Sequence[str] = GROUP_COLUMNS,
) -> pd.Series:
    """One score per item and cell: epochs reduced by ``method`` (see :func:`reduce_epochs`).

    ``df`` has one row per (item, epoch, scorer) with columns ``by``, ``row_id``,
    ``score`` and ``passed``. ``mean`` reduces ``score``; ``pass_at_k`` and ``pass_hat_k``
    reduce ``passed``. Rows whose value is missing (invalid scores) are left out. Returns a
    float Series indexed by ``(*by, row_id)``.
    """
    column = "score" if method == "mean" else "passed"
    keys = [*by, "row_id"]
    valid = df[df[column].notna()]
    lists = valid.groupby(keys, sort=False, dropna=False)[column].agg(list)
    reduced = reduce_epochs(dict(lists.items()), method, k)
    index = pd.MultiIndex.from_tuples(list(reduced), names=keys)
    return pd.Series(list(reduced.values()), index=index, dtype=float, name=column)


def summarize_scores(
    df: pd.DataFrame,
    *,
    method: Reducer = "mean",
    k: int | None = None,
    cluster_field: str | None = None,
    by: Sequence[str] = GROUP_COLUMNS,
    confidence: float = 0.95,
    dist: Dist = "normal",
) -> pd.DataFrame:
    """Per cell (``by``): mean over items with SE and interval, after reducing epochs.

    The unit of analysis is the item (Miller §4): each item's epochs are reduced first
    (:func:`item_scores`), so ``n`` counts items, not samples. ``cluster_field`` names a
    column of ``df`` holding each item's cluster (its first value per item is used) for
    clustered SEs. ``n_missing`` counts the rows left out because their value was missing;
    a cell whose values are all missing has ``n == 0`` and NaN estimates.
    Columns: ``*by, mean, se, ci_low, ci_high, n, n_clusters, n_missing``.
    """
    column = "score" if method == "mean" else "passed"
    per_cell: dict[tuple, dict[Hashable, float]] = {}
    for (*cell, row_id), value in item_scores(df, method=method, k=k, by=by).items():
        per_cell.setdefault(tuple(cell), {})[row_id] = value
    cluster_of: dict[tuple, Hashable] = {}
    if cluster_field is not None:
        firsts = df.groupby([*by, "row_id"], sort=False, dropna=False)[cluster_field].first()
        cluster_of = dict(firsts.items())
    rows = []
    for cell, group in df.groupby(list(by), sort=False, dropna=False):
        items = per_cell.get(cell, {})
        labels = None if cluster_field is None else [cluster_of[(*cell, i)] for i in items]
        est = mean_ci(items.values(), clusters=labels, confidence=confidence, dist=dist)
        n_missing = int(group[column].isna().sum())
        rows.append(
            {**dict(zip(by, cell, strict=True)), **_estimate_row(est), "n_missing": n_missing}
        )
    return pd.DataFrame(rows, columns=[*by, *_ESTIMATE_COLUMNS, "n_missing"])


_ESTIMATE_COLUMNS = ("mean", "se", "ci_low", "ci_high", "n", "n_clusters")


def _estimate_row(est: MeanCI) -> dict[str, float | int | None]:
    return {c: getattr(est, c) for c in _ESTIMATE_COLUMNS}
