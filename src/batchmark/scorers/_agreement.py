"""Agreement between two raters (a judge and human labels): accuracy and Cohen's kappa.

Labels are nominal: any hashable values, compared with ``==``. Pairs with ``None`` on
either side are skipped.

Cohen's kappa is ``(p_o - p_e) / (1 - p_e)`` where ``p_o`` is the observed agreement
(accuracy) and ``p_e = sum_k p_a(k) * p_b(k)`` the agreement expected by chance from each
rater's label frequencies. It is undefined (``None``) when ``p_e == 1``: both raters
gave one and the same label to every item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

__all__ = ["agreement", "cohen_kappa"]


def agreement(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """``{"n", "accuracy", "kappa"}`` over ``(rater_a, rater_b)`` label pairs.

    ``accuracy`` and ``kappa`` are ``None`` when there are no pairs; ``kappa`` is also
    ``None`` when it is undefined (see the module docstring).
    """
    kept = [(a, b) for a, b in pairs if a is not None and b is not None]
    n = len(kept)
    if n == 0:
        return {"n": 0, "accuracy": None, "kappa": None}
    agree = sum(1 for a, b in kept if a == b)
    return {"n": n, "accuracy": agree / n, "kappa": cohen_kappa(kept)}


def cohen_kappa(pairs: list[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of label pairs (no ``None``s), or ``None`` when undefined."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    count_a = Counter(a for a, _ in pairs)
    count_b = Counter(b for _, b in pairs)
    expected = sum(count_a[k] * count_b.get(k, 0) for k in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)
