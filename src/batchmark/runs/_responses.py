"""Response records: the final answer of each request, and per-cell totals.

A record is plain data (see README, "The run folder"): the cell's coordinates, the
status, the normalized message (text, thinking, tool calls, usage) or the error,
attempts, and whether it came from the response cache. ``text`` is the answer (its text
blocks); ``thinking`` the text of its thinking blocks, kept apart and never part of the
answer (None when it did not think; redacted thinking has no text to keep).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from batchmark.config._models import Catalog
from batchmark.config._pricing import BATCH_DISCOUNT, Price, cost_usd, price_for
from batchmark.runs._ledger import Ledger
from batchmark.runs._stored import expand_message

__all__ = ["LazyParams", "final_responses", "response_data", "summarize"]

_DEFAULTS: dict[str, Any] = {
    "stop_reason": None,
    "response_model": None,
    "usage": None,
    "error_type": None,
    "error_message": None,
}


class LazyParams(Mapping[str, Any]):
    """A request's stored params JSON, parsed on first access (most scorers never look)."""

    __slots__ = ("_raw", "_parsed")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._parsed: dict[str, Any] | None = None

    def _data(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = orjson.loads(self._raw)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


def response_data(status: str, raw: bytes) -> dict[str, Any]:
    """A stored response's data: a success's message with every field back in place
    (``expand_message``), or an error's ``{error_type, error_message}``."""
    data = orjson.loads(raw)
    return expand_message(data) if status == "succeeded" else data


def final_responses(
    ledger: Ledger,
    kind: str = "candidate",
    scorer: str | None = None,
    *,
    with_params: bool = False,
) -> Iterator[dict[str, Any]]:
    """The final response (last attempt) of every ended request of ``kind``, in seq order.

    ``kind`` is ``candidate`` or ``judge``; ``scorer`` picks one judge's requests.
    ``with_params`` (for scoring) adds the request's Messages API params under
    ``"params"`` (a read-only mapping, parsed from the ledger's JSON when first read) and
    its ledger key under ``"seq"``.
    """
    for row in ledger.iter_final(kind, scorer, with_params=with_params):
        data = response_data(row[9], row[10])
        record: dict[str, Any] = {
            "custom_id": row[0],
            "variant": row[1],
            "model_key": row[2],
            "model": row[3],
            "row_id": row[4],
            "epoch": row[5],
            "status": row[9],
            "attempts": row[6],
            "batch_id": row[8],
            "cached": bool(data.pop("cached", False)),
            "text": None,
            "thinking": None,
            "tool_calls": [],  # a new list per record, never shared
            **_DEFAULTS,
        }
        record.update(data)
        if with_params:
            record["params"] = LazyParams(row[11])
            record["seq"] = row[12]
        yield record


def summary_cells(
    ledger: Ledger,
    pricing: dict[str, Any],
    catalog: Catalog | None = None,
    candidates: Iterable[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``Run.summary``'s cells: one per model key x variant of the candidates (their
    records as ``candidates`` when the caller reads them anyway, else read here), then
    each judge's requests as cells of their own (variant ``judge:<name>``)."""
    records = final_responses(ledger) if candidates is None else candidates
    cells = summarize(records, pricing, catalog)
    for judge in ledger.judge_names():
        judged = (
            {**r, "variant": f"judge:{judge}", "model_key": r["model"]}
            for r in final_responses(ledger, kind="judge", scorer=judge)
        )
        cells += summarize(judged, pricing, catalog)
    return cells


def summarize(
    responses: Iterable[dict[str, Any]], pricing: dict[str, Any], catalog: Catalog | None = None
) -> list[dict[str, Any]]:
    """Counts, tokens and cost per (model key, variant), from response records; prices
    from ``pricing`` overrides, else the model catalog (the config's)."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    prices: dict[str, Price | None] = {}  # per model id: looked up once, not per response
    for r in responses:
        cell = cells.get((r["model_key"], r["variant"]))
        if cell is None:
            cell = cells[(r["model_key"], r["variant"])] = {
                "model": r["model_key"],
                "variant": r["variant"],
                "requests": 0,
                "succeeded": 0,
                "errored": 0,
                "cached": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_write_tokens": 0,
                "cache_read_tokens": 0,
                "cost_usd": 0.0,
                "cost_standard_usd": 0.0,
                "reused_cost_usd": 0.0,
                "priced": True,
            }
        cell["requests"] += 1
        if r["status"] != "succeeded":
            cell["errored"] += 1
            continue
        cell["succeeded"] += 1
        usage = r.get("usage") or {}
        cell["input_tokens"] += usage.get("input_tokens", 0)
        cell["output_tokens"] += usage.get("output_tokens", 0)
        cell["cache_write_tokens"] += usage.get("cache_creation_input_tokens", 0)
        cell["cache_read_tokens"] += usage.get("cache_read_input_tokens", 0)
        cell["cached"] += bool(r["cached"])
        model = r["model"]
        if model not in prices:
            prices[model] = price_for(model, pricing, catalog)
        price = prices[model]
        if price is None:
            cell["priced"] = False
            continue
        standard = cost_usd(usage, price, batch=False)
        if r["cached"]:  # paid for by an earlier run
            cell["reused_cost_usd"] += standard * BATCH_DISCOUNT
        else:
            cell["cost_usd"] += standard * BATCH_DISCOUNT
            cell["cost_standard_usd"] += standard
    out = []
    for cell in cells.values():
        if not cell.pop("priced"):
            cell["cost_usd"] = cell["cost_standard_usd"] = cell["reused_cost_usd"] = None
        out.append(cell)
    return out
