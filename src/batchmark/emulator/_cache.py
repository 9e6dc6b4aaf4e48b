"""A simulated prompt cache: which input tokens were written to or read from the cache.

A breakpoint is a unit (tool, system block, message block) carrying ``cache_control``.
The prefix up to a breakpoint is keyed by a hash of the model and the prefix content.
A request reads the longest prefix still cached (and refreshes its TTL), writes every
later breakpoint's segment (5-minute or 1-hour by that breakpoint's ``ttl``), and its
``input_tokens`` are the tokens after the last cacheable breakpoint. A prefix shorter
than the model's minimum is not cached (both counters 0). Hits are deterministic, not
best-effort as on the real service [unverified: the real hit rate in batches is 30–98%].
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from batchmark.config._models import Catalog, default_catalog
from batchmark.config._tokens import prefix_units

__all__ = ["CacheUsage", "PromptCache", "min_cacheable_tokens"]

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def min_cacheable_tokens(model: str, catalog: Catalog | None = None) -> int:
    """The shortest prefix ``model`` caches: the model catalog's ``cache_min_tokens``."""
    return (catalog or default_catalog()).min_cacheable_tokens(model)


@dataclass(frozen=True)
class CacheUsage:
    """The input side of ``usage`` for one request."""

    input_tokens: int
    creation_5m: int = 0
    creation_1h: int = 0
    read: int = 0


@dataclass(frozen=True)
class _Breakpoint:
    tokens: int  # cumulative tokens up to and including the breakpoint unit
    key: bytes
    ttl: str


def _breakpoints(params: dict[str, Any]) -> tuple[int, list[_Breakpoint]]:
    hasher = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
    total = 0
    points = []
    for unit in prefix_units(params):
        total += unit.tokens
        hasher.update(orjson.dumps(unit.content, option=orjson.OPT_SORT_KEYS))
        if unit.cache_control is not None:
            ttl = "1h" if unit.cache_control.get("ttl") == "1h" else "5m"
            points.append(_Breakpoint(total, hasher.copy().digest(), ttl))
    return total, points


class PromptCache:
    """Cache entries (prefix hash → expiry time) shared by every request of an emulator."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.catalog: Catalog | None = None  # the emulator's model catalog
        self._expiry: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def usage(self, params: dict[str, Any], at: float | None = None) -> CacheUsage:
        """Apply one request to the cache at time ``at`` (default: now); its input usage."""
        total, points = _breakpoints(params)
        minimum = min_cacheable_tokens(str(params.get("model")), self.catalog)
        points = [p for p in points if p.tokens >= minimum]
        if not points:
            return CacheUsage(input_tokens=total)
        now = self._now() if at is None else at
        with self._lock:
            return self._apply(total, points, now)

    def _apply(self, total: int, points: list[_Breakpoint], now: float) -> CacheUsage:
        hit = -1
        for i, point in enumerate(points):
            if self._expiry.get(point.key, -1.0) > now:
                hit = i
        read = points[hit].tokens if hit >= 0 else 0
        created = {"5m": 0, "1h": 0}
        previous = read
        for i, point in enumerate(points):
            if i > hit:
                created[point.ttl] += point.tokens - previous
                previous = point.tokens
            expiry = now + TTL_SECONDS[point.ttl]
            if i >= hit:
                self._expiry[point.key] = max(self._expiry.get(point.key, 0.0), expiry)
        return CacheUsage(
            input_tokens=total - points[-1].tokens,
            creation_5m=created["5m"],
            creation_1h=created["1h"],
            read=read,
        )
