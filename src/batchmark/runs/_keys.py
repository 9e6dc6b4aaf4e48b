"""A request's identity: its canonical params bytes, its cache key and its custom_id.

The grid (``_grid.expand``), batched scorers' requests (``_scoring``) and the estimate
(``_estimate``) all take them from here, so a candidate and a judge request with the
same params, epoch and API version share one response-cache entry.

**params bytes** (``params_bytes``): the canonical JSON of a request's Messages API
params: orjson, compact, keys sorted at every level.

**cache_key** (``cache_key``) is the sha256 hex of the canonical JSON of
``{"api_version": ..., "epoch": ..., "params": ...}``: the request's whole content. With
sorted keys that is ``{"api_version":A,"epoch":E,"params":P}`` with ``P`` the params
bytes, so a hot loop that already holds ``P`` hashes it without serializing again
(``cache_keyer``).

**custom_id** (``make_custom_id``) is a pure function of (variant name, model key, row
id, epoch), never of positions::

    {slug(variant)[:10]}-{slug(model_key)[:12]}-{slug(row_id)[:16]}-{epoch}-{hash16}

where ``slug`` replaces every character outside ``[A-Za-z0-9_]`` with ``_`` and
``hash16`` is the first 16 hex digits of the sha256 of the JSON array
``[variant, model_key, row_id, epoch]``. The readable part is capped at 47 characters,
so the id always matches ``^[a-zA-Z0-9_-]{1,64}$``. Distinct cells differ in the hash,
so truncated or slugged names cannot collide unless 64-bit hashes do. The config refuses
duplicate variant names and model keys, the dataset refuses duplicate row ids, and the
run ledger's primary key refuses any remaining collision. A hot loop computes the slugs
once (``pair_prefix`` per (variant, model) pair, ``row_slug`` per row) and passes them to
``custom_id``.

**judge custom_id** (``judge_custom_id``): the id of a batched scorer's request (a judge's
or a plugin's own) about one candidate, a pure function of (candidate custom_id, scorer
name)::

    j-{slug(scorer name)[:16]}-{hash24}

where ``hash24`` is the first 24 hex digits of the sha256 of the JSON array
``[candidate custom_id, scorer name]`` (``json.dumps``, with its spaces). It has two ``-``
where a candidate's id has four, so the two never collide; distinct (candidate, scorer)
pairs differ in a 96-bit hash. Scorer names are unique in a config.

Changing any of these breaks resuming runs and the response caches of earlier versions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

__all__ = [
    "CUSTOM_ID_RE",
    "cache_key",
    "cache_keyer",
    "custom_id",
    "judge_custom_id",
    "make_custom_id",
    "pair_prefix",
    "params_bytes",
    "row_slug",
]

CUSTOM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SLUG_RE = re.compile(r"[^A-Za-z0-9_]")
_sha256 = hashlib.sha256
_dumps = orjson.dumps


def params_bytes(params: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a request's params (orjson, keys sorted at every level)."""
    return _dumps(params, option=orjson.OPT_SORT_KEYS)


def cache_keyer(api_version: str | None) -> Callable[[bytes, int], str]:
    """``cache_key`` for one API version, taking the params already as ``params_bytes``."""
    head = b'{"api_version":' + _dumps(api_version) + b',"epoch":'

    def key(params: bytes, epoch: int) -> str:
        return _sha256(head + b"%d" % epoch + b',"params":' + params + b"}").hexdigest()

    return key


def cache_key(params: Mapping[str, Any], epoch: int, api_version: str | None) -> str:
    """The response-cache key of a request: see the module docstring."""
    return cache_keyer(api_version)(params_bytes(params), epoch)


def _slug(text: str, width: int) -> str:
    return _SLUG_RE.sub("_", text[:width])


def pair_prefix(variant: str, model_key: str) -> str:
    """The readable start of the custom_ids of a (variant, model) pair."""
    return f"{_slug(variant, 10)}-{_slug(model_key, 12)}-"


def row_slug(row_id: str) -> str:
    """The readable part a row adds to its custom_ids."""
    return _slug(row_id, 16)


def custom_id(prefix: str, slug: str, variant: str, model_key: str, row_id: str, epoch: int) -> str:
    """``make_custom_id`` with ``pair_prefix(variant, model_key)`` and ``row_slug(row_id)``
    given, for loops that reuse them."""
    readable = f"{prefix}{slug}-{epoch}"[:47]
    digest = _sha256(_dumps([variant, model_key, row_id, epoch])).hexdigest()[:16]
    return f"{readable}-{digest}"


def make_custom_id(variant: str, model_key: str, row_id: str, epoch: int) -> str:
    """The custom_id of a cell; see the module docstring for the scheme."""
    prefix = pair_prefix(variant, model_key)
    return custom_id(prefix, row_slug(row_id), variant, model_key, row_id, epoch)


def judge_custom_id(candidate_custom_id: str, scorer_name: str) -> str:
    """The custom_id of a batched scorer's request about a candidate (see the module
    docstring): ``j-<scorer slug>-<hash>``, matching ``CUSTOM_ID_RE``."""
    digest = _sha256(json.dumps([candidate_custom_id, scorer_name]).encode()).hexdigest()[:24]
    return f"j-{_SLUG_RE.sub('_', scorer_name)[:16] or '_'}-{digest}"
