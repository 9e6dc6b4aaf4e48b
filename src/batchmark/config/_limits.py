"""The Message Batches API's limits on one batch (batches-api.md §4), in the units the
packer counts: a batch holds at most ``API_MAX_REQUESTS`` requests and its create body
at most ``API_MAX_BYTES`` bytes; ``BODY_OVERHEAD`` and ``ENTRY_OVERHEAD`` are the bytes
of compact JSON around the entries and around each entry's custom_id and params.
"""

from __future__ import annotations

__all__ = ["API_MAX_BYTES", "API_MAX_REQUESTS", "BODY_OVERHEAD", "ENTRY_OVERHEAD"]

API_MAX_REQUESTS = 100_000
API_MAX_BYTES = 256 * 1024 * 1024
BODY_OVERHEAD = len(b'{"requests":[]}')
ENTRY_OVERHEAD = len(b'{"custom_id":"","params":}')
