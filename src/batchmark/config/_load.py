"""Loading a config file: read, parse, validate, report every problem at once.

``load`` (exported as ``batchmark.config._schema.load_config``) reads the file, parses the YAML
twice (as data for validation, and as a node tree to find each field's line), runs the
checks that span fields (duplicate keys, duplicate variant names and model keys),
validates the data against ``EvalConfig`` with a ``LoadContext`` that makes paths
absolute and reads template files, and builds the ``scorers:`` list with
``build_scorers`` (relative to the config's folder). Every error becomes one line
``field.path (line N): message`` with an optional hint; all of them, the scorers' too,
go into a single ``ConfigError``. The result is an ``EvalSpec`` carrying the config's
text and hash, with its scorers built.

A config is untrusted input (CI runs configs from pull requests), so reading it is
bounded: a file over ``MAX_CONFIG_BYTES`` is refused unread, and the YAML is composed
with a loader that counts nodes as aliases expand them, refusing a document whose
expanded tree exceeds ``MAX_CONFIG_NODES`` (a "billion laughs" alias bomb is a few
hundred bytes that expand to billions of nodes for whatever walks the data next).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema
from yaml.composer import ComposerError

from batchmark._errors import ConfigError, UnsafeConfig
from batchmark._hooks import ALLOW_HINT, repository_root
from batchmark.config._checks import LoadContext, resolve_path
from batchmark.config._schema import AGAINST_MODEL, EvalConfig, EvalSpec, RunSettings
from batchmark.config._tools import config_tool_problems, request_schema_problems
from batchmark.scorers import ScorerSet, build_scorers
from batchmark.scorers._set import scorer_files

__all__ = ["MAX_CONFIG_BYTES", "MAX_CONFIG_NODES", "ConfigLines", "load", "load_settings"]

MAX_CONFIG_BYTES = 4_000_000
"""Largest config file read (4 MB): real configs are a few kB; this parses in ~1 s."""
MAX_CONFIG_NODES = 100_000
"""Most YAML nodes a config may hold once its aliases are expanded (real configs: a few
hundred). Composing 100,000 nodes takes ~2 s; the alias bomb is refused as it grows."""


def load(
    path: str | os.PathLike[str], *, text: str | None = None, allow_external_code: bool = False
) -> EvalSpec:
    """Read, validate and resolve a YAML eval config (``batchmark.config._schema.load_config``).

    ``text`` replaces the file's content when given. Raises ``ConfigError`` listing
    every problem (field path, YAML line, hint), and before it ``UnsafeConfig`` listing
    every ``python:`` hook that names code from outside the config's repository, unless
    ``allow_external_code``.
    """
    config_path = Path(path).expanduser().resolve()
    file = str(config_path)
    if text is None:
        text = _read(config_path)
    elif len(text) > MAX_CONFIG_BYTES:  # characters; the file check below counts bytes
        raise _too_large(file, len(text.encode("utf-8")))

    raw, root = _parse_yaml(file, text)
    huge = _huge_ints(raw, root)
    if huge:  # nothing past here could serialize them (requests, hashes)
        raise ConfigError(file, huge)
    ctx = LoadContext(
        base_dir=config_path.parent,
        api_version=_api_version_of(raw),
        root=None if allow_external_code else repository_root(config_path.parent),
    )
    errors = _duplicate_names(raw, root)
    try:
        config = EvalConfig.model_validate(raw, context={"batchmark": ctx})
    except ValidationError as err:
        errors = _format_errors(err, root) + errors
        config = None
    else:
        problems = config_tool_problems(config) + request_schema_problems(config)
        errors += [_problem(root, *problem) for problem in problems]
    unsafe = [_problem(root, loc, msg) for loc, msg in ctx.unsafe]
    scorers, scorer_errors, scorer_unsafe = _scorers(raw.get("scorers"), ctx, file, root)
    if unsafe or scorer_unsafe:
        raise UnsafeConfig(file, unsafe + scorer_unsafe, ALLOW_HINT)
    errors = errors + scorer_errors
    if not scorer_errors:
        errors += _ci_errors(raw, [s.name for s in scorers], root)
    if errors or config is None:
        raise ConfigError(file, errors)

    spec = EvalSpec.model_construct(
        **dict(config),
        path=config_path,
        base_dir=ctx.base_dir,
        text=text,
        hash=_spec_hash(text, ctx),
        sources=dict(sorted(ctx.sources.items())),
    )
    spec._scorers = scorers
    spec._allow_external_code = allow_external_code
    return spec


def load_settings(path: str | os.PathLike[str], *, text: str | None = None) -> RunSettings:
    """The ``RunSettings`` of a config (``text``: a run's snapshot of it), reading no file
    but the config: its dataset, templates and hooks need not exist. Raises
    ``ConfigError`` for YAML, or settings, that do not validate."""
    config_path = Path(path).expanduser().resolve()
    file = str(config_path)
    if text is None:
        text = _read(config_path)
    elif len(text) > MAX_CONFIG_BYTES:
        raise _too_large(file, len(text.encode("utf-8")))
    raw, root = _parse_yaml(file, text)
    try:
        return RunSettings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(file, _format_errors(err, root)) from None


class ConfigLines:
    """Field paths and YAML lines in a loaded config, for problems found after loading
    (``validate`` checking the rendered requests): ``entry(loc, message, hint)`` is one
    line of a ``ConfigError`` as ``load`` writes them; ``raw`` the parsed YAML."""

    def __init__(self, file: str, text: str) -> None:
        self.raw, self._root = _parse_yaml(file, text)

    def entry(self, loc: tuple[Any, ...], message: str, hint: str = "") -> str:
        """``field.path (line N): message`` and the hint on the next line (a scorer's
        options may sit under its kind's key: ``- judge: {model: ...}``)."""
        options_at = 2 if loc[:1] == ("scorers",) else -1
        entry = f"{_loc_str(loc)}{_line_of(self._root, loc, options_at=options_at)}: {message}"
        return entry + (f"\n    hint: {hint}" if hint else "")


def _read(config_path: Path) -> str:
    file = str(config_path)
    try:
        with open(config_path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise _too_large(file, os.fstat(fh.fileno()).st_size)
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(file, f"cannot read the config file: {err}") from None


def _too_large(file: str, size: int) -> ConfigError:
    return ConfigError(
        file,
        f"the config file is {size / 1e6:.1f} MB, over the {MAX_CONFIG_BYTES / 1e6:.1f} MB limit",
        hint="keep data in the dataset file and long prompts in template files",
    )


def _api_version_of(raw: dict[str, Any]) -> str | None:
    value = raw.get("api_version")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value if isinstance(value, str) else None


def _spec_hash(text: str, ctx: LoadContext) -> str:
    files = {path: source.encode("utf-8") for path, source in ctx.sources.items()}
    files.update(ctx.files)
    digest = hashlib.sha256(text.encode("utf-8"))
    for abs_path in sorted(files):
        try:
            rel = Path(os.path.relpath(abs_path, ctx.base_dir)).as_posix()
        except ValueError:  # another drive (Windows)
            rel = Path(abs_path).as_posix()
        digest.update(b"\0" + rel.encode("utf-8") + b"\0" + files[abs_path])
    return digest.hexdigest()


# --- scorers ------------------------------------------------------------------------


def _scorers(
    items: Any, ctx: LoadContext, file: str, root: yaml.Node | None
) -> tuple[ScorerSet, list[str], list[str]]:
    """Build the ``scorers:`` list: ``(scorers, problems, hooks refused)``, the problems
    and refused hooks with their YAML lines.

    A value that is not a list is left to the model's validation to report. The files
    the scorers read are added to ``ctx.files`` for the config hash.
    """
    if not isinstance(items, list):
        return ScorerSet(), [], []
    allow = ctx.root is None
    try:
        scorers = build_scorers(items, base_dir=ctx.base_dir, file=file, allow_external_code=allow)
    except UnsafeConfig as err:
        return ScorerSet(), [], [_with_scorer_line(entry, root) for entry in err.errors]
    except ConfigError as err:
        return ScorerSet(), [_with_scorer_line(entry, root) for entry in err.errors], []
    for scorer in scorers:
        for value in scorer_files(scorer):
            path = resolve_path(ctx, value)
            try:
                ctx.files[str(path)] = path.read_bytes()
            except OSError:  # the scorer read it a moment ago; nothing to hash
                continue
    return scorers, [], []


_SCORER_ENTRY = re.compile(r"^scorers\[(\d+)\]((?:\.[^.\[\s:]+|\[\d+\])*)(?=:)")


def _with_scorer_line(entry: str, root: yaml.Node | None) -> str:
    """``scorers[i].field: msg`` from ``build_scorers`` -> ``scorers[i].field (line N): msg``."""
    match = _SCORER_ENTRY.match(entry)
    if match is None:
        return entry
    parts: list[Any] = [int(match[1])]
    for key, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", match[2]):
        parts.append(int(index) if index else key)
    line = _line_of(_value_node(root, "scorers"), parts, options_at=1)
    return match[0] + line + entry[match.end() :]


def _line(node: yaml.Node | None, loc: Sequence[Any], *, options_at: int = -1) -> int | None:
    """The line of the deepest YAML node ``loc`` reaches below ``node`` (None: not even
    the first step). At depth ``options_at`` stands a scorer item, whose options may sit
    under its type's key (``- judge: {rubric_file: ...}``): a key not found on the item
    is looked for there."""
    line = None
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        found = _key_value(node, str(part))
        if found is None and depth == options_at:
            options = [v for k, v in node.value if isinstance(v, yaml.MappingNode)]
            if len(options) == 1:
                found = _key_value(options[0], str(part))
        if found is None:
            break
        key, node = found
        line = key.start_mark.line + 1
    return line


def _value_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    found = _key_value(node, key) if isinstance(node, yaml.MappingNode) else None
    return found[1] if found else None


def _key_value(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    return next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)


class _TooManyNodes(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that counts the nodes of the tree as its aliases expand.

    Each composed node's expanded size is 1 + its children's; an alias's child is the
    anchored node itself, so its size counts again at every use. Composing stops as
    soon as a node's size passes ``MAX_CONFIG_NODES``, long before an alias bomb has
    cost anything. An alias to a node still being composed (a recursive structure,
    which every walk of the data would follow forever) is refused.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark
        node = super().compose_node(parent, index)
        if alias:
            if id(node) not in self._sizes:
                raise ComposerError(
                    None, None, "found a recursive alias (a node that contains itself)", mark
                )
            return node
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_CONFIG_NODES:
            raise _TooManyNodes(
                f"the YAML holds more than {MAX_CONFIG_NODES:,} nodes once its aliases are "
                f"expanded (at line {mark.line + 1}); a real config has a few hundred"
            )
        self._sizes[id(node)] = size
        return node


def _parse_yaml(file: str, text: str) -> tuple[dict[str, Any], yaml.Node | None]:
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except _TooManyNodes as err:
        raise ConfigError(
            file, f"refused: {err}", hint="use fewer aliases, or nest them less deeply"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(file, f"invalid YAML at {where}: {what}") from None
    except yaml.YAMLError as err:
        raise ConfigError(file, f"invalid YAML: {err}") from None
    finally:
        loader.dispose()
    if raw is None:
        raise ConfigError(
            file, "the config file is empty", hint="start from configs/quickstart.yaml"
        )
    if not isinstance(raw, dict):
        raise ConfigError(file, f"the config must be a mapping, got {type(raw).__name__}")
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise ConfigError(file, duplicates)
    return raw, root


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[str]:
    errors: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    errors.append(
                        f"{_join(path, key.value)} (line {line}): duplicate key "
                        f"(first at line {seen[key.value]})"
                    )
                seen.setdefault(key.value, line)
            errors += _duplicate_keys(value, _join(path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            errors += _duplicate_keys(item, f"{path}[{i}]")
    return errors


_JSON_INTS = (-(2**63), 2**64 - 1)
"""The integers a request or a hash can hold (orjson's range, 64 bits)."""


def _huge_ints(value: Any, root: yaml.Node | None, loc: tuple[Any, ...] = ()) -> list[str]:
    """Integers anywhere in the config too large for JSON (64 bits): each is a problem
    here, not a ``TypeError`` when the requests are serialized."""
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _huge_ints(v, root, (*loc, k))]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _huge_ints(v, root, (*loc, i))]
    low, high = _JSON_INTS
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        return [_problem(root, loc, f"{value} does not fit in 64 bits", "use a smaller number")]
    return []


def _duplicate_names(raw: dict[str, Any], root: yaml.Node | None) -> list[str]:
    """Unique variant names and model keys, checked on the raw data (always runs)."""
    errors = []

    def check(section: str, keys: list[tuple[int, str, str]], what: str, hint: str) -> None:
        first: dict[str, int] = {}
        for i, key, field_name in keys:
            if key in first:
                loc = (section, i, field_name)
                message = f"duplicate {what} {key!r} (also {section}[{first[key]}])"
                errors.append(_problem(root, loc, message, hint))
            first.setdefault(key, i)

    prompts = raw.get("prompts")
    if isinstance(prompts, list):
        names = [
            (i, p["name"], "name")
            for i, p in enumerate(prompts)
            if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
        check("prompts", names, "variant name", "variant names must be unique")
    models = raw.get("models")
    if isinstance(models, list):
        keys = []
        for i, m in enumerate(models):
            if isinstance(m, str):
                keys.append((i, m, ""))
            elif isinstance(m, dict):
                key = m.get("name") or m.get("model")
                if isinstance(key, str):
                    keys.append((i, key, "name" if m.get("name") else "model"))
        check(
            "models",
            keys,
            "model key",
            "give a repeated model a distinct name: `- {name: x, model: <id>}`",
        )
    return errors


# --- ci gates -----------------------------------------------------------------------


def _ci_errors(raw: dict[str, Any], scorer_names: list[str], root: yaml.Node | None) -> list[str]:
    """Gates name existing scorers, and their `model` / `variant` existing cells; a gate
    `against: model:KEY` names a model key of the config other than its own `model`."""
    ci = raw.get("ci")
    gates = ci.get("gates") if isinstance(ci, dict) else None
    if not isinstance(gates, dict):
        return []
    variants = [p.get("name") for p in raw.get("prompts") or [] if isinstance(p, dict)]
    models = []
    for m in raw.get("models") or []:
        models.append(m if isinstance(m, str) else (m.get("name") or m.get("model")))
    errors = []
    for name, entries in gates.items():
        loc: tuple[Any, ...] = ("ci", "gates", str(name))
        if name not in scorer_names:
            close = difflib.get_close_matches(str(name), scorer_names, n=1)
            known = ", ".join(scorer_names) or "none (add `scorers:`)"
            hint = f"did you mean `{close[0]}`?" if close else f"scorers in this config: {known}"
            errors.append(_problem(root, loc, f"no scorer named {name!r}", hint))
            continue
        items = entries if isinstance(entries, list) else [entries]
        for i, gate in enumerate(items):
            if not isinstance(gate, dict):
                continue
            for key, known_names, what in (
                ("model", models, "model key"),
                ("variant", variants, "prompt variant"),
            ):
                value = gate.get(key)
                if value is None or value in known_names:
                    continue
                where = (*loc, i, key) if isinstance(entries, list) else (*loc, key)
                hint = f"{what}s in this config: {', '.join(map(str, known_names))}"
                errors.append(_problem(root, where, f"no {what} named {value!r}", hint))
            where = (*loc, i, "against") if isinstance(entries, list) else (*loc, "against")
            problem = _against_problem(gate, models)
            if problem:
                errors.append(_problem(root, where, *problem))
    return errors


def _against_problem(gate: dict[str, Any], models: list[Any]) -> tuple[str, str] | None:
    """(message, hint) when a gate's `against: model:KEY` cannot pair with anything."""
    against = gate.get("against")
    if not isinstance(against, str) or not against.startswith(AGAINST_MODEL):
        return None  # absent, or a shape error the schema reports
    key = against[len(AGAINST_MODEL) :].strip()
    keys = ", ".join(map(str, models))
    if key not in models:
        return f"no model key named {key!r}", f"model keys in this config: {keys}"
    if len(set(models)) < 2:
        return (
            f"model {key!r} is the only model of this config: there is no other model to "
            "compare with it",
            "add the candidate model under `models:` (e.g. `- {name: candidate, model: "
            "NEW_ID}`), or leave `against` out to compare with a baseline",
        )
    if gate.get("model") == key:
        return (
            f"the gate's cells (`model: {key}`) are the model it compares with",
            f"set `model` to the candidate model (model keys in this config: {keys})",
        )
    return None


# --- error formatting ---------------------------------------------------------------


def _join(path: str, key: str) -> str:
    if not re.match(r"^[A-Za-z0-9_-]+$", key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "":
            continue
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, str(part))
    return out or "(top level)"


def _problem(root: yaml.Node | None, loc: tuple[Any, ...], message: str, hint: str = "") -> str:
    """One entry of a ``ConfigError``'s list: ``field.path (line N): message``, and its
    hint on the next line."""
    entry = f"{_loc_str(loc)}{_line_of(root, loc)}: {message}"
    return entry + (f"\n    hint: {hint}" if hint else "")


def _line_of(root: yaml.Node | None, loc: Sequence[Any], *, options_at: int = -1) -> str:
    """`` (line N)`` of the deepest YAML node the location reaches below ``root``."""
    line = _line(root, loc, options_at=options_at)
    return f" (line {line})" if line else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model class found at a location (to suggest field names); the key of a
    mapping of models (``catalog.<id>``) leads to the mapping's model."""
    annotation: Any = EvalConfig
    for part in loc:
        if not isinstance(part, str):
            continue
        values = _dict_values(annotation)
        if values is not None:
            annotation = values
            continue
        model = _inner_model(annotation)
        info = model.model_fields.get(part) if model is not None else None
        if info is None:
            return None
        annotation = info.annotation
    model = _inner_model(annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _dict_values(annotation: Any) -> Any:
    """``V`` of ``dict[str, V]`` (also inside an optional), else None."""
    if get_origin(annotation) is dict:
        return get_args(annotation)[1]
    for arg in get_args(annotation):
        if get_origin(arg) is dict:
            return get_args(arg)[1]
    return None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is dict:
        return None
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_errors(exc: ValidationError, root: yaml.Node | None) -> list[str]:
    errors = []
    for err in exc.errors(include_url=False):
        # ``<text>`` / ``<blocks>``: the tags of a union's members, not fields
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("<")))
        ctx = err.get("ctx") or {}
        hint = ""
        if err["type"] == "batchmark":
            msg = ctx["msg"]
            hint = ctx.get("hint", "")
            if ctx.get("field"):
                loc = (*loc, ctx["field"])
        elif err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            msg = "unknown field"
            if model is not None:
                known = [n for n, f in model.model_fields.items() if not _skipped(f)]
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                hint = (
                    f"did you mean `{close[0]}`?" if close else "known fields: " + ", ".join(known)
                )
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msg = re.sub(r"a valid dictionary( or instance of \w+)?", "a mapping", msg)
            value = err.get("input")
            if isinstance(value, str | int | float | bool) or value is None:
                msg += f" (got {_short(value)})"
        errors.append(_problem(root, loc, msg, hint))
    return errors


def _skipped(info: Any) -> bool:
    return any(isinstance(m, SkipJsonSchema) for m in info.metadata) or (
        "SkipJsonSchema" in repr(info.annotation)
    )
