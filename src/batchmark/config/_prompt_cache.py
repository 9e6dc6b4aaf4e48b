"""The prompt-cache arithmetic the emulator and the estimate share.

A request's **breakpoints** are its units carrying ``cache_control``
(``_tokens.prefix_units``: explicit markers, and the one a top-level ``cache_control``
puts on the last cacheable block). The prefix up to a unit boundary is keyed by a hash of
the model and the units' content, markers left out (the same content marked elsewhere
matches). A breakpoint whose prefix is shorter than the model's minimum is not cached:
no error, both counters 0 [docs prompt-caching].

A request **reads** the longest prefix already cached that ends at one of its breakpoints
or at one of the ``LOOKBACK_BLOCKS`` unit boundaries before one ("the system
automatically checks for cache hits at all previous content block boundaries (up to
about 20 blocks before the explicit breakpoint)", docs prompt-caching); this is how
automatic caching reads a conversation that grew by a turn. Only breakpoints **write**:
every breakpoint past the read writes the segment since the previous one, at its
marker's TTL (``5m`` unless ``ttl: 1h``). ``input_tokens`` are the tokens after the last
breakpoint; read + written + input is the whole prompt.

Who keeps the entries differs: the emulator's cache expires them on its clock
(``emulator._cache``); the estimate keeps them all (optimistic: the service's hits in
batches are best-effort).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from batchmark.config._tokens import PrefixUnit, prefix_units

__all__ = [
    "LOOKBACK_BLOCKS",
    "Breakpoint",
    "CacheOutcome",
    "CachePrefixes",
    "CacheSplit",
    "cache_prefixes",
]

LOOKBACK_BLOCKS = 20
"""Unit boundaries before a breakpoint where a read may also match (docs: "about 20")."""


class Breakpoint(NamedTuple):
    """A breakpoint long enough to be cached."""

    tokens: int
    """Prefix tokens through the marked unit."""
    key: bytes
    ttl: str
    """``5m`` or ``1h``."""


class CacheSplit(NamedTuple):
    """The input side of ``usage``: uncached, written (by TTL) and read tokens."""

    input_tokens: int
    creation_5m: int = 0
    creation_1h: int = 0
    read: int = 0


class CacheOutcome(NamedTuple):
    """What one request does to a cache: its split, the entry it read, what it writes."""

    split: CacheSplit
    hit: bytes | None
    """The key of the entry read (its TTL is refreshed), or None."""
    written: tuple[Breakpoint, ...]


@dataclass(frozen=True, slots=True)
class CachePrefixes:
    """A request's prompt seen by a cache: its size, breakpoints and readable prefixes."""

    total: int
    """Input tokens of the whole prompt."""
    breakpoints: tuple[Breakpoint, ...]
    """In prefix order; empty when nothing can be cached."""
    boundaries: tuple[tuple[int, bytes], ...]
    """``(tokens, key)`` of every prefix a read may match, longest first."""

    def apply(self, cached: Callable[[bytes], bool]) -> CacheOutcome:
        """The outcome against a cache holding the keys for which ``cached`` is true."""
        if not self.breakpoints:
            return CacheOutcome(CacheSplit(self.total), None, ())
        read, hit = 0, None
        for tokens, key in self.boundaries:
            if cached(key):
                read, hit = tokens, key
                break
        created = {"5m": 0, "1h": 0}
        written = []
        previous = read
        for point in self.breakpoints:
            if point.tokens <= read:
                continue
            created[point.ttl] += point.tokens - previous
            previous = point.tokens
            written.append(point)
        last = self.breakpoints[-1].tokens
        split = CacheSplit(self.total - last, created["5m"], created["1h"], read)
        return CacheOutcome(split, hit, tuple(written))


def _ttl(marker: dict[str, Any]) -> str:
    return "1h" if marker.get("ttl") == "1h" else "5m"


def cache_prefixes(
    params: dict[str, Any], minimum: float, units: Sequence[PrefixUnit] | None = None
) -> CachePrefixes:
    """The request as a prompt cache sees it; ``minimum`` is the model's shortest
    cacheable prefix in tokens. ``units`` (``prefix_units(params)``) when already at hand.
    """
    units = prefix_units(params) if units is None else units
    ends = list(itertools.accumulate(u.tokens for u in units))
    total = ends[-1] if ends else 0
    marked = [i for i, u in enumerate(units) if u.cache_control is not None and ends[i] >= minimum]
    if not marked:
        return CachePrefixes(total, (), ())
    window: set[int] = set()
    for j in marked:
        window.update(range(max(0, j - LOOKBACK_BLOCKS), j + 1))
    hasher = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
    keys: dict[int, bytes] = {}
    for i, unit in enumerate(units[: marked[-1] + 1]):
        hasher.update(orjson.dumps(unit.content, option=orjson.OPT_SORT_KEYS))
        if i in window:
            keys[i] = hasher.copy().digest()
    points = tuple(
        Breakpoint(ends[j], keys[j], _ttl(units[j].cache_control))  # type: ignore[arg-type]
        for j in marked
    )
    boundaries = tuple((ends[i], keys[i]) for i in sorted(window, reverse=True))
    return CachePrefixes(total, points, boundaries)
