"""The emulator package's public facade."""

from __future__ import annotations

import anthropic

import batchmark.emulator
from batchmark.emulator import serve


def test_all_imports_are_exported():
    public = (m for m in vars(batchmark.emulator) if not m.startswith("_"))
    assert batchmark.emulator.__all__ == sorted(public, key=str.casefold)


def test_serve_shorthand_yields_a_loopback_base_url():
    with serve(seed=1) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith("/")
        with anthropic.Anthropic(base_url=base_url, api_key="k") as client:
            assert client.messages.batches.list().data == []
