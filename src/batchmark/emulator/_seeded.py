"""Seeded, reproducible ids and random draws.

Everything the emulator "randomises" (ids, fault outcomes, finish times, result order) is
a hash of the emulator's seed and stable inputs, so a run is reproducible and the same
request in a new batch gets a fresh draw.
"""

from __future__ import annotations

import hashlib
import itertools

__all__ = ["Seeded"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 22  # like the real ids: "msg_01" + 22 base62 characters [unverified length]


def _digest(parts: tuple[object, ...]) -> bytes:
    data = "\x1f".join(str(p) for p in parts).encode()
    return hashlib.blake2b(data, digest_size=16).digest()


def _base62(raw: bytes, length: int = _ID_LENGTH) -> str:
    n = int.from_bytes(raw, "big")
    chars = []
    for _ in range(length):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(chars)


class Seeded:
    """Ids and uniform draws derived from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._request_counter = itertools.count()

    def fraction(self, *parts: object) -> float:
        """A uniform draw in [0, 1) that depends only on the seed and ``parts``."""
        raw = _digest((self.seed, *parts))
        return int.from_bytes(raw[:8], "big") / 2**64

    def ident(self, prefix: str, *parts: object) -> str:
        """An id like ``msg_01…`` that depends only on the seed and ``parts``."""
        return f"{prefix}_01{_base62(_digest((self.seed, prefix, *parts)))}"

    def request_id(self) -> str:
        """A fresh ``req_…`` id (a seeded sequence: unique within this emulator)."""
        return self.ident("req", next(self._request_counter))
