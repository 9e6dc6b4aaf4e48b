"""The numbers of reports and gates: missing ones, read, shown and written as JSON.

A comparison's DataFrames hold NaN where a number is missing (no valid score, an
interval with n < 2); records read back hold ``None``. ``is_missing`` is the one check
for both, and every reader and formatter here goes through it: reports
(``_compare``, ``_render``), gates and baselines (``batchmark.ci``).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "as_number", "fmt_number", "is_missing", "json_ready"]

MISSING = "–"
"""How tables and gate messages show a missing number."""


def is_missing(value: Any) -> bool:
    """None or NaN (numpy's too): a number a comparison lacks."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing."""
    return None if is_missing(value) else float(value)


def fmt_number(value: Any, digits: int = 3, sign: bool = False) -> str:
    """``0.812`` (``+0.012`` with ``sign``), or ``MISSING``. A value that rounds to zero
    shows as ``0.000`` (``+0.000``), never ``-0.000``."""
    if is_missing(value):
        return MISSING
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data: NaN becomes None, numpy scalars Python numbers,
    tuples lists; dicts and lists recursively."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if is_missing(value):
        return None
    if isinstance(value, tuple | list):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value
