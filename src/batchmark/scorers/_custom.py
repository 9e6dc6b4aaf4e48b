"""Custom scorers: plain functions and classes, from ``python:`` or the registry.

A scoring function takes the context (and any options from the config as keyword
arguments) and returns a ``Score``, a bool (pass/fail), a number (the value; passed is
left unset), or a dict of ``Score`` fields (``value`` or ``score``, ``passed``,
``explanation``, ``answer``). Like the built-ins, it is not called for an item whose
request got no response: that item fails with ``no response: <status>``. If it raises,
or returns something else, the item is ``invalid`` with the error as explanation (a
bug in one scorer does not stop the scoring of the others).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from batchmark.scorers._base import Score, ScoreContext, no_response

__all__ = ["FunctionScorer", "load_object", "to_score"]


def load_object(reference: str) -> Any:
    """Import ``package.module:attribute`` (dots allowed in the attribute); ``ValueError``."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected `package.module:function`, got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import {module_name!r}: {err}") from None
    except Exception as err:  # the module itself failed while importing
        raise ValueError(f"importing {module_name!r} failed: {type(err).__name__}: {err}") from None
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return obj


def to_score(result: Any) -> Score:
    """A custom scorer's result as a ``Score``; anything unusable is an invalid score."""
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(1.0 if result else 0.0, result)
    if isinstance(result, int | float):
        value = float(result)
        if not math.isfinite(value):
            return Score.of_invalid(f"scorer returned {result!r}")
        return Score(value, None)
    if isinstance(result, Mapping):
        return _from_mapping(result)
    return Score.of_invalid(f"scorer returned {type(result).__name__}, not a score")


def _from_mapping(result: Mapping[str, Any]) -> Score:
    known = {"value", "score", "passed", "explanation", "answer", "invalid"}
    unknown = sorted(set(result) - known)
    if unknown:
        return Score.of_invalid(f"scorer returned unknown keys {unknown}")
    value = result.get("value", result.get("score"))
    passed = result.get("passed")
    if isinstance(value, bool):
        value, passed = float(value), value if passed is None else passed
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
        return Score.of_invalid(f"scorer returned value {value!r}")
    if passed is not None and not isinstance(passed, bool):
        return Score.of_invalid(f"scorer returned passed={passed!r}, not a bool")
    if value is None and passed is not None:
        value = 1.0 if passed else 0.0
    invalid = bool(result.get("invalid", False)) or value is None
    return Score(
        None if invalid else float(value),  # type: ignore[arg-type]
        None if invalid else passed,
        str(result.get("explanation") or ""),
        invalid=invalid,
        answer=result.get("answer"),
    )


class FunctionScorer:
    """A scorer made of a function ``(ctx, **options) -> Score | bool | float | dict``."""

    __slots__ = ("name", "function", "options", "reference")

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        options: Mapping[str, Any] | None = None,
        reference: str | None = None,
    ) -> None:
        self.name = name
        self.function = function
        self.options = dict(options or {})
        self.reference = reference
        """``package.module:function`` when it came from ``python:``."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # builtins without a signature: trust them
            return
        try:
            signature.bind(None, **self.options)
        except TypeError as err:
            raise TypeError(f"{_describe(function)} does not take these options: {err}") from None

    def score(self, ctx: ScoreContext) -> Score:
        """Call the function; no response fails, an exception is an invalid score."""
        if (failed := no_response(ctx)) is not None:
            return failed
        try:
            result = self.function(ctx, **self.options)
        except Exception as err:
            return Score.of_invalid(f"scorer raised {type(err).__name__}: {err}")
        return to_score(result)

    def to_config(self) -> dict[str, Any]:
        """The config item that builds this scorer again."""
        item: dict[str, Any] = {"python": self.reference} if self.reference else {}
        return {**item, "name": self.name, **self.options}

    def __repr__(self) -> str:
        return f"FunctionScorer({self.name!r}, {_describe(self.function)})"


def _describe(function: Any) -> str:
    module = getattr(function, "__module__", None) or "?"
    return f"{module}:{getattr(function, '__qualname__', repr(function))}"
