"""Named instants where the kill -9 tests stop a real run (``BATCHMARK_CRASHPOINT``)."""

from __future__ import annotations

import os
import signal

__all__ = ["crashpoint"]

_CRASH_HITS: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Die here with SIGKILL when ``BATCHMARK_CRASHPOINT`` names this point.

    The kill -9 tests use it to stop a real run at exact instants (between the intent
    and the create, between the create and its record, midway through collecting).
    ``name@N`` dies at the N-th time the point is reached (``after_create@2``: the
    second batch, e.g. the judges' one).
    """
    wanted = os.environ.get("BATCHMARK_CRASHPOINT")
    if not wanted or wanted.split("@")[0] != name:
        return
    _CRASH_HITS[name] = _CRASH_HITS.get(name, 0) + 1
    nth = int(wanted.split("@")[1]) if "@" in wanted else 1
    if _CRASH_HITS[name] >= nth:
        os.kill(os.getpid(), signal.SIGKILL)
