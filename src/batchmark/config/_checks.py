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
from typing import Any, NoReturn

import jinja2
import yaml
from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from batchmark._hooks import ExternalCode, check_hook
from batchmark._templates import parse_template

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
    root: Path | None = None
    """The config's repository: ``python:`` hooks must be code inside it (``None``: any
    code is allowed, ``--allow-external-code``)."""
    unsafe: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)
    """Hooks refused for naming code from outside ``root``: (field location, message)."""
    data: dict[str, Any] = field(default_factory=dict)
    """Parsed data files (``tools_file``, ``output_schema_file``) by absolute path."""


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
    ``python:FILE.py:FUNC``, ``PATH.yaml``), checking that the files exist.

    A ``python:`` spec (also one in a ``PATH.yaml`` model map) that names code from
    outside ``ctx.root`` is recorded in ``ctx.unsafe``, not loaded: the emulator imports
    responders only when a run starts.
    """
    ctx = context_of(info)
    if ctx is None:
        return value
    loc = ("emulator", "responder", *((field,) if field else ()))
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
            value = f"python:{path}:{func}"
        problem = _external(ctx, value, ctx.base_dir)
        if problem:
            ctx.unsafe.append((loc, problem))
        return value
    if value.endswith((".yaml", ".yml")) and resolve_path(ctx, value).is_file():
        path = resolve_path(ctx, value)
        for problem in _external_in_map(ctx, path, set()):
            ctx.unsafe.append((loc, f"`{value}` ({path}) names {problem}"))
        return str(path)
    return value


def _external(ctx: LoadContext, spec: str, base_dir: Path) -> str | None:
    """Why a ``python:`` responder spec is code from outside the repository, else None."""
    if ctx.root is None:
        return None
    module, colon, func = spec.partition(":")[2].rpartition(":")
    if not colon or not module or not func:
        return None  # malformed: the emulator reports it
    try:
        check_hook(module, func, base_dir, ctx.root)
    except ExternalCode as err:
        return f"`{spec}`: {err}"
    return None


def _external_in_map(ctx: LoadContext, path: Path, seen: set[Path]) -> list[str]:
    """The ``python:`` specs of a ``PATH.yaml`` responder map (and the maps it names)
    that are code from outside the repository; a map that cannot be read is left to
    the emulator to report."""
    if ctx.root is None or path in seen:
        return []
    seen.add(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    problems = []
    for spec in data.values():
        if not isinstance(spec, str):
            continue
        if spec.startswith("python:"):
            problem = _external(ctx, spec, path.parent)
            if problem:
                problems.append(problem)
        elif spec.endswith((".yaml", ".yml")):
            nested = (path.parent / Path(spec).expanduser()).resolve()
            if nested.is_file():
                problems += _external_in_map(ctx, nested, seen)
    return problems
