"""The registry: scorer type names -> factories, built-ins and plugins alike.

A factory is one of:

- a ``ScorerOptions`` (or any pydantic model) class: its fields are the options, and it
  is validated with the config's folder in the context (``base_dir``);
- any other class with a ``score`` method: called with the options as keyword arguments;
- a function ``(ctx, **options) -> Score | bool | float | dict``: wrapped in a
  ``FunctionScorer``.

Built-ins register through ``register_scorer`` like everyone else. Third-party scorers
come in through the entry point group ``batchmark.scorers`` (name = the scorer's type
name, value = a factory), loaded only when a config names a type that is not registered.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from batchmark._hooks import check_hook
from batchmark.scorers._base import Scorer
from batchmark.scorers._custom import FunctionScorer, load_object

__all__ = [
    "ENTRY_POINT_GROUP",
    "OptionError",
    "instantiate",
    "known_names",
    "load_reference",
    "lookup",
    "register_scorer",
    "registered_scorers",
]

ENTRY_POINT_GROUP = "batchmark.scorers"
"""The entry point group third-party packages register scorers in."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = frozenset({"type", "name", "python"})
_REGISTRY: dict[str, Any] = {}
_builtins_loaded = False

F = TypeVar("F")


class OptionError(Exception):
    """A scorer's options were refused by a factory that is not a pydantic model."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@overload
def register_scorer(name: str, factory: F) -> F: ...
@overload
def register_scorer(name: str, factory: None = None) -> Callable[[F], F]: ...
def register_scorer(name: str, factory: Any = None) -> Any:
    """Register a scorer factory under a type name; usable as a decorator.

    ``factory`` is a scorer class (a ``ScorerOptions`` subclass, another pydantic model,
    any class with ``score``) or a scoring function ``(ctx, **options)``. Registering a
    different factory under a taken name raises ``ValueError``.
    """
    if factory is None:
        return lambda f: register_scorer(name, f)
    if not _NAME.match(name) or name in _RESERVED:
        raise ValueError(f"invalid scorer type name {name!r}")
    if not callable(factory):
        raise TypeError(f"a scorer factory must be a class or a function, got {factory!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not factory:
        raise ValueError(f"a scorer named {name!r} is already registered: {existing!r}")
    _REGISTRY[name] = factory
    return factory


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from batchmark.scorers._json import JsonSchema
    from batchmark.scorers._judge import JudgeScorer
    from batchmark.scorers._match import Choice, ExactMatch, Includes, Numeric, RegexMatch
    from batchmark.scorers._panel import JudgePanel
    from batchmark.scorers._tool_call import ToolCall

    for cls in (ExactMatch, Includes, RegexMatch, Numeric, Choice, JsonSchema, JudgeScorer):
        register_scorer(cls.type_name, cls)
    register_scorer(ToolCall.type_name, ToolCall)
    register_scorer(JudgePanel.type_name, JudgePanel)


def registered_scorers() -> dict[str, Any]:
    """The registered factories by type name (built-ins and plugins loaded so far)."""
    _ensure_builtins()
    return dict(_REGISTRY)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def known_names() -> list[str]:
    """Every type name a config may use: registered ones and not-yet-loaded plugins."""
    _ensure_builtins()
    return sorted(set(_REGISTRY) | {ep.name for ep in _entry_points()})


def lookup(name: str) -> Any | None:
    """The factory for a type name, loading a plugin's entry point on first use.

    Returns ``None`` for an unknown name; raises ``ValueError`` if a plugin fails to load.
    """
    _ensure_builtins()
    factory = _REGISTRY.get(name)
    if factory is not None:
        return factory
    for ep in _entry_points():
        if ep.name == name:
            try:
                factory = ep.load()
            except Exception as err:
                raise ValueError(
                    f"entry point {ep.value!r} ({ENTRY_POINT_GROUP}) failed to load: "
                    f"{type(err).__name__}: {err}"
                ) from None
            return register_scorer(name, factory)
    return None


def load_reference(reference: str, base_dir: Path, root: Path | None = None) -> Any:
    """The object a ``python:`` item names; raises ``ValueError``.

    ``package.module:function`` is imported; ``path/to/file.py:function`` is loaded from
    that file, relative to the config's folder. With ``root`` (the config's repository),
    code from outside it is refused before anything is imported: ``ExternalCode``, a
    ``ValueError`` (see ``batchmark._hooks``).
    """
    module_part, sep, attribute = reference.partition(":")
    if root is not None and sep and module_part and attribute:
        check_hook(module_part, attribute, base_dir, root)
    if not module_part.endswith(".py"):
        return load_object(reference)
    if not sep or not attribute:
        raise ValueError(f"expected `path/to/file.py:function`, got {reference!r}")
    path = (base_dir / module_part).resolve()
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    module_name = "batchmark_scorer_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - .py files always load
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise ValueError(f"loading {path} failed: {type(err).__name__}: {err}") from None
    return load_object(f"{module_name}:{attribute}")


def instantiate(
    factory: Any,
    type_name: str,
    options: Mapping[str, Any],
    name: str | None,
    base_dir: Path,
    reference: str | None = None,
) -> Scorer:
    """Build a scorer from a factory and its options.

    Raises pydantic's ``ValidationError`` (pydantic factories) or ``OptionError``.
    """
    if isinstance(factory, type) and issubclass(factory, BaseModel):
        data = dict(options)
        if "name" in factory.model_fields:
            data["name"] = name or type_name
        scorer: Any = factory.model_validate(data, context={"base_dir": base_dir})
    elif isinstance(factory, type):
        kwargs = dict(options)
        if name is not None:
            kwargs["name"] = name
        try:
            scorer = factory(**kwargs)
        except (TypeError, ValueError) as err:
            raise OptionError(f"{factory.__name__}: {err}") from None
    elif callable(factory):
        try:
            scorer = FunctionScorer(name or type_name, factory, options, reference)
        except TypeError as err:
            raise OptionError(str(err)) from None
    else:
        raise OptionError(f"{factory!r} is neither a scorer class nor a function")
    if not callable(getattr(scorer, "score", None)):
        raise OptionError(f"{type(scorer).__name__} has no score(ctx) method")
    if not isinstance(getattr(scorer, "name", None), str) or not scorer.name:
        try:
            scorer.name = name or type_name
        except (AttributeError, TypeError):
            raise OptionError(f"{type(scorer).__name__} needs a `name` attribute") from None
    return scorer
