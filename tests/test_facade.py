"""The public facade: everything users need is importable from ``batchmark``."""

from __future__ import annotations

import types

import batchmark


def test_all_public_names_are_exported() -> None:
    public = [
        name
        for name, value in vars(batchmark).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    assert set(batchmark.__all__) == set(public)
    assert batchmark.__all__ == sorted(batchmark.__all__, key=lambda n: (n.casefold(), n))
