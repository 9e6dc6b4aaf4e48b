"""A local emulator of the Messages and Message Batches API, for tests and dry runs.

    from batchmark.emulator import Emulator

    emu = Emulator(responder="echo", processing_seconds=2.0)
    with emu.serve() as base_url:
        client = anthropic.Anthropic(base_url=base_url, api_key="test")
        ...

See docs/emulator.md for responders, faults and the token approximation.
"""

from batchmark.emulator._batches import SubmittedBatch
from batchmark.emulator._clock import Clock
from batchmark.emulator._creates import CreateCall, CreateLog
from batchmark.emulator._emulator import Emulator, serve
from batchmark.emulator._faults import ENDPOINTS, Faults, parse_faults
from batchmark.emulator._responders import Reply, Responder, parse_responder

__all__ = [
    "Clock",
    "CreateCall",
    "CreateLog",
    "Emulator",
    "ENDPOINTS",
    "Faults",
    "parse_faults",
    "parse_responder",
    "Reply",
    "Responder",
    "serve",
    "SubmittedBatch",
]
