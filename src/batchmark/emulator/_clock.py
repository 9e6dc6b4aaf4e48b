"""The emulator's clock: real time plus a virtual offset that tests can advance."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

__all__ = ["Clock", "rfc3339"]


class Clock:
    """Wall-clock seconds plus an offset; ``advance`` ages every batch and cache entry."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees them."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's time forward (never backward) by ``seconds``."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


def rfc3339(ts: float) -> str:
    """A timestamp as RFC 3339 UTC with microseconds and a ``Z``, like the API's."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
