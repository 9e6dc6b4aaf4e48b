"""Fixtures for end-to-end runs: a live emulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchmark.emulator import Emulator

from .support import LiveEmulator


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveEmulator]:
    """An emulator on loopback; ANTHROPIC_BASE_URL and a test key point the SDK at it."""
    emu = Emulator(processing_seconds=0.0, seed=7)
    with emu.serve() as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield LiveEmulator(emu, base_url)
