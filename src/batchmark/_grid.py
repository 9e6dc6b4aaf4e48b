"""The grid: an ``EvalSpec`` expanded into Messages API requests, one per cell.

A cell is (row, variant, model, epoch). ``expand(spec)`` streams one ``Request`` per cell,
row by row; each variant is rendered once per row and shared by every model and epoch.

**custom_id** (``make_custom_id``) is a pure function of (variant name, model key, row
id, epoch), never of positions::

    {slug(variant)[:10]}-{slug(model_key)[:12]}-{slug(row_id)[:16]}-{epoch}-{hash16}

where ``slug`` replaces every character outside ``[A-Za-z0-9_]`` with ``_`` and
``hash16`` is the first 16 hex digits of the sha256 of the JSON array
``[variant, model_key, row_id, epoch]``. The readable part is capped at 47 characters,
so the id always matches ``^[a-zA-Z0-9_-]{1,64}$``. Distinct cells differ in the hash,
so truncated or slugged names cannot collide unless 64-bit hashes do. The config refuses
duplicate variant names and model keys, the dataset refuses duplicate row ids, and the
run ledger's primary key refuses any remaining collision.

**cache_key** is the sha256 hex of the canonical JSON (orjson, sorted keys) of
``{"api_version": ..., "epoch": ..., "params": ...}``: the request's whole content.

**Prompt caching** (``prompt_cache: auto``): when a variant's system prompt is static
(reads no row variable) and its tools + system prefix is at least the model's minimum
cacheable length (``MIN_CACHEABLE_TOKENS``, by ``approx_tokens``), ``system`` is sent as
one text block with ``cache_control: {type: ephemeral, ttl: 1h}``; otherwise as a string.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from batchmark._config import EvalSpec, ModelConfig
from batchmark._datasets import iter_rows
from batchmark._errors import ConfigError
from batchmark._prompts import CompiledVariant, compile_prompts
from batchmark._tokens import request_prefix_tokens

__all__ = [
    "CUSTOM_ID_RE",
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "MIN_CACHEABLE_TOKENS",
    "Request",
    "ValidationReport",
    "expand",
    "make_custom_id",
    "min_cacheable_tokens",
    "validate_spec",
]

CUSTOM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-5": 1024,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
}
"""Minimum cacheable prompt prefix in tokens, by model id prefix (batches-api.md §6)."""
DEFAULT_MIN_CACHEABLE_TOKENS = 1024
"""For models not in ``MIN_CACHEABLE_TOKENS``."""

CACHE_TTL = "1h"
_SLUG_RE = re.compile(r"[^A-Za-z0-9_]")
_ENTRY_OVERHEAD = len(b'{"custom_id":"","params":}')
_BODY_OVERHEAD = len(b'{"requests":[]}')


def min_cacheable_tokens(model: str) -> int:
    """The model's minimum cacheable prefix; dated ids match their family by prefix."""
    best = ""
    for family in MIN_CACHEABLE_TOKENS:
        if (model == family or model.startswith(family + "-")) and len(family) > len(best):
            best = family
    return MIN_CACHEABLE_TOKENS[best] if best else DEFAULT_MIN_CACHEABLE_TOKENS


def _slug(text: str, width: int) -> str:
    return _SLUG_RE.sub("_", text[:width])


def _id_hash(variant: str, model_key: str, row_id: str, epoch: int) -> str:
    blob = orjson.dumps([variant, model_key, row_id, epoch])
    return hashlib.sha256(blob).hexdigest()[:16]


def make_custom_id(variant: str, model_key: str, row_id: str, epoch: int) -> str:
    """The custom_id of a cell; see the module docstring for the scheme."""
    readable = f"{_slug(variant, 10)}-{_slug(model_key, 12)}-{_slug(row_id, 16)}-{epoch}"
    return f"{readable[:47]}-{_id_hash(variant, model_key, row_id, epoch)}"


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
    """The complete Messages API params: model, max_tokens, system?, messages, + params."""
    cache_key: str
    """sha256 hex of the canonical JSON of ``{api_version, epoch, params}``."""
    nbytes: int = 0
    """Size of ``{"custom_id": ..., "params": ...}`` as compact JSON, in bytes."""

    def entry(self) -> dict[str, Any]:
        """The batch request entry: ``{"custom_id": ..., "params": ...}``."""
        return {"custom_id": self.custom_id, "params": self.params}


@dataclass(frozen=True, slots=True)
class _Cell:
    """Everything about a (variant, model) pair that is the same for every row."""

    variant: CompiledVariant
    model: ModelConfig
    head: dict[str, Any]
    tail: dict[str, Any]
    system: Any  # the static system value (string or cached blocks), else None
    cached: bool
    id_prefix: str


def _plan(spec: EvalSpec) -> list[_Cell]:
    variants = compile_prompts(spec)
    cells = []
    for variant in variants.values():
        for model in spec.models:
            params = spec.model_params(model)
            head = {"model": model.model, "max_tokens": params.pop("max_tokens")}
            system: Any = None
            cached = False
            if variant.system is not None and variant.system.static:
                system = variant.system.text or None
                if system and spec.prompt_cache == "auto":
                    prefix = {"tools": params.get("tools") or [], "system": system}
                    tokens = sum(t for t, _ in request_prefix_tokens(prefix))
                    if tokens >= min_cacheable_tokens(model.model):
                        cached = True
                        system = [
                            {
                                "type": "text",
                                "text": system,
                                "cache_control": {"type": "ephemeral", "ttl": CACHE_TTL},
                            }
                        ]
            readable = f"{_slug(variant.name, 10)}-{_slug(model.key, 12)}-"
            cells.append(_Cell(variant, model, head, params, system, cached, readable))
    return cells


def expand(spec: EvalSpec) -> Iterator[Request]:
    """Stream every request of the grid: for each row, variant, model and epoch.

    Raises ``RenderError`` (a template failed for a row) and ``DatasetError``.
    """
    cells = _plan(spec)
    api_version = orjson.dumps(spec.api_version)
    key_head = b'{"api_version":' + api_version + b',"epoch":'
    epochs = range(spec.epochs)
    dumps = orjson.dumps
    sort = orjson.OPT_SORT_KEYS
    sha256 = hashlib.sha256
    for row in iter_rows(spec):
        row_slug = _slug(row.id, 16)
        rendered: dict[str, tuple[str | None, list[dict[str, str]]]] = {}
        for cell in cells:
            name = cell.variant.name
            if name not in rendered:
                rendered[name] = cell.variant.render(row)
            system_text, messages = rendered[name]
            params = dict(cell.head)
            system = cell.system if cell.system is not None else system_text
            if system:
                params["system"] = system
            params["messages"] = messages
            params.update(cell.tail)
            pbytes = dumps(params, option=sort)
            model_key = cell.model.key
            for epoch in epochs:
                readable = f"{cell.id_prefix}{row_slug}-{epoch}"[:47]
                digest = sha256(dumps([name, model_key, row.id, epoch])).hexdigest()[:16]
                custom_id = f"{readable}-{digest}"
                key = sha256(key_head + b"%d" % epoch + b',"params":' + pbytes + b"}")
                yield Request(
                    custom_id,
                    name,
                    model_key,
                    cell.model.model,
                    row.id,
                    epoch,
                    params,
                    key.hexdigest(),
                    _ENTRY_OVERHEAD + len(custom_id) + len(pbytes),
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
    """(variant, model key) pairs whose system prompt carries a cache breakpoint."""

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
        }


def validate_spec(spec: EvalSpec) -> ValidationReport:
    """Render every request without sending anything; count and measure them.

    Raises ``RenderError``, ``DatasetError``, or ``ConfigError`` when one request is
    larger than ``batch.max_bytes``.
    """
    cells = _plan(spec)
    limit_requests = spec.batch.max_requests
    limit_bytes = spec.batch.max_bytes
    rows = requests = total = largest = tokens = out_tokens = 0
    largest_id = ""
    batches = 0
    in_batch = batch_bytes = 0
    last_row = None
    for req in expand(spec):
        if req.row_id != last_row:
            rows += 1
            last_row = req.row_id
        requests += 1
        size = req.nbytes
        total += size
        if size > largest:
            largest, largest_id = size, req.custom_id
        if size + _BODY_OVERHEAD > limit_bytes:
            raise ConfigError(
                str(spec.path),
                f"request {req.custom_id} (variant {req.variant!r}, model {req.model_key!r}, "
                f"row {req.row_id!r}) is {size} bytes, over batch.max_bytes ({limit_bytes})",
                "shorten the prompt or raise batch.max_bytes",
            )
        if req.epoch == 0:
            tokens += sum(t for t, _ in request_prefix_tokens(req.params))
            out_tokens += req.params["max_tokens"]
        if in_batch and (in_batch >= limit_requests or batch_bytes + 1 + size > limit_bytes):
            in_batch = 0
        if in_batch == 0:
            batches += 1
            batch_bytes = _BODY_OVERHEAD + size
        else:
            batch_bytes += 1 + size
        in_batch += 1
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
        batches=batches,
        approx_input_tokens=tokens * spec.epochs,
        max_output_tokens=out_tokens * spec.epochs,
        cached=tuple((c.variant.name, c.model.key) for c in cells if c.cached),
    )
