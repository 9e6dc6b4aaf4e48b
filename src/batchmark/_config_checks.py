"""Checks the config models run on single fields: files, templates, responder specs.

Pydantic validators in ``_config`` call these. What they need beyond the data (the
config file's folder, the API version, the template texts read so far) comes from the
``LoadContext`` that ``load_config`` passes as the validation context; without one
(a model built in Python) paths are left as given and nothing is read from disk.

Errors are raised with ``fail``: a pydantic error of type ``batchmark`` carrying our own
message, an optional sub-field and a hint, which ``_config_load`` formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import jinja2
from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from batchmark._prompts import parse_template

__all__ = [
    "LoadContext",
    "check_syntax",
    "context_of",
    "existing_file",
    "fail",
    "read_template",
    "resolve_path",
    "responder_spec",
]


@dataclass
class LoadContext:
    """What validators need beyond the data: set by ``load_config``."""

    base_dir: Path
    api_version: str | None
    sources: dict[str, str] = field(default_factory=dict)
    """Template file texts by absolute path, filled in as the files are read."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Other files the config reads (scorers' rubric, schema and ``python:`` files) by
    absolute path: part of the config hash, like the templates."""


def context_of(info: ValidationInfo) -> LoadContext | None:
    """The ``LoadContext`` of a validation, or ``None`` outside ``load_config``."""
    context = info.context
    return context.get("batchmark") if isinstance(context, dict) else None


def fail(msg: str, *, field: str = "", hint: str = "") -> NoReturn:
    """Raise a validation error with our own message, optional sub-field and hint."""
    raise PydanticCustomError("batchmark", "{msg}", {"msg": msg, "field": field, "hint": hint})


def resolve_path(ctx: LoadContext, value: str) -> Path:
    """A path from the config, made absolute against the config file's folder."""
    return (ctx.base_dir / Path(value).expanduser()).resolve()


def existing_file(ctx: LoadContext, value: str) -> Path:
    """``resolve_path``, failing unless it names an existing file."""
    path = resolve_path(ctx, value)
    if not path.exists():
        fail(f"file not found: {path}", hint=f"paths are relative to {ctx.base_dir}")
    if not path.is_file():
        fail(f"not a file: {path}")
    return path


def check_syntax(source: str, where: str = "") -> None:
    """Fail on a Jinja2 syntax error (or an unknown filter or test), naming its line."""
    try:
        parse_template(source)
    except jinja2.TemplateSyntaxError as err:
        fail(f"{where}template syntax error at line {err.lineno}: {err.message}")


def read_template(info: ValidationInfo, value: str) -> str:
    """Resolve a template file, check it exists and parses; remember its text."""
    ctx = context_of(info)
    if ctx is None:
        return value
    path = existing_file(ctx, value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        fail(f"cannot read {path}: {err}")
    check_syntax(text, f"{path}: ")
    ctx.sources[str(path)] = text
    return str(path)


def responder_spec(value: str, info: ValidationInfo, field: str = "") -> str:
    """Make the file paths in a responder spec absolute (``scripted:PATH``,
    ``python:FILE.py:FUNC``, ``PATH.yaml``), checking that the files exist."""
    ctx = context_of(info)
    if ctx is None:
        return value
    kind, sep, rest = value.partition(":")
    if kind == "scripted" and sep and rest:
        path = resolve_path(ctx, rest)
        if not path.is_file():
            fail(f"scripted responder file not found: {path}", field=field)
        return f"scripted:{path}"
    if kind == "python" and sep:
        module, colon, func = rest.rpartition(":")
        if colon and module.endswith(".py"):
            path = resolve_path(ctx, module)
            if not path.is_file():
                fail(f"responder module not found: {path}", field=field)
            return f"python:{path}:{func}"
        return value
    if value.endswith((".yaml", ".yml")) and resolve_path(ctx, value).is_file():
        return str(resolve_path(ctx, value))
    return value
