"""Scorer-test fixtures: the scorer registry is restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchmark.scorers import _registry


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    _registry._ensure_builtins()
    saved = dict(_registry._REGISTRY)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)
