"""The grid: an ``EvalSpec`` expanded into Messages API requests, one per cell.

A cell is (row, variant, model, epoch). ``expand(spec)`` streams one ``Request`` per cell,
row by row; each variant is rendered once per row and shared by every model and epoch.

**custom_id** and **cache_key** come from ``_keys`` (see its docstring): the custom_id is
a pure function of (variant name, model key, row id, epoch), never of positions; the
cache_key is the sha256 of the request's whole content (API version, epoch, params).

**Prompt caching** (``prompt_cache: auto``): the *static prefix* of a (variant, model)
pair is the longest start of its requests that is the same for every row, in the API's
prefix order: the tools (params are never templated), then a system prompt that reads no
row variable, then the leading messages that read none (few-shot examples). A variable
system prompt ends the prefix at the tools; a missing one lets it run on into the
messages. A variant's tools are static (``_tools.variant_params``); a row's own tools
(``tools_field``) follow them, so the prefix then ends at the static tools. When the
prefix's ``approx_tokens`` reach the model's minimum cacheable length (the model
catalog's ``cache_min_tokens``), one breakpoint ``cache_control: {type: ephemeral, ttl:
1h}`` marks its last unit: the last tool, the system prompt (sent as one
text block) or the last static message (its content sent as one text block). One
breakpoint at the end of the prefix caches all of it. None is added when the unit there
already carries one, or when the request would then carry more than
``MAX_CACHE_BREAKPOINTS`` (tools given in ``params`` may bring their own; a top-level
``cache_control`` in ``params``, automatic caching, counts as one more, on each
request's last block). The breakpoint is part of ``params``, so moving it changes the
cache_key.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batchmark._errors import ConfigError, RenderError
from batchmark._templates import CompiledVariant, compile_prompts
from batchmark.config._models import (
    FALLBACK_CACHE_MIN_TOKENS,
    default_catalog,
    min_cacheable_tokens,
)
from batchmark.config._schema import EvalSpec, ModelConfig
from batchmark.config._tokens import (
    automatic_cache_control,
    prefix_units,
    request_prefix_tokens,
)
from batchmark.runs._blobs import count_refs, sent_size
from batchmark.runs._content import BlobSink, ContentResolver
from batchmark.runs._datasets import iter_rows
from batchmark.runs._keys import (
    CUSTOM_ID_RE,
    cache_keyer,
    custom_id,
    make_custom_id,
    pair_prefix,
    params_bytes,
    row_slug,
)
from batchmark.runs._packing import ENTRY_OVERHEAD, BatchPacker
from batchmark.runs._request_checks import RequestChecks
from batchmark.runs._tools import RowTools, add_row_tools, variant_params

__all__ = [
    "CUSTOM_ID_RE",
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "MAX_CACHE_BREAKPOINTS",
    "Request",
    "ValidationReport",
    "expand",
    "make_custom_id",
    "validate_spec",
]

DEFAULT_MIN_CACHEABLE_TOKENS = FALLBACK_CACHE_MIN_TOKENS
"""For models whose minimum the catalog does not have."""

MAX_CACHE_BREAKPOINTS = default_catalog().api.max_cache_breakpoints
"""Most ``cache_control`` markers one request may carry (the catalog's, batches-api.md §6)."""
CACHE_TTL = "1h"
CACHE_CONTROL = {"type": "ephemeral", "ttl": CACHE_TTL}


@dataclass(frozen=True, slots=True)
class Request:
    """One cell of the grid, rendered: what goes into a batch as ``{custom_id, params}``.

    ``params`` may share its ``messages`` and ``system`` objects with other requests of
    the same row or variant: treat it as read-only.
    """

    custom_id: str
    variant: str
    model_key: str
    model: str
    row_id: str
    epoch: int
    """From 0 to ``epochs - 1``."""
    params: dict[str, Any]
    """The complete Messages API params: model, max_tokens, system?, messages, + params.
    An image's or PDF's base64 data is a blob reference here (``_content``)."""
    cache_key: str
    """sha256 hex of the canonical JSON of ``{api_version, epoch, params}``, blob
    references and all: a reference is the sha256 of the bytes, so the key is as
    deterministic as over the data."""
    nbytes: int = 0
    """Size of ``{"custom_id": ..., "params": ...}`` as compact JSON, in bytes, as sent:
    with the data of every blob reference in ``params`` (``_blobs.sent_size``)."""

    def entry(self) -> dict[str, Any]:
        """The batch request entry: ``{"custom_id": ..., "params": ...}``."""
        return {"custom_id": self.custom_id, "params": self.params}


@dataclass(frozen=True, slots=True)
class _PairPlan:
    """Everything about a (variant, model) pair that is the same for every row."""

    variant: CompiledVariant
    model: ModelConfig
    head: dict[str, Any]
    tail: dict[str, Any]
    """The merged params after ``messages`` (tools carry the breakpoint when it is there)."""
    system: Any
    """The static system value (a string, or blocks with the breakpoint), else None."""
    messages: tuple[dict[str, Any], ...]
    """The leading static messages when the breakpoint is among them (the last one
    carries it), else empty: they replace the start of every row's rendered messages."""
    breakpoint: str | None
    """Where the cache breakpoint is (``tools[1]``, ``system``, ``messages[2]``), or None."""
    id_prefix: str
    """``_keys.pair_prefix`` of the pair: the readable start of its custom_ids."""
    row_tools: RowTools | None = None
    """Reads each row's own tools (a variant's ``tools_field``), else None."""

    @property
    def cached(self) -> bool:
        return self.breakpoint is not None


def _cached_block(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "cache_control": dict(CACHE_CONTROL)}]


def _static_messages(variant: CompiledVariant) -> list[dict[str, Any]]:
    """The variant's leading messages that read no row variable, rendered."""
    messages = []
    for role, part in variant.messages:
        if part.text is None:
            break
        messages.append({"role": role, "content": part.text})
    return messages


def _plan_cache(
    spec: EvalSpec,
    variant: CompiledVariant,
    model: ModelConfig,
    tail: dict[str, Any],
    row_tools: bool = False,
) -> tuple[Any, tuple[dict[str, Any], ...], str | None]:
    """Place the cache breakpoint of a (variant, model) pair: ``(system, messages, where)``.

    ``system`` is the static system value or None; ``messages`` the static messages
    that replace the start of each row's (empty unless the breakpoint is among them);
    ``where`` the breakpoint's place or None. ``tail["tools"]`` is replaced when the
    breakpoint goes on the last tool. With ``row_tools`` (each row adds tools after the
    static ones) the prefix ends at the static tools.
    """
    part = variant.system
    system = (part.text or None) if part is not None and part.static else None
    if spec.prompt_cache != "auto":
        return system, (), None
    tools = list(tail.get("tools") or [])
    prefix: dict[str, Any] = {"tools": tools}
    if not row_tools and (part is None or part.static):  # a varying part ends the prefix
        prefix["system"] = system
        prefix["messages"] = _static_messages(variant)
    units = prefix_units(prefix)
    if not units or units[-1].cache_control is not None:
        return system, (), None
    # A top-level ``cache_control`` in params (automatic caching) marks each request's
    # last block, after this prefix: one more breakpoint [unverified whether the API counts
    # it toward the limit; counted, so a request never risks the 400].
    automatic = automatic_cache_control(tail) is not None
    if sum(1 for u in units if u.cache_control) + automatic >= MAX_CACHE_BREAKPOINTS:
        return system, (), None
    if sum(u.tokens for u in units) < min_cacheable_tokens(model.model, spec.model_catalog()):
        return system, (), None
    messages = prefix.get("messages")
    if messages:
        last = len(messages) - 1
        messages[last] = {
            "role": messages[last]["role"],
            "content": _cached_block(messages[last]["content"]),
        }
        return system, tuple(messages), f"messages[{last}]"
    if system is not None and "system" in prefix:
        return _cached_block(system), (), "system"
    tail["tools"] = [*tools[:-1], {**tools[-1], "cache_control": dict(CACHE_CONTROL)}]
    return system, (), f"tools[{len(tools) - 1}]"


def _plan(spec: EvalSpec) -> list[_PairPlan]:
    variants = compile_prompts(spec)
    configs = {v.name: v for v in spec.prompts}
    pairs = []
    for variant in variants.values():
        config = configs[variant.name]
        checked: dict[bytes, str | None] = {}  # the variant's row tool lists, checked
        for model in spec.models:
            params = variant_params(spec.model_params(model), config)
            head = {"model": model.model, "max_tokens": params.pop("max_tokens")}
            row_tools = None
            if config.tools_field is not None:
                static, choice = params.get("tools"), params.get("tool_choice")
                data_file = str(spec.dataset.path or spec.dataset.hub)  # where the row is
                row_tools = RowTools(config, static, choice, data_file, checked)
            system, messages, where = _plan_cache(
                spec, variant, model, params, row_tools is not None
            )
            prefix = pair_prefix(variant.name, model.key)
            pairs.append(
                _PairPlan(variant, model, head, params, system, messages, where, prefix, row_tools)
            )
    return pairs


def expand(spec: EvalSpec, *, blobs: BlobSink | None = None) -> Iterator[Request]:
    """Stream every request of the grid: for each row, variant, model and epoch.

    Content blocks (images, documents, text blocks) are resolved after rendering
    (``_content``): their base64 data is replaced by a blob reference in ``params``, the
    data goes to ``blobs`` (the run's ledger) once per content, and ``nbytes`` counts the
    request as sent, data in.

    Raises ``RenderError`` (a template or a content block failed for a row) and
    ``DatasetError``.
    """
    pairs = _plan(spec)
    key_of = cache_keyer(spec.api_version)
    epochs = range(spec.epochs)
    content = ContentResolver(spec, blobs)
    for row in iter_rows(spec):
        slug = row_slug(row.id)
        rendered: dict[str, tuple[str | None, list[dict[str, Any]], int]] = {}
        for pair in pairs:
            name = pair.variant.name
            if name not in rendered:
                system_text, messages = pair.variant.render(row)
                messages = content.messages(messages, name, row.id)
                rendered[name] = (system_text, messages, content.refs)
            system_text, messages, refs = rendered[name]
            params = dict(pair.head)
            system = pair.system if pair.system is not None else system_text
            if system:
                params["system"] = system
            if pair.messages:
                messages = [*pair.messages, *messages[len(pair.messages) :]]
            params["messages"] = messages
            params.update(pair.tail)
            if pair.row_tools is not None:  # checked for each pair: static tools differ
                add_row_tools(params, pair.row_tools(row.id, row.data))
            try:
                pbytes = params_bytes(params)
            except TypeError as err:  # orjson: nested past 254 levels, an int past 64 bits
                raise RenderError(
                    spec.dataset.path or spec.dataset.hub,
                    name,
                    row.id,
                    f"the request cannot be written as JSON ({err}): the row's data is "
                    "nested too deeply or holds a number JSON cannot carry",
                    "fix the row's data (its conversation or tools)",
                ) from None
            if count_refs(pbytes) != refs:
                raise RenderError(
                    str(spec.path),
                    name,
                    row.id,
                    "a string of the request reads as a blob reference (a NUL character, "
                    "then 'blob:' and a sha256), which batchmark uses for image and PDF data",
                    "remove the NUL character from the data; give images as image blocks",
                )
            size = sent_size(pbytes) or len(pbytes)
            model_key = pair.model.key
            for epoch in epochs:
                cid = custom_id(pair.id_prefix, slug, name, model_key, row.id, epoch)
                yield Request(
                    cid,
                    name,
                    model_key,
                    pair.model.model,
                    row.id,
                    epoch,
                    params,
                    key_of(pbytes, epoch),
                    ENTRY_OVERHEAD + len(cid) + size,
                )


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What a spec expands to, computed without sending anything."""

    name: str
    rows: int
    variants: int
    models: int
    epochs: int
    requests: int
    total_bytes: int
    """Sum of the requests' JSON sizes (``Request.nbytes``)."""
    largest_request_bytes: int
    largest_request_id: str
    batches: int
    """Batches needed under ``spec.batch`` limits, packing requests greedily in order."""
    approx_input_tokens: int
    """Input tokens of all requests by ``approx_tokens`` (not a real tokenizer)."""
    max_output_tokens: int
    """Sum of ``max_tokens`` over all requests: the most output that can be billed."""
    cached: tuple[tuple[str, str], ...]
    """(variant, model key) pairs whose static prompt prefix carries a cache breakpoint."""
    cache_breakpoints: tuple[tuple[str, str, str], ...] = ()
    """(variant, model key, where) for each cached pair: ``tools[i]``, ``system`` or
    ``messages[i]``, the unit that carries the breakpoint."""
    warnings: tuple[str, ...] = ()
    """What the API accepts but is worth knowing (a deprecated model or thinking mode),
    each with its field path and YAML line."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "variants": self.variants,
            "models": self.models,
            "epochs": self.epochs,
            "requests": self.requests,
            "total_bytes": self.total_bytes,
            "largest_request_bytes": self.largest_request_bytes,
            "largest_request_id": self.largest_request_id,
            "batches": self.batches,
            "approx_input_tokens": self.approx_input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "cached": [list(pair) for pair in self.cached],
            "cache_breakpoints": [list(t) for t in self.cache_breakpoints],
            "warnings": list(self.warnings),
        }


def validate_spec(spec: EvalSpec, *, today: _dt.date | None = None) -> ValidationReport:
    """Render every request without sending anything; count, measure and check them.

    Each request is checked against the API's rules and the model catalog
    (``_request_checks``; ``today`` decides which models are retired). Raises
    ``RenderError``, ``DatasetError``, or ``ConfigError`` when one request is larger than
    ``batch.max_bytes`` or when requests break the API's rules (every problem, each
    once with its count).
    """
    pairs = _plan(spec)
    checks = RequestChecks(spec, today=today)
    packer = BatchPacker.for_config(spec.batch)
    rows = requests = total = largest = tokens = out_tokens = 0
    largest_id = ""
    last_row = None
    for req in expand(spec):
        if req.row_id != last_row:
            rows += 1
            last_row = req.row_id
        requests += 1
        checks.check(req)
        size = req.nbytes
        total += size
        if size > largest:
            largest, largest_id = size, req.custom_id
        if packer.add(size) is None:
            raise ConfigError(
                str(spec.path),
                f"request {req.custom_id} (variant {req.variant!r}, model {req.model_key!r}, "
                f"row {req.row_id!r}) is {size} bytes, over batch.max_bytes "
                f"({spec.batch.max_bytes})",
                "shorten the prompt or raise batch.max_bytes",
            )
        if req.epoch == 0:
            tokens += sum(t for t, _ in request_prefix_tokens(req.params))
            out_tokens += req.params["max_tokens"]
    checks.raise_errors()
    return ValidationReport(
        name=spec.name,
        rows=rows,
        variants=len(spec.prompts),
        models=len(spec.models),
        epochs=spec.epochs,
        requests=requests,
        total_bytes=total,
        largest_request_bytes=largest,
        largest_request_id=largest_id,
        batches=packer.batches,
        approx_input_tokens=tokens * spec.epochs,
        max_output_tokens=out_tokens * spec.epochs,
        cached=tuple((p.variant.name, p.model.key) for p in pairs if p.cached),
        cache_breakpoints=tuple(
            (p.variant.name, p.model.key, p.breakpoint) for p in pairs if p.breakpoint
        ),
        warnings=tuple(checks.warnings()),
    )
