"""Seeded, reproducible ids and random draws.

Everything the emulator "randomises" (ids, fault outcomes, finish times, result order) is
a hash of the emulator's seed and stable inputs, so a run is reproducible and the same
request in a new batch gets a fresh draw.

Ids are unique per emulator process unless a seed is given on purpose: the real service
never hands out an id twice, and a ledger that outlives a restarted emulator must not meet
its old batch ids again. An unseeded emulator draws with seed 0 (reproducible faults and
order) but salts its ids with a random token.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets

__all__ = ["Seeded"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 22  # like the real ids: "msg_01" + 22 base62 characters [unverified length]


def _digest(parts: tuple[object, ...]) -> bytes:
    data = "\x1f".join(map(str, parts)).encode()
    return hashlib.blake2b(data, digest_size=16).digest()


_PAIRS = [b + a for a in _ALPHABET for b in _ALPHABET]
"""Two base-62 digits per entry, least significant first: ``_PAIRS[r]`` for r < 62**2."""


def _base62(raw: bytes, length: int = _ID_LENGTH) -> str:
    """The ``length`` least significant base-62 digits of ``raw``, least significant
    first (two digits per division: ids are minted for every answer)."""
    n = int.from_bytes(raw, "big")
    chars = []
    for _ in range(length // 2):
        n, r = divmod(n, 3844)
        chars.append(_PAIRS[r])
    if length % 2:
        chars.append(_ALPHABET[n % 62])
    return "".join(chars)


class Seeded:
    """Ids and uniform draws derived from one seed."""

    def __init__(self, seed: int | None) -> None:
        self.seeded = seed is not None
        self.seed = 0 if seed is None else seed
        # Salts ids only: with a seed they are reproducible, without one unique.
        self._salt = "" if self.seeded else secrets.token_hex(8)
        # Salted batch id -> the id a seeded emulator would have minted: draws keyed by a
        # batch id use the latter, so fault outcomes and order stay reproducible.
        self._plain: dict[str, str] = {}
        self._request_counter = itertools.count()

    def fraction(self, *parts: object) -> float:
        """A uniform draw in [0, 1) that depends only on the seed and ``parts``."""
        if self._plain:
            parts = tuple(self._plain.get(p, p) if isinstance(p, str) else p for p in parts)
        raw = _digest((self.seed, *parts))
        return int.from_bytes(raw[:8], "big") / 2**64

    def plain_id(self, batch_id: str) -> str:
        """The id a seeded emulator would have given this batch (itself when seeded)."""
        return self._plain.get(batch_id, batch_id)

    def ident(self, prefix: str, *parts: object) -> str:
        """An id like ``msg_01…``: a function of the seed and ``parts`` when seeded on
        purpose, else also of this process's random salt."""
        if self._salt and prefix != "msgbatch":  # only batch ids need their plain twin
            return f"{prefix}_01{_base62(_digest((self._salt, self.seed, prefix, *parts)))}"
        plain = f"{prefix}_01{_base62(_digest((self.seed, prefix, *parts)))}"
        if not self._salt:
            return plain
        salted = f"{prefix}_01{_base62(_digest((self._salt, self.seed, prefix, *parts)))}"
        self._plain[salted] = plain
        return salted

    def request_id(self) -> str:
        """A fresh ``req_…`` id (a seeded sequence: unique within this emulator)."""
        return self.ident("req", next(self._request_counter))
