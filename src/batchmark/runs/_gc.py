"""``gc_paused()``: no cyclic garbage collection during a hot loop.

Ingesting results allocates millions of small dicts and lists that die young but are
tracked by the cyclic collector, whose generation-0 and generation-2 passes then take
longer than the work itself (about 40% of collection time in ``benchmarks/floor.py``).
These loops create no reference cycles, so reference counting frees everything; the
collector is switched off around them and back on (only if it was on) afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector for the ``with`` block (re-entrant)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
