"""Prices and the cost of a response.

Standard prices in USD per million tokens come from the model catalog (``_models``:
``models.json``, each price with its source); a config's ``pricing:`` section
overrides them (by exact id or id prefix), and its ``catalog:`` section can add a
model with its price. No price lives in logic. Cost of one batch request::

    0.5 * (in*P_in + cw5m*P_cw5m + cw1h*P_cw1h + cr*P_cr + out*P_out) / 1e6

where the cache prices default to 1.25, 2 and 0.1 times the input price
(batches-api.md §6) unless the catalog gives the model its own. A model with a
long-context tier (``Price.long_context``) bills every token of a request whose prompt
(input + cache writes + cache reads) is over the tier's threshold at the tier's prices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchmark.config._models import Catalog, default_catalog

__all__ = ["BATCH_DISCOUNT", "Price", "cost_usd", "fmt_usd", "price_for"]

BATCH_DISCOUNT = 0.5
CACHE_WRITE_5M = 1.25
CACHE_WRITE_1H = 2.0
CACHE_READ = 0.1


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; cache prices ``None`` are the multipliers of ``input``."""

    input: float
    output: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    long_context: tuple[int, Price] | None = None
    """(prompt tokens above which it applies, the price then)."""

    @classmethod
    def of(cls, value: Any) -> Price:
        """From a catalog or config price (a pydantic ``Price``, a mapping, or a Price)."""
        if isinstance(value, Price):
            return value
        data = dict(value) if isinstance(value, Mapping) else value.model_dump()
        tier = data.pop("long_context", None)
        if tier is not None:
            tier = dict(tier) if isinstance(tier, Mapping) else tier.model_dump()
            above = tier.pop("above_tokens")
            data["long_context"] = (above, cls(**tier))
        return cls(**data)

    @property
    def write_5m(self) -> float:
        return self.input * CACHE_WRITE_5M if self.cache_write_5m is None else self.cache_write_5m

    @property
    def write_1h(self) -> float:
        return self.input * CACHE_WRITE_1H if self.cache_write_1h is None else self.cache_write_1h

    @property
    def read(self) -> float:
        return self.input * CACHE_READ if self.cache_read is None else self.cache_read


def price_for(
    model: str, overrides: Mapping[str, Any] | None = None, catalog: Catalog | None = None
) -> Price | None:
    """The price of a model id: an override (exact id or longest prefix, for the id as
    given or the catalog's canonical id) first, then the catalog's; None if neither."""
    catalog = catalog or default_catalog()
    facts = catalog.get(model)
    names = [model] if facts is None or facts.id == model else [model, str(facts.id)]
    for name in names:
        best = max((k for k in overrides or {} if name.startswith(k)), key=len, default=None)
        if best is not None:
            return Price.of(overrides[best])  # type: ignore[index]
    if facts is not None and facts.price is not None:
        return Price.of(facts.price)
    return None


def cost_usd(
    usage: Mapping[str, Any], price: Price, *, batch: bool = True, tiered: bool = True
) -> float:
    """Cost of one response's usage; ``batch`` applies the 50% batch discount.
    ``tiered=False`` never switches to the long-context prices (for usage summed over
    many requests, where the prompt size of each is not known)."""
    cache_creation = usage.get("cache_creation") or {}
    cw1h = cache_creation.get("ephemeral_1h_input_tokens") or 0
    cw_total = usage.get("cache_creation_input_tokens") or 0
    cw5 = cache_creation.get("ephemeral_5m_input_tokens")
    if cw5 is None:
        cw5 = max(cw_total - cw1h, 0)
    plain = usage.get("input_tokens") or 0
    read = usage.get("cache_read_input_tokens") or 0
    tier = price.long_context
    if tiered and tier is not None and plain + cw5 + cw1h + read > tier[0]:
        price = tier[1]
    total = (
        plain * price.input
        + cw5 * price.write_5m
        + cw1h * price.write_1h
        + read * price.read
        + (usage.get("output_tokens") or 0) * price.output
    ) / 1e6
    return total * BATCH_DISCOUNT if batch else total


def fmt_usd(cost: float | None) -> str:
    """``$1,234.5678``, or ``n/a`` for a cost that cannot be computed (a model with no price)."""
    return "n/a" if cost is None else f"${cost:,.4f}"
