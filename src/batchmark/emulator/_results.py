"""The results file of an ended batch, generated lazily line by line.

Lines are compact JSON, ``\\n``-terminated, no blank lines, in a seeded shuffled order.
Only the settled outcome kinds (one byte per request) are kept in memory; each line's
message is produced by the responder when the line is written.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import orjson

from batchmark.config._models import Catalog
from batchmark.config._tokens import request_input_tokens
from batchmark.emulator._batches import CANCELED, ERRORED, EXPIRED, Batch
from batchmark.emulator._cache import CacheUsage
from batchmark.emulator._http import error_body
from batchmark.emulator._messages import build_message
from batchmark.emulator._responders import Responder, ResponderError
from batchmark.emulator._seeded import Seeded

__all__ = ["chunked", "result_lines"]

CHUNK_BYTES = 64 * 1024


def result_lines(
    batch: Batch, seeded: Seeded, responder: Responder, catalog: Catalog | None = None
) -> Iterator[bytes]:
    """One JSONL line per request of a settled batch, in a seeded shuffled order
    (``catalog``: the emulator's model catalog)."""
    order = list(range(len(batch.requests)))
    random.Random(f"{seeded.seed}:{seeded.plain_id(batch.id)}").shuffle(order)
    for index in order:
        yield orjson.dumps(_line(batch, seeded, responder, index, catalog)) + b"\n"


def _line(
    batch: Batch, seeded: Seeded, responder: Responder, index: int, catalog: Catalog | None
) -> dict[str, Any]:
    assert batch.outcomes is not None
    request = batch.requests[index]
    custom_id = request["custom_id"]
    kind = batch.outcomes.kinds[index]
    if kind == CANCELED:
        return {"custom_id": custom_id, "result": {"type": "canceled"}}
    if kind == EXPIRED:
        return {"custom_id": custom_id, "result": {"type": "expired"}}
    if kind == ERRORED:
        error_type, message = batch.outcomes.errors[index]
        return _errored(seeded, batch.id, custom_id, error_type, message)
    params = request["params"]
    cache = batch.outcomes.cache.get(index)
    if cache is None:
        cache = CacheUsage(input_tokens=request_input_tokens(params))
    tool_ids = (seeded.ident("toolu", batch.id, custom_id, n) for n in itertools.count())
    try:
        message = build_message(
            params,
            responder,
            message_id=seeded.ident("msg", batch.id, custom_id),
            tool_id=tool_ids.__next__,
            cache=cache,
            service_tier="batch",
            catalog=catalog,
        )
    except ResponderError as err:
        return _errored(seeded, batch.id, custom_id, "api_error", str(err))
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}


def _errored(
    seeded: Seeded, batch_id: str, custom_id: str, error_type: str, message: str
) -> dict[str, Any]:
    request_id = seeded.ident("req", batch_id, custom_id)
    return {
        "custom_id": custom_id,
        "result": {"type": "errored", "error": error_body(error_type, message, request_id)},
    }


def chunked(lines: Iterator[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Lines joined into chunks of about ``size`` bytes (fewer, larger writes)."""
    buffer: list[bytes] = []
    filled = 0
    for line in lines:
        buffer.append(line)
        filled += len(line)
        if filled >= size:
            yield b"".join(buffer)
            buffer, filled = [], 0
    if buffer:
        yield b"".join(buffer)
