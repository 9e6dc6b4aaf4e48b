"""What a config will cost, before anything is sent: ``estimate`` and ``check_budget``.

``estimate(spec)`` streams the grid once (``_grid.expand``; memory stays flat) and counts,
per model x variant and in total:

- **requests and bytes** (``Request.nbytes``) of the whole grid;
- **cache hits**: requests whose ``cache_key`` is in the endpoint's response cache. A run
  reuses them, so they cost nothing and are not sent;
- **batches**: the requests to send (the cache misses) packed greedily in grid order
  under ``batch.max_requests`` / ``batch.max_bytes``, with the request caps staggered
  by ``batch.max_in_flight`` (``_packing``), exactly as ``BatchRunner._next_chunk``
  packs them (candidates and judges each from the start of a pass); a run whose
  requests all succeed the first time makes exactly these batches. A request too
  large for any batch is counted apart (a run fails it unsent);
- **input tokens** of the requests to send: the API's ``count_tokens`` when a client is
  given, else ``_tokens``' local approximation (~4 bytes a token). count_tokens is asked
  for at most ``count_tokens_sample`` distinct (model, prompt) pairs per model; the
  other prompts of that model get the approximation scaled by the ratio count_tokens /
  approximation observed on that sample;
- **output tokens**: the ``max_tokens`` bound, and the *expected* output: the mean
  ``output_tokens`` of the succeeded responses of past runs of this eval against the
  same endpoint (``results/<eval>/*/``, matched on model key, variant and model id),
  capped at ``max_tokens``; without past responses the expected output is the bound;
- **prompt caching**: the emulator's arithmetic (``config._prompt_cache``), on every
  ``cache_control`` breakpoint whose prefix reaches the model's minimum cacheable length,
  the automatic one of a top-level ``cache_control`` included. In the *expected*
  figures a request reads the longest prefix an earlier request of the estimate wrote
  and writes each later breakpoint's segment (at its marker's TTL rate), as if every
  entry stayed cached: an optimistic bound, since batch cache hits are best-effort. The
  *maximum* assumes no hit at all: every request writes up to its last breakpoint;
- **judge requests**: for each judge scorer, one request per candidate (as if every
  candidate succeeds). For a candidate served from the cache the judge's request is built
  exactly from the cached response and looked up in the cache too; for the others it is
  built with an empty response, and the candidate's expected (or, for the maximum,
  ``max_tokens``) output is added to its input. Judge output is bounded by the judge's
  ``max_tokens`` (expected: past runs' mean, as for candidates). Judge batches are
  packed like candidates' from those approximate sizes;
- **cost** at batch prices (``_pricing``, with the config's ``pricing:`` overrides):
  ``cost_usd`` from the expected figures, ``cost_max_usd`` from the bounds (all output at
  ``max_tokens``, no cache reads). A model without a price has no cost, and a note says so.

``check_budget(est, max_cost)`` compares the **maximum** cost with the budget: a budget
must hold whatever the models answer, so the bound is what is checked, never the
expectation. An estimate with an unpriced model cannot be checked and is refused too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import anthropic
import orjson

from batchmark._errors import BudgetExceeded, StoreError
from batchmark.config._models import min_cacheable_tokens
from batchmark.config._pricing import Price, cost_usd, fmt_usd, price_for
from batchmark.config._prompt_cache import CacheSplit, cache_prefixes
from batchmark.config._schema import EvalSpec
from batchmark.config._tokens import prefix_units
from batchmark.runs._blobs import MARK
from batchmark.runs._datasets import Row, iter_rows
from batchmark.runs._grid import Request, expand
from batchmark.runs._keys import cache_key, judge_custom_id
from batchmark.runs._ledger import Ledger
from batchmark.runs._packing import ENTRY_OVERHEAD, BatchPacker
from batchmark.runs._responses import final_responses
from batchmark.runs._run import Run
from batchmark.runs._scoring import judges_of, scorer_request
from batchmark.runs._store import ResponseCache, RunFolder, cache_path

if TYPE_CHECKING:
    from batchmark.scorers import BatchedScorer

__all__ = [
    "COUNT_TOKENS_SAMPLE",
    "BudgetExceeded",
    "Estimate",
    "EstimateRow",
    "check_budget",
    "estimate",
]

COUNT_TOKENS_SAMPLE = 20
"""Distinct prompts per model sent to count_tokens; the rest are extrapolated."""
_LOOKUP_CHUNK = 500
_BYTES_PER_TOKEN = 4  # to size a judge's request from the response it will quote
_COUNT_KEYS = ("model", "system", "messages", "tools", "tool_choice", "thinking")


@dataclass(frozen=True, slots=True)
class EstimateRow:
    """One model x variant (judges: judge model x ``judge:<name>``), or the total."""

    model: str
    """The model key (a judge's row: the judge's model id)."""
    variant: str
    requests: int
    cached: int
    """Served from the response cache: not sent, cost nothing."""
    input_tokens: int
    """Prompt tokens of the requests to send, cache writes and reads included."""
    input_tokens_max: int
    """The same, for the maximum (judges quote a response of ``max_tokens``)."""
    cache_write_tokens: int
    """Of ``input_tokens``, expected prompt-cache writes (first request per prefix)."""
    cache_read_tokens: int
    """Of ``input_tokens``, expected prompt-cache reads (optimistic)."""
    output_tokens: int
    """Expected output: past runs' mean per request, else the ``max_tokens`` bound."""
    output_tokens_max: int
    """Sum of ``max_tokens`` over the requests to send."""
    observed: int
    """Past responses behind ``output_tokens`` (0: it is the ``max_tokens`` bound)."""
    cost_usd: float | None
    """Expected cost at batch prices; None without a price."""
    cost_max_usd: float | None
    """Maximum cost at batch prices (output at max_tokens, no cache reads)."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What running a config would send and cost (see the module docstring)."""

    name: str
    endpoint: str
    """Whose response cache was consulted (``api.anthropic.com``, ``emulator``, ...)."""
    requests: int
    bytes: int
    """Sum of ``Request.nbytes`` over the whole grid."""
    cached: int
    """Candidate requests served from the response cache."""
    batches: int
    """Batches the candidate requests to send need."""
    too_large: int
    """Requests larger than ``batch.max_bytes``: a run fails them unsent."""
    judge_requests: int
    judge_cached: int
    judge_batches: int
    """Approximate: judge request sizes depend on responses not yet seen."""
    token_source: str
    """``count_tokens`` or ``approximate``: where the candidates' input tokens come from."""
    rows: tuple[EstimateRow, ...]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> EstimateRow:
        """The rows summed; a cost is None when any row's is."""

        def cost(name: str) -> float | None:
            values = [getattr(r, name) for r in self.rows]
            return None if any(v is None for v in values) else sum(values)

        def add(name: str) -> int:
            return sum(getattr(r, name) for r in self.rows)

        counts = {f.name: add(f.name) for f in dataclasses.fields(EstimateRow)[2:-2]}
        return EstimateRow(
            "total", "", **counts, cost_usd=cost("cost_usd"), cost_max_usd=cost("cost_max_usd")
        )

    @property
    def cost_usd(self) -> float | None:
        """Expected cost at batch prices, or None when a model has no price."""
        return self.total.cost_usd

    @property
    def cost_max_usd(self) -> float | None:
        """Maximum cost at batch prices, or None when a model has no price."""
        return self.total.cost_max_usd

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["rows"] = [r.as_dict() for r in self.rows]
        data["notes"] = list(self.notes)
        data["total"] = self.total.as_dict()
        data["cost_usd"] = self.cost_usd
        data["cost_max_usd"] = self.cost_max_usd
        return data


def check_budget(est: Estimate, max_cost: float) -> None:
    """Raise ``BudgetExceeded`` unless the estimate's *maximum* cost is within ``max_cost``.

    The maximum (every output at ``max_tokens``, no prompt-cache reads) is compared, not
    the expected cost: the budget must hold whatever the models answer. An estimate
    with a model that has no price cannot be checked, and is refused as well.
    """
    if est.cost_max_usd is None:
        unpriced = sorted({r.model for r in est.rows if r.cost_max_usd is None})
        raise BudgetExceeded(
            f"cannot check the budget of {fmt_usd(max_cost)} (--max-cost): no price for "
            f"{', '.join(unpriced)}",
            hint="add the model under `pricing:` in the config",
        )
    if est.cost_max_usd > max_cost:
        raise BudgetExceeded(
            f"estimated maximum cost {fmt_usd(est.cost_max_usd)} (every output at "
            f"max_tokens, no prompt-cache reads) is over the budget of {fmt_usd(max_cost)} "
            f"(--max-cost); the expected cost is {fmt_usd(est.cost_usd)}; nothing was sent",
            hint="raise --max-cost, or reduce the grid (dataset.limit, variants, models, "
            "epochs, max_tokens)",
        )


# --- accumulation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _CellTally:
    """Running totals of one (model, variant) cell; ``row()`` makes its ``EstimateRow``."""

    model: str
    variant: str
    price: Price | None
    mean_output: float | None
    observed: int
    requests: int = 0
    cached: int = 0
    plain: int = 0  # uncached prompt tokens, expected
    plain_max: int = 0
    cw5: int = 0
    cw1h: int = 0
    cr: int = 0
    cw5_max: int = 0
    cw1h_max: int = 0
    out: float = 0.0
    out_max: int = 0

    def expected_output(self, max_tokens: int) -> float:
        return max_tokens if self.mean_output is None else min(self.mean_output, max_tokens)

    def add(self, tokens: int, tokens_max: int, expected: CacheSplit, worst: CacheSplit) -> None:
        """A request to send: its prompt tokens and how its prompt meets the prompt cache,
        ``expected`` (prefixes written before are read) and ``worst`` (nothing read)."""
        self.plain += max(0, tokens - expected.creation_5m - expected.creation_1h - expected.read)
        self.cw5 += expected.creation_5m
        self.cw1h += expected.creation_1h
        self.cr += expected.read
        self.plain_max += max(0, tokens_max - worst.creation_5m - worst.creation_1h)
        self.cw5_max += worst.creation_5m
        self.cw1h_max += worst.creation_1h

    def row(self) -> EstimateRow:
        def cost(
            plain: int, cw5: int, cw1h: int, cr: int, out: float, *, most: bool = False
        ) -> float | None:
            if self.price is None:
                return None
            price = self.price
            if most and price.long_context is not None:  # the bound: every request long
                price = price.long_context[1]
            usage = {
                "input_tokens": plain,
                "cache_creation_input_tokens": cw5 + cw1h,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": cw5,
                    "ephemeral_1h_input_tokens": cw1h,
                },
                "cache_read_input_tokens": cr,
                "output_tokens": out,
            }
            return cost_usd(usage, price, batch=True, tiered=False)

        return EstimateRow(
            model=self.model,
            variant=self.variant,
            requests=self.requests,
            cached=self.cached,
            input_tokens=self.plain + self.cw5 + self.cw1h + self.cr,
            input_tokens_max=self.plain_max + self.cw5_max + self.cw1h_max,
            cache_write_tokens=self.cw5 + self.cw1h,
            cache_read_tokens=self.cr,
            output_tokens=round(self.out),
            output_tokens_max=self.out_max,
            observed=self.observed,
            cost_usd=cost(self.plain, self.cw5, self.cw1h, self.cr, self.out),
            cost_max_usd=cost(
                self.plain_max, self.cw5_max, self.cw1h_max, 0, self.out_max, most=True
            ),
        )


class _TokenCounter:
    """Prompt tokens: count_tokens for a sample of distinct prompts per model, else approx."""

    def __init__(self, client: anthropic.Anthropic | None, sample: int) -> None:
        self.client = client
        self.sample = sample
        self.counted: dict[bytes, int] = {}  # at most ``sample`` entries per model
        self.stats: dict[str, list[int]] = {}  # model -> [prompts counted, api sum, approx sum]
        self.error: str | None = None

    def ratio(self, model: str) -> float:
        n, api, approx = self.stats.get(model, (0, 0, 0))
        return api / approx if n and approx else 1.0

    def tokens(self, params: dict[str, Any], approx: int) -> int:
        model = params["model"]
        if self.client is None or self.error is not None:
            return round(approx * self.ratio(model))
        prompt = {k: params[k] for k in _COUNT_KEYS if k in params}
        blob = orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS)
        if MARK in blob:  # an image or PDF is a blob reference here: not sendable as is
            return round(approx * self.ratio(model))
        key = hashlib.sha256(blob).digest()
        if key in self.counted:
            return self.counted[key]
        stats = self.stats.setdefault(model, [0, 0, 0])
        if stats[0] >= self.sample:
            return round(approx * self.ratio(model))
        try:
            counted = self.client.messages.count_tokens(**prompt).input_tokens
        except anthropic.APIError as err:
            self.error = f"{type(err).__name__}: {err}"
            return round(approx * self.ratio(model))
        stats[0] += 1
        stats[1] += counted
        stats[2] += approx
        self.counted[key] = counted
        return counted


def _scaled(split: CacheSplit, scale: float) -> CacheSplit:
    """A cache split in approximated tokens, scaled like the request's whole prompt."""
    if scale == 1.0:
        return split
    return CacheSplit(
        round(split.input_tokens * scale),
        round(split.creation_5m * scale),
        round(split.creation_1h * scale),
        round(split.read * scale),
    )


def _observed(
    spec: EvalSpec, results: Path, endpoint: str, judges: Sequence[BatchedScorer]
) -> dict[tuple[str, str, str], list[int]]:
    """(model key, variant, model id) -> [responses, output tokens] from past runs.

    Only succeeded responses count. Batched scorers' requests (a judge's) are keyed
    (their model, ``judge:<name>``, their model). Only runs against ``endpoint`` count:
    an emulator's answers say nothing about a real model's lengths.
    """
    seen: dict[tuple[str, str, str], list[int]] = {}

    def add(records: Iterator[dict[str, Any]], judge: BatchedScorer | None = None) -> None:
        for r in records:
            usage = r.get("usage")
            if r["status"] != "succeeded" or not usage:
                continue
            if judge is None:
                key = (r["model_key"], r["variant"], r["model"])
            else:
                key = (r["model"], f"judge:{judge.name}", r["model"])
            acc = seen.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += usage.get("output_tokens") or 0

    for info in sorted((results / spec.name).glob("*/run.json")):
        folder = RunFolder(info.parent)
        try:
            _observe_run(folder, endpoint, judges, add)
        except (StoreError, sqlite3.DatabaseError, OSError, ValueError):
            continue  # a damaged past run only informs less (`batchmark doctor` tells)
    return seen


def _observe_run(
    folder: RunFolder,
    endpoint: str,
    judges: Sequence[BatchedScorer],
    add: Callable[..., None],
) -> None:
    if folder.id.startswith(".") or folder.read_info().get("endpoint") != endpoint:
        return
    add(Run(folder).responses())
    if not judges:
        return
    ledger = Ledger(folder.ledger_path, readonly=True)
    try:
        for judge in judges:
            add(final_responses(ledger, kind="judge", scorer=judge.name), judge)
    finally:
        ledger.close()


# --- the estimate ----------------------------------------------------------------------------


class _JudgeItem(NamedTuple):
    """A judge's request about one candidate, before its cache lookup."""

    cell: _CellTally
    params: dict[str, Any]
    cache_key: str | None
    """Set when the candidate's response is cached (the judge's request is then exact)."""
    extra: int
    """Tokens standing for the response the judge will quote (0 when it is in params)."""
    extra_max: int
    size: int
    """Approximate ``{"custom_id": ..., "params": ...}`` bytes."""


class _Estimator:
    """The running counts of one estimate, fed chunk by chunk of the grid."""

    def __init__(
        self,
        spec: EvalSpec,
        observed: dict[tuple[str, str, str], list[int]],
        counter: _TokenCounter,
        cache: ResponseCache | None,
    ) -> None:
        self.spec = spec
        self.catalog = spec.model_catalog()
        self.counter = counter
        self.cache = cache
        self.judges = judges_of(spec.build_scorers())
        self.observed = observed
        self.cells: dict[tuple[str, str], _CellTally] = {}
        for model in spec.models:
            for variant in spec.prompts:
                self._add_cell(model.key, variant.name, model.model, observed)
        self.prefixes: set[bytes] = set()
        self.packer = BatchPacker.for_config(spec.batch)
        self.judge_packer = BatchPacker.for_config(spec.batch)
        self.requests = self.bytes = self.cached = 0
        self.judge_requests = self.judge_cached = 0

    def _add_cell(self, key: str, variant: str, model: str, observed: Any) -> _CellTally:
        n, total = observed.get((key, variant, model), (0, 0))
        price = price_for(model, self.spec.pricing or {}, self.catalog)
        cell = _CellTally(key, variant, price, total / n if n else None, n)
        self.cells[(key, variant)] = cell
        return cell

    def chunk(self, requests: list[Request], rows: list[Row] | None) -> None:
        """Account for a chunk of candidates; ``rows`` (for judges) are their rows."""
        keys = [r.cache_key for r in requests]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        judged: list[_JudgeItem] = []
        for i, req in enumerate(requests):
            self.requests += 1
            self.bytes += req.nbytes
            cell = self.cells[(req.model_key, req.variant)]
            cell.requests += 1
            hit = hits.get(req.cache_key)
            if hit is not None:
                self.cached += 1
                cell.cached += 1
            else:
                self.packer.add(req.nbytes)
                self._prompt(cell, req.params, 0, 0)
            if rows is not None:
                for judge in self.judges:
                    item = self._judge(judge, req, rows[i], hit, cell)
                    if item is not None:
                        judged.append(item)
        if judged:
            self._judged(judged)

    def _prompt(self, cell: _CellTally, params: dict[str, Any], extra: int, extra_max: int) -> None:
        """A request to send: its prompt tokens, cache split and output."""
        units = prefix_units(params)
        approx = sum(u.tokens for u in units)
        if cell.variant.startswith("judge:"):
            tokens = round(approx * self.counter.ratio(params["model"]))
        else:
            tokens = self.counter.tokens(params, approx)
        # The cache arithmetic is the emulator's (``_prompt_cache``), on approximated
        # tokens: the model's minimum is compared with the prefix scaled like the prompt.
        scale = tokens / approx if tokens and approx else 1.0
        prefixes = cache_prefixes(
            params, min_cacheable_tokens(params["model"], self.catalog) / scale, units
        )
        expected = prefixes.apply(self.prefixes.__contains__)
        self.prefixes.update(point.key for point in expected.written)
        worst = prefixes.apply(lambda key: False).split
        cell.add(
            tokens + extra,
            tokens + extra_max,
            _scaled(expected.split, scale),
            _scaled(worst, scale),
        )
        max_tokens = params["max_tokens"]
        cell.out += cell.expected_output(max_tokens)
        cell.out_max += max_tokens

    def _judge(
        self,
        judge: BatchedScorer,
        req: Request,
        row: Row,
        hit: dict[str, Any] | None,
        cand: _CellTally,
    ) -> _JudgeItem | None:
        """The judge's request about one candidate, built as the driver builds it.

        With the candidate's cached response it is exact; otherwise the response is
        empty and its expected size is carried in ``extra``.
        """
        from batchmark.scorers import ScoreContext

        response = {"status": "succeeded", "text": None, "tool_calls": [], **(hit or {})}
        ctx = ScoreContext(
            row.data, row.id, req.variant, req.model_key, req.epoch, req.params, response
        )
        params = scorer_request(judge, ctx)
        if not isinstance(params, dict):
            return None
        extra = extra_max = 0
        key = None
        if hit is None:
            max_tokens = req.params["max_tokens"]
            extra, extra_max = round(cand.expected_output(max_tokens)), max_tokens
        else:
            key = cache_key(params, 0, self.spec.api_version)
        size = len(judge_custom_id(req.custom_id, judge.name)) + len(orjson.dumps(params))
        size += ENTRY_OVERHEAD + extra * _BYTES_PER_TOKEN
        model, variant = params["model"], f"judge:{judge.name}"
        cell = self.cells.get((model, variant)) or self._add_cell(
            model, variant, model, self.observed
        )
        return _JudgeItem(cell, params, key, extra, extra_max, size)

    def _judged(self, items: list[_JudgeItem]) -> None:
        keys = [i.cache_key for i in items if i.cache_key is not None]
        hits = self.cache.get_many(keys) if self.cache is not None and keys else {}
        for item in items:
            self.judge_requests += 1
            item.cell.requests += 1
            if item.cache_key is not None and item.cache_key in hits:
                self.judge_cached += 1
                item.cell.cached += 1
                continue
            self.judge_packer.add(item.size)
            self._prompt(item.cell, item.params, item.extra, item.extra_max)


def estimate(
    spec: EvalSpec,
    *,
    results: Path = Path("results"),
    client: anthropic.Anthropic | None = None,
    endpoint: str = "api.anthropic.com",
    use_cache: bool = True,
    count_tokens_sample: int = COUNT_TOKENS_SAMPLE,
) -> Estimate:
    """What running ``spec`` would send and cost; sends nothing but count_tokens calls.

    ``endpoint`` names the response cache to consult and the past runs to learn output
    lengths from (``Endpoint.name``); ``use_cache=False`` estimates a
    ``--no-cache`` run. ``client``, when given, counts input tokens with the API (see
    the module docstring for the sampling) and is asked (``GET /v1/models/{id}``)
    whether each model exists: a note names any that does not. Raises what ``expand``
    raises.
    """
    results = Path(results)
    counter = _TokenCounter(client, count_tokens_sample)
    judges = judges_of(spec.build_scorers())
    observed = _observed(spec, results, endpoint, judges)
    path = cache_path(results, endpoint)
    cache = ResponseCache(path) if use_cache and path.is_file() else None
    try:
        est = _Estimator(spec, observed, counter, cache)
        rows = iter_rows(spec) if judges else None
        row: Row | None = None
        chunk: list[Request] = []
        in_step: list[Row] = []
        for req in expand(spec):
            chunk.append(req)
            if rows is not None:
                while row is None or row.id != req.row_id:
                    row = next(rows)
                in_step.append(row)
            if len(chunk) >= _LOOKUP_CHUNK:
                est.chunk(chunk, in_step if rows is not None else None)
                chunk, in_step = [], []
        if chunk:
            est.chunk(chunk, in_step if rows is not None else None)
    finally:
        if cache is not None:
            cache.close()
    online = _models_online(spec, client, endpoint) if client is not None else []
    return _result(spec, endpoint, est, counter, online)


def _models_online(spec: EvalSpec, client: anthropic.Anthropic, endpoint: str) -> list[str]:
    """Notes on the config's models that ``endpoint``'s Models API does not serve."""
    from batchmark.runs._request_checks import models_online

    ids = [m.model for m in spec.models]
    ids += [m for s in spec.build_scorers() if isinstance(m := getattr(s, "model", None), str)]
    try:
        found = models_online(client, ids)
    except anthropic.APIError as err:
        return [f"could not ask {endpoint} which models exist ({type(err).__name__})"]
    return [
        f"model {model}: {why} at {endpoint}; a run would fail its requests"
        for model, why in found.items()
        if why is not None
    ]


def _result(
    spec: EvalSpec, endpoint: str, est: _Estimator, counter: _TokenCounter, online: list[str]
) -> Estimate:
    rows = tuple(c.row() for c in est.cells.values())
    notes = list(online)
    if counter.client is not None and counter.error is None:
        source = "count_tokens"
        notes.append(
            f"input tokens by count_tokens ({len(counter.counted)} distinct prompts counted, at "
            f"most {counter.sample} per model; the rest extrapolated)"
        )
    else:
        source = "approximate"
        if counter.error is not None:
            notes.append(f"count_tokens failed ({counter.error}); the approximation was used")
        notes.append("input tokens approximated locally (~4 bytes a token; real counts differ)")
    if any(not r.observed for r in rows if r.requests > r.cached):
        notes.append("expected output = the max_tokens bound where no past run was observed")
    if est.judges:
        notes.append(
            "judge inputs approximate the response they quote; every candidate assumed to succeed"
        )
    tiered = {c.model for c in est.cells.values() if c.price and c.price.long_context}
    for model in sorted(tiered):
        notes.append(
            f"{model} bills long prompts at higher prices: the expected cost uses the "
            "standard ones, the maximum the long-prompt ones"
        )
    for model in sorted({r.model for r in rows if r.cost_usd is None}):
        notes.append(f"no price for {model}: cost n/a (add it under `pricing:`)")
    if est.packer.too_large:
        notes.append(
            f"{est.packer.too_large} requests exceed batch.max_bytes and would fail unsent"
        )
    return Estimate(
        name=spec.name,
        endpoint=endpoint,
        requests=est.requests,
        bytes=est.bytes,
        cached=est.cached,
        batches=est.packer.batches,
        too_large=est.packer.too_large,
        judge_requests=est.judge_requests,
        judge_cached=est.judge_cached,
        judge_batches=est.judge_packer.batches,
        token_source=source,
        rows=rows,
        notes=tuple(notes),
    )
