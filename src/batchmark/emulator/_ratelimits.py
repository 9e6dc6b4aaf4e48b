"""Rate limits as the API reports them: ``anthropic-ratelimit-*`` headers on every answer,
and ``retry-after`` (whole seconds) on every 429.

The real API limits each organization by token buckets that refill continuously, and
reports them on every response [docs rate-limits; a captured response shows all twelve]:
``anthropic-ratelimit-requests-{limit,remaining,reset}`` and, for the Messages API,
``-tokens-``, ``-input-tokens-`` and ``-output-tokens-`` likewise. ``reset`` is RFC 3339,
the moment the bucket is full again; token ``remaining`` is rounded to the nearest
thousand. A 429 carries ``retry-after`` in seconds ("earlier retries will fail"). The
Message Batches endpoints have limits of their own, apart from the Messages API's.

The emulator keeps such buckets with nominal limits (per-tier figures differ; these are
[unverified] stand-ins) and reports them, but does not enforce them: its 429s come from
the queue of batch requests (``Emulator.queue_limit``) and from injected faults. An
injected 429 reports its requests bucket empty until its ``retry-after``. Which
endpoints carry which headers beyond the Messages API is [unverified]: the batch
endpoints report requests only.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from batchmark.emulator._clock import rfc3339

__all__ = ["RateLimits", "retry_after_header"]

# Nominal per-minute limits [unverified: tiers differ, and the real figures are per model].
REQUESTS_PER_MINUTE = {"messages": 4_000, "count_tokens": 2_000, "batches": 4_000}
INPUT_TOKENS_PER_MINUTE = 2_000_000
OUTPUT_TOKENS_PER_MINUTE = 400_000

# The endpoint groups of ``_faults.ENDPOINTS`` whose calls count against the batch limits.
_BATCH_GROUPS = frozenset({"create", "list", "retrieve", "cancel", "delete", "results"})
_PREFIX = "anthropic-ratelimit-"


def retry_after_header(seconds: float) -> str:
    """``retry-after`` as the API sends it: whole seconds, rounded up."""
    return str(max(0, math.ceil(seconds)))


@dataclass
class _Bucket:
    """A token bucket of ``limit`` per minute, full at first, refilled continuously."""

    limit: int
    level: float
    at: float

    def refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.limit, self.level + (now - self.at) * self.limit / 60.0)
            self.at = now

    def spend(self, n: float, now: float) -> None:
        self.refill(now)
        self.level = max(0.0, self.level - n)  # reported, not enforced

    def report(self, name: str, now: float, *, rounded: bool = False) -> dict[str, str]:
        self.refill(now)
        remaining = int(self.level)
        if rounded:
            remaining = int(round(self.level, -3))
        full_at = now + (self.limit - self.level) * 60.0 / self.limit
        return {
            f"{_PREFIX}{name}-limit": str(self.limit),
            f"{_PREFIX}{name}-remaining": str(remaining),
            f"{_PREFIX}{name}-reset": rfc3339(full_at),
        }


class RateLimits:
    """The buckets of one emulator: requests per endpoint family, tokens of the Messages
    API. Thread-safe (the server thread and tests share it)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        start = now()
        self._requests = {
            name: _Bucket(limit, limit, start) for name, limit in REQUESTS_PER_MINUTE.items()
        }
        self._input = _Bucket(INPUT_TOKENS_PER_MINUTE, INPUT_TOKENS_PER_MINUTE, start)
        self._output = _Bucket(OUTPUT_TOKENS_PER_MINUTE, OUTPUT_TOKENS_PER_MINUTE, start)

    @staticmethod
    def family(group: str) -> str:
        """The bucket of an endpoint group: ``messages``, ``count_tokens`` or ``batches``."""
        return "batches" if group in _BATCH_GROUPS else group

    def spend_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """A Messages answer used this many tokens."""
        with self._lock:
            now = self._now()
            self._input.spend(input_tokens, now)
            self._output.spend(output_tokens, now)

    def answered(self, group: str) -> dict[str, str]:
        """One call of ``group`` was answered: its request counted; the headers to send."""
        with self._lock:
            now = self._now()
            family = self.family(group)
            bucket = self._requests.get(family)
            if bucket is None:
                return {}
            bucket.spend(1, now)
            headers = bucket.report("requests", now)
            if family == "messages":
                headers |= self._token_headers(now)
            return headers

    def limited(self, group: str, retry_after: float) -> dict[str, str]:
        """An injected 429 of ``group``: its requests bucket reported empty until
        ``retry_after`` seconds from now, and the ``retry-after`` header."""
        with self._lock:
            now = self._now()
            family = self.family(group)
            headers = {"retry-after": retry_after_header(retry_after)}
            bucket = self._requests.get(family)
            if bucket is None:
                return headers
            headers[f"{_PREFIX}requests-limit"] = str(bucket.limit)
            headers[f"{_PREFIX}requests-remaining"] = "0"
            headers[f"{_PREFIX}requests-reset"] = rfc3339(now + max(retry_after, 0.0))
            if family == "messages":
                headers |= self._token_headers(now)
            return headers

    def _token_headers(self, now: float) -> dict[str, str]:
        headers = self._input.report("input-tokens", now, rounded=True)
        headers |= self._output.report("output-tokens", now, rounded=True)
        # ``tokens-*`` is the most restrictive of the two now [docs rate-limits].
        tightest = min(
            (self._input, "input-tokens"),
            (self._output, "output-tokens"),
            key=lambda pair: pair[0].level / pair[0].limit,
        )[1]
        for part in ("limit", "remaining", "reset"):
            headers[f"{_PREFIX}tokens-{part}"] = headers[f"{_PREFIX}{tightest}-{part}"]
        return headers
