"""Fixtures for the emulator tests: a served emulator and real SDK clients over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import anthropic
import pytest

from batchmark.emulator import Emulator

from .support import sdk_client


@pytest.fixture
def emu() -> Emulator:
    """A fresh emulator (not yet serving): tweak it, then use ``base_url`` / ``client``."""
    return Emulator(seed=7)


@pytest.fixture
def base_url(emu: Emulator) -> Iterator[str]:
    """``emu`` served on a free loopback port."""
    with emu.serve() as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[anthropic.Anthropic]:
    """An SDK client of the served ``emu`` with ``max_retries=2``."""
    with sdk_client(base_url) as c:
        yield c


@pytest.fixture
def served() -> Callable[..., AbstractContextManager[tuple[Emulator, anthropic.Anthropic]]]:
    """Factory: ``with served(**emulator_kwargs) as (emu, client): ...``."""

    @contextmanager
    def make(**kwargs: Any) -> Iterator[tuple[Emulator, anthropic.Anthropic]]:
        emulator = Emulator(**kwargs)
        with emulator.serve() as url, sdk_client(url) as c:
            yield emulator, c

    return make
