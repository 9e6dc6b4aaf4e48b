"""What tests can observe of batch creates from the server side: how each arrived on the
wire, and how many were in progress at once.

The emulator serves every call on one event loop, so calls overlap only while one
awaits: reading its body, or ``Emulator.create_latency`` (a real-time pause before the
batch is committed, there to make overlapping creates certain in tests).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["CreateCall", "CreateLog"]


@dataclass(frozen=True)
class CreateCall:
    """One create that made a batch, as the server received it."""

    batch_id: str
    n_requests: int
    body_bytes: int
    """Bytes of body read."""
    content_length: str | None
    """The ``Content-Length`` header as sent (``None`` when absent)."""
    transfer_encoding: str | None
    """The ``Transfer-Encoding`` header (``"chunked"`` for a body of unknown length)."""
    started: float
    """``time.monotonic()`` when the call reached the create handler."""
    ended: float
    """``time.monotonic()`` when the batch was committed."""

    def overlaps(self, other: CreateCall) -> bool:
        """Whether the two calls were in progress at the same time."""
        return self.started < other.ended and other.started < self.ended


class CreateLog:
    """Every create that made a batch, the creates the queue limit refused, and the most
    creates ever in progress at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CreateCall] = []
        self._refused: list[int] = []
        self._now = 0
        self._max = 0

    def begin(self) -> None:
        with self._lock:
            self._now += 1
            self._max = max(self._max, self._now)

    def end(self) -> None:
        with self._lock:
            self._now -= 1

    def record(self, call: CreateCall) -> None:
        with self._lock:
            self._calls.append(call)

    def refuse(self, n_requests: int) -> None:
        with self._lock:
            self._refused.append(n_requests)

    @property
    def refused(self) -> list[int]:
        """The number of requests of each create refused because the queue of batch
        requests was full (``Emulator.queue_limit``), in order."""
        with self._lock:
            return list(self._refused)

    @property
    def calls(self) -> list[CreateCall]:
        """The creates that made a batch, in the order they were committed."""
        with self._lock:
            return list(self._calls)

    @property
    def max_concurrent(self) -> int:
        """The most create calls (failed ones too) ever in progress at once."""
        with self._lock:
            return self._max
