"""Fixtures of the ``batchmark ci`` tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def ci_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """``ci_cli(*args) -> (exit code, stdout, stderr)`` through the real entry point."""
    import batchmark.cli._ci  # noqa: F401  (registers `ci` and `baseline` until cli wires it)
    from batchmark.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    yield invoke
