"""Prices and the cost of a response.

Standard prices in USD per million tokens, as published in 2026 (batches-api.md §6).
A config's ``pricing:`` section overrides or extends this table; no price lives in
logic. Cost of one batch request::

    0.5 * (in*P_in + cw5m*1.25*P_in + cw1h*2*P_in + cr*0.1*P_in + out*P_out) / 1e6
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BATCH_DISCOUNT", "PRICES", "Price", "cost_usd", "fmt_usd", "price_for"]

BATCH_DISCOUNT = 0.5
CACHE_WRITE_5M = 1.25
CACHE_WRITE_1H = 2.0
CACHE_READ = 0.1


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float


# Keyed by model id prefix; the longest matching prefix wins, so dated ids
# ("claude-opus-4-5-20251101") find their family.
PRICES: dict[str, Price] = {
    "claude-opus-5": Price(5, 25),
    "claude-opus-4-8": Price(5, 25),
    "claude-opus-4-7": Price(5, 25),
    "claude-opus-4-6": Price(5, 25),
    "claude-opus-4-5": Price(5, 25),
    "claude-opus-4-1": Price(15, 75),
    "claude-opus-4-0": Price(15, 75),
    "claude-opus-4-2025": Price(15, 75),
    "claude-sonnet-5": Price(3, 15),
    "claude-sonnet-4-6": Price(3, 15),
    "claude-sonnet-4-5": Price(3, 15),
    "claude-haiku-4-5": Price(1, 5),
}


def price_for(model: str, overrides: Mapping[str, Any] | None = None) -> Price | None:
    """The price of a model id: an override (exact id or prefix) first, then the table."""
    table: dict[str, Price] = dict(PRICES)
    for key, value in (overrides or {}).items():
        table[key] = value if isinstance(value, Price) else Price(**dict(value))
    best = max((k for k in table if model.startswith(k)), key=len, default=None)
    return table[best] if best is not None else None


def cost_usd(usage: Mapping[str, Any], price: Price, *, batch: bool = True) -> float:
    """Cost of one response's usage; ``batch`` applies the 50% batch discount."""
    cache_creation = usage.get("cache_creation") or {}
    cw1h = cache_creation.get("ephemeral_1h_input_tokens") or 0
    cw_total = usage.get("cache_creation_input_tokens") or 0
    cw5 = cache_creation.get("ephemeral_5m_input_tokens")
    if cw5 is None:
        cw5 = max(cw_total - cw1h, 0)
    total = (
        (usage.get("input_tokens") or 0) * price.input
        + cw5 * CACHE_WRITE_5M * price.input
        + cw1h * CACHE_WRITE_1H * price.input
        + (usage.get("cache_read_input_tokens") or 0) * CACHE_READ * price.input
        + (usage.get("output_tokens") or 0) * price.output
    ) / 1e6
    return total * BATCH_DISCOUNT if batch else total


def fmt_usd(cost: float | None) -> str:
    """``$1,234.5678``, or ``n/a`` for a cost that cannot be computed (a model with no price)."""
    return "n/a" if cost is None else f"${cost:,.4f}"
