"""``build_scorers``: the ``scorers:`` list of a config -> scorers, every problem at once.

An item is one of::

    - exact_match                                   # a type name, default options
    - exact_match: {target: "{{ label }}"}           # {type name: options}
      name: strict                                  # (a name may sit beside it)
    - {type: exact_match, name: strict, target: "{{ label }}"}
    - {python: my_pkg.scorers:brevity, name: brevity, max_words: 50}
    - {python: evals/scorers.py:brevity}            # a file, relative to the config

Every item is validated (options, templates, patterns, schema and rubric files); then
names must be unique, and combining scorers (a panel) must name scorers of the same list,
of the kinds they take, without a cycle. All problems are raised together as one
``ConfigError`` whose lines start with ``scorers[i].field``. The scorers come back as a
``ScorerSet``: in the order written, sorted once by kind, each with its spec hash.

A ``python:`` item must name code inside the config's repository (``batchmark._hooks``)
unless ``allow_external_code``; the items that do not are refused, before anything is
imported, with one ``UnsafeConfig`` listing them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from batchmark._errors import ConfigError, UnsafeConfig
from batchmark._hooks import ALLOW_HINT, ExternalCode, repository_root
from batchmark.scorers._base import Scorer
from batchmark.scorers._kinds import CombiningScorer, kind_of
from batchmark.scorers._registry import (
    OptionError,
    instantiate,
    known_names,
    load_reference,
    lookup,
    registered_scorers,
)
from batchmark.scorers._set import (
    DependencyCycle,
    ScorerSet,
    scorer_files,
    scorer_spec,
    spec_hash,
)

__all__ = ["build_scorers", "scorers_json_schema"]

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_FORMS = "`- exact_match`, `- exact_match: {options}` or `- {type: exact_match, ...options}`"


class _ItemError(Exception):
    def __init__(self, field: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.field, self.message, self.hint = field, message, hint


class _Unsafe(Exception):
    pass


def build_scorers(
    items: Any, *, base_dir: Path, file: str | None = None, allow_external_code: bool = False
) -> ScorerSet:
    """Build and validate every scorer of a config's ``scorers:`` list.

    ``base_dir`` resolves relative paths (schema files, rubric files, ``python:`` files);
    ``file`` is the config file named in errors. Raises ``ConfigError`` with every problem,
    or first ``UnsafeConfig`` listing the ``python:`` items that name code from outside
    the repository holding ``base_dir`` (unless ``allow_external_code``).
    """
    if items is None:
        return ScorerSet()
    if not isinstance(items, list):
        raise ConfigError(file, f"scorers: expected a list of scorers, got {type(items).__name__}")
    root = None if allow_external_code else repository_root(Path(base_dir))
    errors: list[tuple[int, str]] = []
    unsafe: list[str] = []
    built: list[tuple[int, Scorer]] = []
    hashes: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"scorers[{i}]"
        try:
            scorer, digest = _build_one(item, Path(base_dir), root)
            built.append((i, scorer))
            hashes.setdefault(scorer.name, digest)
        except _Unsafe as err:
            unsafe.append(f"{where}.python: {err}")
        except _ItemError as err:
            errors.append((i, _line(where, err.field, err.message, err.hint)))
        except ValidationError as err:
            errors.extend((i, line) for line in _validation_lines(where, err))
    if unsafe:
        raise UnsafeConfig(file, unsafe, ALLOW_HINT)
    errors += _cross_check(built)
    if errors:
        errors.sort(key=lambda e: e[0])
        raise ConfigError(file, [line for _, line in errors])
    return ScorerSet((scorer for _, scorer in built), hashes)


def _build_one(item: Any, base_dir: Path, root: Path | None) -> tuple[Scorer, str]:
    """The scorer an item builds, and its spec hash."""
    kind, options, name, reference, kind_field = _parse_item(item)
    if name is not None and (not isinstance(name, str) or not _COLUMN.match(name)):
        raise _ItemError("name", f"invalid name {name!r}", "letters, digits, _ and -, up to 64")
    if reference is not None:
        if not isinstance(reference, str):
            raise _ItemError("python", "expected `package.module:function`")
        try:
            factory = load_reference(reference, base_dir, root)
        except ExternalCode as err:
            raise _Unsafe(f"`{reference}`: {err}") from None
        except ValueError as err:
            raise _ItemError("python", str(err)) from None
        default = reference.rpartition(":")[2].rpartition(".")[2]
        type_name = default if _COLUMN.match(default) else "python"
    else:
        try:
            factory = lookup(kind)
        except ValueError as err:
            raise _ItemError(kind_field, f"scorer {kind!r}: {err}") from None
        if factory is None:
            close = difflib.get_close_matches(kind, known_names(), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "known: " + ", ".join(known_names())
            raise _ItemError(kind_field, f"unknown scorer {kind!r}", hint)
        type_name = kind
    try:
        scorer = instantiate(factory, type_name, options, name, base_dir, reference)
    except OptionError as err:
        raise _ItemError(err.field, str(err)) from None
    files = [base_dir / path for path in scorer_files(scorer, reference)]
    return scorer, spec_hash(scorer_spec(scorer, type_name, options, reference), files)


def _parse_item(item: Any) -> tuple[str, dict[str, Any], Any, Any, str]:
    """``(type name, options, name, python reference, field naming the type)``."""
    if isinstance(item, str):
        return item, {}, None, None, ""
    if not isinstance(item, Mapping) or not item:
        raise _ItemError("", f"expected a scorer, got {item!r}", f"write {_FORMS}")
    data = {str(k): v for k, v in item.items()}
    if "python" in data:
        reference = data.pop("python")
        if "type" in data:
            raise _ItemError("type", "give `python` or `type`, not both")
        return "python", data, data.pop("name", None), reference, "python"
    if "type" in data:
        kind = data.pop("type")
        if not isinstance(kind, str):
            raise _ItemError("type", f"expected a scorer type name, got {kind!r}")
        return kind, data, data.pop("name", None), None, "type"
    outer_name = data.pop("name", None)
    if len(data) != 1:
        keys = ", ".join(data) or "only `name`"
        raise _ItemError("", f"one scorer per item, got keys {keys}", f"write {_FORMS}")
    ((kind, options),) = data.items()
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise _ItemError(kind, f"options must be a mapping, got {options!r}")
    options = {str(k): v for k, v in options.items()}
    if outer_name is not None:
        if "name" in options:
            raise _ItemError("name", "`name` is given twice")
        options["name"] = outer_name
    return kind, options, options.pop("name", None), None, ""


def _cross_check(built: list[tuple[int, Scorer]]) -> list[tuple[int, str]]:
    errors = []
    first: dict[str, int] = {}
    for i, scorer in built:
        if scorer.name in first:
            message = f"duplicate scorer name {scorer.name!r} (also scorers[{first[scorer.name]}])"
            hint = "set `name:` to tell them apart"
            errors.append((i, _line(f"scorers[{i}]", "name", message, hint)))
        else:
            first[scorer.name] = i
    errors += _dependency_errors(built)
    return errors


def _dependency_errors(built: list[tuple[int, Scorer]]) -> list[tuple[int, str]]:
    """Combining scorers name scorers of this list, of the kinds they take, acyclically."""
    errors = []
    for i, scorer in built:
        if not isinstance(scorer, CombiningScorer):
            continue
        noun, field = scorer.depends_noun, scorer.depends_field
        takes = [s.name for _, s in built if kind_of(s) in scorer.depends_kinds]
        for j, name in enumerate(scorer.depends_on):
            if name not in takes:
                others = [n for n in takes if n != scorer.name]
                close = difflib.get_close_matches(name, others, n=1)
                hint = (
                    f"did you mean `{close[0]}`?"
                    if close
                    else f"{noun}s here: " + (", ".join(others) or "none")
                )
                message = f"no {noun} named {name!r} in this list"
                where = f"{field}[{j}]" if field else ""
                errors.append((i, _line(f"scorers[{i}]", where, message, hint)))
    if errors:
        return errors
    try:
        ScorerSet(scorer for _, scorer in built)
    except DependencyCycle as err:
        first = {s.name: (i, s) for i, s in reversed(built)}
        i, scorer = first[err.names[0]]
        field = scorer.depends_field if isinstance(scorer, CombiningScorer) else ""
        hint = "a combining scorer cannot depend on itself, even through others"
        errors.append((i, _line(f"scorers[{i}]", field, str(err), hint)))
    return errors


def _line(where: str, field: str, message: str, hint: str = "") -> str:
    line = f"{where}.{field}: {message}" if field else f"{where}: {message}"
    return line + (f"\n    hint: {hint}" if hint else "")


def _validation_lines(where: str, exc: ValidationError) -> list[str]:
    model = exc.title
    known = _option_names(model)
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        ctx = err.get("ctx") or {}
        hint = ""
        if err["type"] == "batchmark":
            message, hint = ctx["msg"], ctx.get("hint", "")
            loc = [*loc, ctx["field"]] if ctx.get("field") else loc
        elif err["type"] == "extra_forbidden":
            message = "unknown option"
            close = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "options: " + ", ".join(known)
        elif err["type"] == "missing":
            message = "required option is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            value = err.get("input")
            if isinstance(value, str | int | float | bool) or value is None:
                text = repr(value)
                message += f" (got {text if len(text) <= 60 else text[:57] + '...'})"
        field = ".".join(p if not p.isdigit() else f"[{p}]" for p in loc).replace(".[", "[")
        lines.append(_line(where, field, message, hint))
    return lines


def _option_names(title: str) -> list[str]:
    for factory in registered_scorers().values():
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            if factory.__name__ == title:
                return [f.alias or n for n, f in factory.model_fields.items()]
    return []


def scorers_json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``scorers:`` list with the registered scorers (for editors)."""
    variants: list[dict[str, Any]] = []
    names = []
    for type_name, factory in sorted(registered_scorers().items()):
        if not (isinstance(factory, type) and issubclass(factory, BaseModel)):
            continue
        names.append(type_name)
        options = factory.model_json_schema(by_alias=True)
        variants.append(
            {
                "type": "object",
                "properties": {type_name: options},
                "required": [type_name],
                "additionalProperties": False,
            }
        )
    python = {
        "type": "object",
        "properties": {"python": {"type": "string"}, "name": {"type": "string"}},
        "required": ["python"],
    }
    typed = {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]}
    item = {"anyOf": [{"type": "string", "enum": names}, *variants, python, typed]}
    return {"type": "array", "items": item}
