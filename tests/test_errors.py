"""One exception tree: drawn in ``batchmark._errors``' docstring, and that drawing is true.

Every error a user can fix is a ``BatchmarkError`` defined in that module, with the
exit code the tree gives it and a ``hint`` line when one is given.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import batchmark.cli  # noqa: F401  (every module that could define an error is imported)
from batchmark import _errors
from batchmark._errors import BatchmarkError

_LINE = re.compile(r"^(?P<indent>[ │├└─]*?)(?P<name>[A-Z]\w+)\s+exit (?P<code>\d)\s")


def _drawn() -> dict[str, tuple[str | None, int]]:
    """``{class name: (parent name, exit code)}`` as the docstring draws them."""
    tree: dict[str, tuple[str | None, int]] = {}
    parents: list[str] = []  # the open ancestors, one per depth
    for line in (_errors.__doc__ or "").splitlines():
        match = _LINE.match(line.removeprefix("    "))
        if match is None:
            continue
        depth = len(match["indent"]) // 4
        del parents[depth:]
        tree[match["name"]] = (parents[-1] if parents else None, int(match["code"]))
        parents.append(match["name"])
    return tree


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("batchmark"):
            found += [sub, *_subclasses(sub)]
    return found


ERRORS = [BatchmarkError, *_subclasses(BatchmarkError)]


def test_the_docstring_draws_the_class_tree() -> None:
    actual = {
        cls.__name__: (None if cls is BatchmarkError else cls.__base__.__name__, cls.exit_code)
        for cls in ERRORS
    }
    assert _drawn() == actual


def test_every_error_lives_in_the_errors_module() -> None:
    assert [c.__name__ for c in ERRORS if c.__module__ != "batchmark._errors"] == []
    assert sorted(c.__name__ for c in ERRORS) == sorted(_errors.__all__)


# Classes whose constructor takes more than a message.
_ARGS: dict[str, tuple[Any, ...]] = {
    "ConfigError": ("eval.yaml", "models[0]: unknown field"),
    "UnsafeConfig": ("eval.yaml", ["scorers[0].python: outside the repository"]),
    "RenderError": ("eval.yaml", "plain", "q1", "undefined variable 'x'"),
    "BatchNotFound": ("msgbatch_1",),
}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_has_an_exit_code_and_carries_its_hint(cls: type[BatchmarkError]) -> None:
    assert cls.exit_code in (2, 3, 4)
    assert cls.hint is None  # the documented default: the message says what to do
    args = _ARGS.get(cls.__name__, ("something went wrong",))
    plain = cls(*args)
    assert plain.hint is None and "hint:" not in str(plain)
    err = cls(*args, hint="do this next")
    assert err.hint == "do this next"
    assert str(err) == f"{plain}\n  hint: do this next"


def test_a_list_of_config_problems_ends_with_the_hint() -> None:
    err = _errors.ConfigError("eval.yaml", ["a: bad", "b: worse"], hint="fix both")
    assert str(err) == "eval.yaml: 2 problems:\n  - a: bad\n  - b: worse\n  hint: fix both"
