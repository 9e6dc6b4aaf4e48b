"""The public facade: everything users need is importable from ``batchmark``."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types

import pytest

import batchmark


def test_all_public_names_are_exported() -> None:
    for name in batchmark.__all__:  # the facade resolves its names on first use
        getattr(batchmark, name)
    public = [
        name
        for name, value in vars(batchmark).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    assert set(batchmark.__all__) == set(public)
    assert batchmark.__all__ == sorted(batchmark.__all__, key=lambda n: (n.casefold(), n))


def test_importing_the_package_imports_nothing_heavy() -> None:
    """The command installs its signal handlers after importing ``batchmark`` (a Ctrl-C
    during the heavy imports must not print a traceback): that import must be quick."""
    code = "import sys, batchmark._entry; print(sorted(sys.modules))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = set(ast.literal_eval(shown.stdout))
    assert not loaded & {"anthropic", "pandas", "rich", "click", "pydantic", "datasets"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        batchmark.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", ["config", "runs", "reports", "ci"])
def test_each_package_exports_its_public_names(package: str) -> None:
    """``batchmark.reports.mean_ci`` and the like: docs never import a private module."""
    module = importlib.import_module(f"batchmark.{package}")
    for name in module.__all__:
        assert not isinstance(getattr(module, name), types.ModuleType)
    assert module.__all__ == sorted(module.__all__, key=lambda n: (n.casefold(), n))
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
