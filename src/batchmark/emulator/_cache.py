"""A simulated prompt cache: which input tokens were written to or read from the cache.

The arithmetic is the harness's own (``config._prompt_cache``, shared with the
estimate): breakpoints are the units carrying ``cache_control``, explicit or placed by a
top-level ``cache_control`` (automatic caching) on the last cacheable block; a request
reads the longest cached prefix ending at a breakpoint or up to 20 blocks before one,
writes every later breakpoint's segment (5-minute or 1-hour by its ``ttl``), and its
``input_tokens`` are the tokens after the last breakpoint. A prefix shorter than the
model's minimum is not cached (both counters 0). Entries live on the emulator's clock: a
read refreshes the entry's TTL. Hits are deterministic, not best-effort as on the real
service [unverified: the real hit rate in batches is 30–98%].
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchmark.config._models import Catalog, min_cacheable_tokens
from batchmark.config._prompt_cache import cache_prefixes

__all__ = ["CacheUsage", "PromptCache"]

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True)
class CacheUsage:
    """The input side of ``usage`` for one request."""

    input_tokens: int
    creation_5m: int = 0
    creation_1h: int = 0
    read: int = 0


class PromptCache:
    """Cache entries (prefix hash → expiry time, TTL) shared by every request of an emulator."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.catalog: Catalog | None = None  # the emulator's model catalog
        self._entries: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def usage(self, params: dict[str, Any], at: float | None = None) -> CacheUsage:
        """Apply one request to the cache at time ``at`` (default: now); its input usage."""
        prefixes = cache_prefixes(
            params, min_cacheable_tokens(str(params.get("model")), self.catalog)
        )
        if not prefixes.breakpoints:
            return CacheUsage(input_tokens=prefixes.total)
        now = self._now() if at is None else at
        with self._lock:
            entries = self._entries
            outcome = prefixes.apply(lambda key: entries.get(key, (-1.0, 0.0))[0] > now)
            if outcome.hit is not None:
                expiry, ttl = entries[outcome.hit]
                entries[outcome.hit] = (max(expiry, now + ttl), ttl)
            for point in outcome.written:
                ttl = TTL_SECONDS[point.ttl]
                entries[point.key] = (now + ttl, ttl)
        return CacheUsage(*outcome.split)
