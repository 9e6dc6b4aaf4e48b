"""How requests are packed into batches: the one rule the runner submits by and that
``validate`` and ``estimate`` count by.

Requests go in order; a batch takes requests while it holds fewer than its request cap
and its create body (``{"requests":[...]}`` of compact JSON entries
``{"custom_id":...,"params":...}``, each followed by a comma) stays within ``max_bytes``.
A request too large for any batch is reported, never sent.

The request cap of the i-th batch of a pass (``BatchRunner.run``) is ``max_requests``
less ``i mod min(max_in_flight, max_requests)``: with 100,000 and 4 in flight, 100,000,
99,999, 99,998, 99,997, then 100,000 again; without a cap on batches in flight (the
default), ``i mod (max_requests // 2)``. The runner creates up to ``max_in_flight``
consecutive batches at once, and batches created at once must hold pairwise distinct
numbers of requests: a create whose answer is lost is matched to its batch by size (see
``_batches``). Full batches get that from their caps; a smaller one that still collides
waits for the next round, so the packing itself never depends on timing and ``estimate``
counts the batches a run makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "API_MAX_BYTES",
    "API_MAX_REQUESTS",
    "BODY_OVERHEAD",
    "ENTRY_OVERHEAD",
    "BatchPacker",
]

from batchmark.config._limits import (
    API_MAX_BYTES,
    API_MAX_REQUESTS,
    BODY_OVERHEAD,
    ENTRY_OVERHEAD,
)

if TYPE_CHECKING:
    from batchmark.config._schema import BatchConfig


class BatchPacker:
    """Greedy, in-order packing of requests into batches within the API's limits.

    ``first`` is the index within its pass of the first batch this packer opens (the
    runner packs one batch at a time); it and ``max_in_flight`` set the request caps.
    """

    def __init__(
        self,
        max_requests: int,
        max_bytes: int,
        max_in_flight: int | None = 1,
        first: int = 0,
    ) -> None:
        self.max_requests = min(max_requests, API_MAX_REQUESTS)
        self.max_bytes = min(max_bytes, API_MAX_BYTES)
        self.first = first
        # No cap on batches in flight: the batches of a pass are created at once, so full
        # ones get distinct caps over half the range (max_requests down to half of it);
        # a chunk whose size a batch of its round already has goes in the next round.
        period = self.max_requests // 2 if max_in_flight is None else max_in_flight
        self._period = max(1, min(period, self.max_requests))
        self.batches = 0
        self.too_large = 0
        self._cap = self.max_requests
        self._n = 0
        self._size = 0

    @classmethod
    def for_config(cls, batch: BatchConfig, first: int = 0) -> BatchPacker:
        """The packer of a config's ``batch:`` section (its request and byte caps and
        ``max_in_flight``): how ``validate``, ``estimate`` and the runner count batches."""
        return cls(batch.max_requests, batch.max_bytes, batch.max_in_flight, first)

    def cap(self, index: int) -> int:
        """How many requests the ``index``-th batch of a pass may hold."""
        return self.max_requests - index % self._period

    def add(self, entry_bytes: int) -> bool | None:
        """Place one request whose ``{"custom_id", "params"}`` entry is ``entry_bytes``.

        Returns ``None`` when it fits in no batch, ``True`` when it opens a new batch and
        ``False`` when it joins the current one.
        """
        item = entry_bytes + 1  # its comma
        if item + BODY_OVERHEAD > self.max_bytes:
            self.too_large += 1
            return None
        opens = self.batches == 0 or self._n >= self._cap or self._size + item > self.max_bytes
        if opens:
            self._cap = self.cap(self.first + self.batches)
            self.batches += 1
            self._n, self._size = 0, BODY_OVERHEAD
        self._n += 1
        self._size += item
        return opens
