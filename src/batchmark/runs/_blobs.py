"""Blob references in stored params: the size they stand for, and the real data spliced in.

Params are stored (in the ledger, in ``Request.params``) with a reference in place of each
image's or PDF's base64 data (``config._media.blob_ref``); the base64 text itself is kept
once per content hash in the ledger's ``blobs`` table. In the params' JSON a reference is
the string ``"\\u0000blob:<sha256>:<base64 length>:<facts>"`` (orjson writes the NUL as
``\\u0000``); nothing else can produce those bytes: a NUL inside a JSON string is always
escaped, and no base64 text holds one.

``sent_size`` is the size of the params as sent, every reference replaced by its data:
what the packer counts against the 256 MB limit and what ``Request.nbytes`` reports.
``splice`` makes those bytes, one request at a time, as a create body is streamed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["MARK", "count_refs", "sent_size", "splice"]

MARK = b'"\\u0000blob:'
_REF_RE = re.compile(rb'"\\u0000blob:([0-9a-f]{64}):(\d+):[0-9a-z]*"')


def count_refs(params: bytes) -> int:
    """How many blob references ``params`` holds (each is spliced when sent)."""
    return len(_REF_RE.findall(params)) if MARK in params else 0


def sent_size(params: bytes) -> int | None:
    """The byte length of ``params`` with every blob in place; None when it holds none."""
    if MARK not in params:
        return None
    size = len(params)
    for match in _REF_RE.finditer(params):
        size += int(match[2]) + 2 - (match.end() - match.start())
    return size


def splice(params: bytes, fetch: Callable[[str, int], bytes]) -> bytes:
    """``params`` with every reference replaced by its base64 text in quotes;
    ``fetch(sha256, base64 length)`` returns the text (and raises when it cannot)."""
    if MARK not in params:
        return params
    parts: list[bytes] = []
    last = 0
    for match in _REF_RE.finditer(params):
        parts += (params[last : match.start()], b'"', fetch(match[1].decode(), int(match[2])), b'"')
        last = match.end()
    parts.append(params[last:])
    return b"".join(parts)
