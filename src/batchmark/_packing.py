"""How requests are packed into batches: the one rule the runner submits by and that
``validate`` and ``estimate`` count by.

Requests go in order; a batch takes requests while it holds fewer than
``max_requests`` and its create body (``{"requests":[...]}`` of compact JSON entries
``{"custom_id":...,"params":...}``, each followed by a comma) stays within ``max_bytes``.
A request too large for any batch is reported, never sent.
"""

from __future__ import annotations

__all__ = [
    "API_MAX_BYTES",
    "API_MAX_REQUESTS",
    "BODY_OVERHEAD",
    "ENTRY_OVERHEAD",
    "BatchPacker",
]

API_MAX_REQUESTS = 100_000
API_MAX_BYTES = 256 * 1024 * 1024
BODY_OVERHEAD = len(b'{"requests":[]}')
ENTRY_OVERHEAD = len(b'{"custom_id":"","params":}')


class BatchPacker:
    """Greedy, in-order packing of requests into batches within the API's limits."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = min(max_requests, API_MAX_REQUESTS)
        self.max_bytes = min(max_bytes, API_MAX_BYTES)
        self.batches = 0
        self.too_large = 0
        self._n = 0
        self._size = 0

    def add(self, entry_bytes: int) -> bool | None:
        """Place one request whose ``{"custom_id", "params"}`` entry is ``entry_bytes``.

        Returns ``None`` when it fits in no batch, ``True`` when it opens a new batch and
        ``False`` when it joins the current one.
        """
        item = entry_bytes + 1  # its comma
        if item + BODY_OVERHEAD > self.max_bytes:
            self.too_large += 1
            return None
        opens = (
            self.batches == 0 or self._n >= self.max_requests or self._size + item > self.max_bytes
        )
        if opens:
            self.batches += 1
            self._n, self._size = 0, BODY_OVERHEAD
        self._n += 1
        self._size += item
        return opens
