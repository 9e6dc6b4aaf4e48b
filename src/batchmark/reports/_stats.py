"""Statistics for comparison tables: means with error bars, paired differences, power.

Pure functions, plain data in and out, following Miller (2024), "Adding Error Bars to
Evals: A Statistical Approach to Language Model Evaluations" (arXiv 2411.00640). The unit
of analysis is the *item* (a dataset row): epochs are reduced per item first
(:func:`reduce_epochs`), then items are averaged (:func:`mean_ci`) or paired across two
cells (:func:`paired_diff`, :func:`mcnemar_exact`, :func:`item_diff`).

Intervals: a mean of values all in [0, 1] (pass/fail outcomes, grades) gets a Wilson
score interval (:func:`wilson`; with clusters or scores between 0 and 1, at the effective
sample size ``p(1-p)/SE²``), which stays in [0, 1] and keeps its width at 0/n and n/n;
other means and paired differences get ``mean ± q · SE`` with ``q`` from Student's t
with ``n - 1`` degrees of freedom (``G - 1`` with ``G`` clusters: with few clusters a
z interval would be narrower than the unclustered one), which is z within 0.1% from a
few hundred items. A paired difference of two [0, 1] scores is clipped to [-1, 1]. The
normal quantile is ``statistics.NormalDist``'s; the t quantile inverts the closed-form t
distribution (Abramowitz & Stegun 26.7.3-4) by bisection, so scipy is not needed.

docs/statistics.md explains every number of a comparison table in words.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
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

_NORMAL = NormalDist()


def norm_cdf(x: float) -> float:
    """Standard normal CDF: ``Φ(x) = erfc(-x / √2) / 2`` (erfc keeps the lower tail
    exact, where ``NormalDist.cdf``'s ``1 + erf`` loses it)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Standard normal quantile ``Φ⁻¹(p)`` (``statistics.NormalDist.inv_cdf``); ``±inf``
    at 0 and 1."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"norm_ppf needs 0 <= p <= 1, got {p}")
    if p in (0.0, 1.0):
        return math.inf if p else -math.inf
    return _NORMAL.inv_cdf(p)


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
    Every float is NaN when ``n == 0``; ``se`` and the interval are NaN when ``n == 1``
    (except a Wilson interval, defined from one value). ``method`` says how the interval
    was formed: ``wilson`` (values in [0, 1]), ``t`` or ``normal`` (``mean ± q · SE``).
    """

    mean: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int | None = None
    method: str = "normal"


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


def bounded(x: np.ndarray) -> bool:
    """Whether every value lies in [0, 1] (pass/fail outcomes, grades, rates)."""
    return len(x) > 0 and float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def _binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0.0) | (x == 1.0)))


def wilson(p: float, n: float, q: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` over ``n`` trials with quantile
    ``q`` (Wilson 1927; Newcombe 1998, method 3, without continuity correction):
    ``(p + q²/2n ± q·√(p(1-p)/n + q²/4n²)) / (1 + q²/n)``. Inside [0, 1] and of non-zero
    width at ``p = 0`` and ``p = 1``."""
    q2 = q * q
    denominator = 1.0 + q2 / n
    centre = (p + q2 / (2.0 * n)) / denominator
    half = q * math.sqrt(max(p * (1.0 - p), 0.0) / n + q2 / (4.0 * n * n)) / denominator
    # At p = 0 (p = 1) the bound is exactly 0 (1); rounding must not lift it off the mean.
    low = 0.0 if p <= 0.0 else min(max(0.0, centre - half), p)
    high = 1.0 if p >= 1.0 else max(min(1.0, centre + half), p)
    return low, high


def _effective_n(x: np.ndarray, mean: float, se: float, clustered: bool) -> float:
    """The sample size a Wilson interval of ``x``'s mean uses.

    Pass/fail values without clusters: ``n`` (the textbook Wilson interval). Otherwise
    the effective size ``p(1-p) / SE²`` (Korn & Graubard 1998: Wilson with the design
    effect), so clustering widens the interval and scores between 0 and 1 with less
    spread than pass/fail narrow it. When every value is the same (``SE = 0``) the data
    show no spread to go by: ``n`` is used, as if pass/fail (never a zero-width
    interval)."""
    n = len(x)
    if (not clustered and _binary(x)) or not se > 0.0 or not 0.0 < mean < 1.0:
        return float(n)
    return mean * (1.0 - mean) / (se * se)


def _estimate(
    x: np.ndarray,
    clusters: Sequence[Hashable] | None,
    confidence: float,
    dist: Dist | None,
    *,
    wilson_ok: bool = True,
) -> MeanCI:
    """``mean_ci`` of an array; ``wilson_ok=False``: always ``mean ± q · SE`` (paired
    differences keep their paired method)."""
    n = len(x)
    if n == 0:
        return MeanCI(_NAN, _NAN, _NAN, _NAN, 0, 0 if clusters is not None else None)
    mean = float(x.mean())
    se, g = _se(x, clusters)
    df = (g if g is not None else n) - 1
    if wilson_ok and bounded(x) and (g is None or g >= 2):
        # Wilson: z without clusters (the textbook interval), t with G-1 df with them.
        kind = dist or ("t" if g is not None else "normal")
        q = critical_value(confidence, dist=kind, df=df)
        low, high = wilson(mean, _effective_n(x, mean, se, g is not None), q)
        return MeanCI(mean, se, low, high, n, g, "wilson")
    kind = dist or "t"  # t with n-1 (or G-1) df: honest at small n, z at large n
    half = critical_value(confidence, dist=kind, df=df) * se
    return MeanCI(mean, se, mean - half, mean + half, n, g, kind)


def mean_ci(
    values: Iterable[float | bool],
    *,
    clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    dist: Dist | None = None,
) -> MeanCI:
    """Mean of ``values`` with its standard error and ``confidence`` interval.

    ``x̄ = Σ x_i / n``; ``SE = s / √n`` with ``s² = Σ(x_i - x̄)² / (n - 1)``. With
    ``clusters`` (one label per value, ``G`` distinct labels; the values whose label is
    missing form one cluster together), Miller's eq. 4 with the CR1 factor:
    ``SE² = G/(G-1) · Σ_g (Σ_{i∈g} (x_i - x̄))² / n²``.

    The interval: values all in [0, 1] (pass/fail, grades) get a Wilson score interval
    (:func:`wilson`, with the effective size of :func:`_effective_n`), which stays in
    [0, 1] and is never of zero width at 0/n or n/n; other values get ``x̄ ± q · SE``.
    ``q`` is t with ``n - 1`` degrees of freedom (``G - 1`` when clustered), or z for an
    unclustered Wilson interval; ``dist`` forces ``"normal"`` (z) or ``"t"``.
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
    method: str = "t"
    """How the interval was formed: ``t``, ``normal``, ``bonett-price`` (pass/fail, no
    clusters) or ``t+bonett-price`` (pass/fail with clusters: the clustered t interval,
    widened to the Bonett-Price one where that is wider)."""
    se_floor: float = _NAN
    """Pass/fail pairs: the Bonett-Price SE, the least SE the MDE uses (``se`` is 0 when
    every item changed the same way)."""

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
        """Minimum detectable effect at this n: ``(z_{0.975} + z_{0.8}) · SE`` ≈ 2.80 · SE
        (for pass/fail pairs, SE at least ``se_floor``: never 0)."""
        se = self.se if math.isnan(self.se_floor) else max(self.se, self.se_floor)
        return (Z95 + norm_ppf(0.8)) * se


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
    dist: Dist | None = None,
) -> PairedDiff:
    """Paired difference ``a - b`` over the items both score (Miller §5).

    ``d_i = a_i - b_i``; mean ``d̄``; ``SE = sd(d) / √n`` (``ddof=1``), or clustered by
    ``clusters[item]`` as in :func:`mean_ci`; interval ``d̄ ± q · SE`` with ``q`` from t
    with ``n - 1`` (``G - 1``) degrees of freedom unless ``dist`` says otherwise. Pairing
    removes the item difficulty both share: ``Var(d) = Var(a) + Var(b) - 2 Cov(a, b)``.
    When both sides' scores lie in [0, 1], the difference does in [-1, 1], and so is
    its interval (clipped).

    Pass/fail on both sides without clusters (and ``dist`` not forced): the Bonett–Price
    adjusted interval (:func:`bonett_price`) instead, which keeps a width when every
    item changed the same way (``d̄ ± q · SE`` is then ``[d̄, d̄]``: false certainty).
    """
    shared, only_a, only_b = _split_ids(a, b)
    xa = _as_array(a[i] for i in shared)
    xb = _as_array(b[i] for i in shared)
    labels = None if clusters is None else [clusters[i] for i in shared]
    est = _estimate(xa - xb, labels, confidence, dist, wilson_ok=False)
    n = len(shared)
    low, high = est.ci_low, est.ci_high
    method = est.method
    se_floor = _NAN
    if bounded(xa) and bounded(xb):
        if dist is None and n and _binary(xa) and _binary(xb):
            gained = int(np.sum((xa == 1.0) & (xb == 0.0)))
            lost = int(np.sum((xa == 0.0) & (xb == 1.0)))
            q = critical_value(confidence, dist="normal")
            bp_low, bp_high = bonett_price(gained, lost, n, q)
            se_floor = bonett_price_se(gained, lost, n)
            if labels is None:
                low, high, method = bp_low, bp_high, "bonett-price"
            elif math.isnan(low) or math.isnan(high) or bp_low < low or bp_high > high:
                # Clusters never make a pass/fail interval narrower than the unclustered
                # Bonett-Price one (16 items all failing in 4 clusters: [-1, -1] by t).
                low = bp_low if math.isnan(low) else min(low, bp_low)
                high = bp_high if math.isnan(high) else max(high, bp_high)
                method = "t+bonett-price"
        low, high = max(low, -1.0), min(high, 1.0)
    return PairedDiff(
        mean=est.mean,
        se=est.se,
        ci_low=low,
        ci_high=high,
        n=n,
        mean_a=float(xa.mean()) if n else _NAN,
        mean_b=float(xb.mean()) if n else _NAN,
        correlation=pearson(xa, xb),
        only_a=only_a,
        only_b=only_b,
        n_clusters=est.n_clusters,
        method=method,
        se_floor=se_floor,
    )


def bonett_price_se(f: int, g: int, n: int) -> float:
    """The SE of Bonett & Price's adjusted difference: ``√((p̃₁ + p̃₂ - (p̃₁ - p̃₂)²) /
    (n+2))`` with ``p̃₁ = (f+1)/(n+2)``, ``p̃₂ = (g+1)/(n+2)`` (see :func:`bonett_price`)."""
    p1, p2 = (f + 1) / (n + 2), (g + 1) / (n + 2)
    return math.sqrt(max(p1 + p2 - (p1 - p2) ** 2, 0.0) / (n + 2))


def bonett_price(f: int, g: int, n: int, q: float) -> tuple[float, float]:
    """The interval of a difference of paired proportions ``(f - g) / n`` from ``f``
    items that pass only on side a and ``g`` only on side b, of ``n`` pairs (Bonett &
    Price 2012, the adjusted Wald interval; among those Fagerland, Lydersen & Laake 2014
    recommend): ``p̃₁ = (f+1)/(n+2)``, ``p̃₂ = (g+1)/(n+2)``, ``(p̃₁ - p̃₂) ± q ·
    √((p̃₁ + p̃₂ - (p̃₁ - p̃₂)²) / (n+2))``, clipped to [-1, 1]. Never of zero width."""
    centre = (f - g) / (n + 2)
    half = q * bonett_price_se(f, g, n)
    return max(-1.0, centre - half), min(1.0, centre + half)


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


def item_values(
    df: pd.DataFrame,
    *,
    method: Reducer = "mean",
    k: int | None = None,
    by: Sequence[str] = GROUP_COLUMNS,
    column: str | None = None,
) -> dict[tuple, float]:
    """:func:`item_scores` as a dict ``{(*by, row_id): value}`` (no index is built), in
    cell order, then the order of first appearance. ``column``: reduce this column
    instead (``score`` for ``mean``, else ``passed``)."""
    column = column or ("score" if method == "mean" else "passed")
    valid = df[df[column].notna()]
    # Plain lists per cell (pandas' per-group Python aggregation took seconds for 100,000
    # rows, and a tuple of every row's names held far more memory than the frame).
    rows, values = valid["row_id"].to_numpy(), valid[column].to_numpy()
    lists: dict[tuple, list[float]] = {}
    for cell, index in valid.groupby(list(by), sort=False, dropna=False).indices.items():
        head = cell if isinstance(cell, tuple) else (cell,)
        for row_id, value in zip(rows[index].tolist(), values[index].tolist(), strict=True):
            lists.setdefault((*head, row_id), []).append(value)
    return reduce_epochs(lists, method, k)


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
    import pandas as pd

    column = "score" if method == "mean" else "passed"
    reduced = item_values(df, method=method, k=k, by=by)
    index = pd.MultiIndex.from_tuples(list(reduced), names=[*by, "row_id"])
    return pd.Series(list(reduced.values()), index=index, dtype=float, name=column)


def summarize_scores(
    df: pd.DataFrame,
    *,
    method: Reducer = "mean",
    k: int | None = None,
    cluster_field: str | None = None,
    by: Sequence[str] = GROUP_COLUMNS,
    confidence: float = 0.95,
    dist: Dist | None = None,
    values: Mapping[tuple, float] | None = None,
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
    if values is None:  # ``values``: this function's item_values, when the caller has them
        values = item_values(df, method=method, k=k, by=by)
    per_cell: dict[tuple, dict[Hashable, float]] = {}
    for (*cell, row_id), value in values.items():
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
