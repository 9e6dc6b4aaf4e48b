"""Lazy public facades (PEP 562) for ``batchmark`` and its packages.

Each package ``__init__`` names its public names and the private module each lives in;
a name is imported on first use and then kept, so ``import batchmark`` (which the
command does before it installs its signal handlers) and ``import batchmark.ci`` stay
cheap: anthropic, pandas and the rest load only when something needs them.

Usage, in a package ``__init__``::

    __all__ = ["CiResult", "run_ci"]
    __getattr__, __dir__ = lazy_exports(__name__, globals(), __all__, {
        "batchmark.ci._ci": ("CiResult", "run_ci"),
    })
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    public: list[str],
    origin: Mapping[str, tuple[str, ...]],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``__all__`` is ``public``,
    exporting ``origin``'s names (module -> names). The two must name the same things:
    a name exported but not found, or found but not exported, fails the import."""
    module_of = {name: module for module, names in origin.items() for name in names}
    if set(module_of) != set(public):
        raise ImportError(
            f"{package}: __all__ and the lazy exports differ: "
            f"{sorted(set(module_of) ^ set(public))}"
        )

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # resolved once
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
