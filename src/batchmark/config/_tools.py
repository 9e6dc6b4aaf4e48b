"""Tools and structured outputs: their shapes, checked before anything is sent.

Where a request's tools come from (see docs/tools.md):

- **static tools**, the same for every row: ``params.tools`` (top level or a model's
  params) *or* a prompt variant's ``tools`` / ``tools_file``. Giving both for one
  request is a ``ConfigError`` naming both fields: batchmark would have to guess whether
  one replaces or extends the other. ``tool_choice`` likewise comes from ``params`` or
  the variant, not both.
- **row tools**: a variant's ``tools_field`` names a row field holding a list of tools;
  they follow the static tools in the request (so the static ones stay a cacheable
  prefix), and their names must differ from the static ones.

Each tool is checked against the SDK's ``ToolParam`` (``TOOL_KEYS``: unknown keys are
refused, as the API refuses extra inputs), its name against ``TOOL_NAME_RE`` (the
documented pattern; the SDK's type does not carry it [docs]), and its ``input_schema``
with jsonschema's ``check_schema`` (draft 2020-12). A tool whose ``type`` is neither
absent nor ``custom`` is a server tool (``web_search_...``): only its name is checked.

A structured-output schema (``output_config.format``, a variant's ``output_schema``) is
checked the same way. Whether a model supports structured outputs is not in the model
catalog (the SDK's ``ModelCapabilities.structured_outputs`` is, online), so it is never
refused offline.

The functions return ``Problem``s: a path below the value checked (``(1,
"input_schema")``) and a message; callers turn them into config or render errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from batchmark.scorers._json import load_schema_file, parse_json_or_yaml

__all__ = [
    "TOOL_CHOICE_KEYS",
    "TOOL_KEYS",
    "TOOL_NAME_RE",
    "ToolProblem",
    "at_text",
    "config_tool_problems",
    "output_config_problems",
    "output_format",
    "parse_data",
    "read_data_file",
    "request_schema_problems",
    "schema_problem",
    "tool_choice_problems",
    "tool_problems",
]

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""A tool's name: "Must match regex ^[a-zA-Z0-9_-]{1,64}$" [docs, tool use]."""
TOOL_KEYS = frozenset(
    {
        "allowed_callers",
        "cache_control",
        "defer_loading",
        "description",
        "eager_input_streaming",
        "input_examples",
        "input_schema",
        "name",
        "strict",
        "type",
    }
)
"""The keys of the SDK's ``ToolParam`` (anthropic 2.16 ``types/tool_param.py``; a test
compares them with the installed SDK's)."""
TOOL_CHOICE_KEYS = {
    "auto": frozenset({"type", "disable_parallel_tool_use"}),
    "any": frozenset({"type", "disable_parallel_tool_use"}),
    "tool": frozenset({"type", "name", "disable_parallel_tool_use"}),
    "none": frozenset({"type"}),
}
"""``tool_choice`` types and their keys (the SDK's ``ToolChoice*Param``)."""
_SCHEMA_FORMAT = "json_schema"


@dataclass(frozen=True, slots=True)
class ToolProblem:
    """One problem in a list of tools, a ``tool_choice`` or a schema."""

    at: tuple[Any, ...]
    """Where, below the value checked: ``(1, "input_schema")`` is its item 1's schema."""
    message: str
    hint: str = ""


def at_text(at: Iterable[Any], head: str = "") -> str:
    """``tools[1].input_schema`` for ``at_text((1, "input_schema"), "tools")``."""
    out = head
    for part in at:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def schema_problem(schema: Any) -> ToolProblem | None:
    """Why ``schema`` is not a valid JSON Schema (draft 2020-12), else ``None``; ``at`` is
    the path inside the schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, Mapping):
        return ToolProblem((), f"a JSON Schema here is a mapping, got {_kind(schema)}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        at = tuple(err.path)
        where = at_text(at, "$")
        return ToolProblem(at, f"invalid JSON Schema at {where}: {_cut(err.message)}")
    except RecursionError:
        return ToolProblem((), "the JSON Schema is nested too deeply to check")
    return None


def tool_problems(tools: Any, *, taken: Iterable[str] = ()) -> list[ToolProblem]:
    """Every problem of a list of tools; ``taken``: names already used by tools that come
    before these in the same request (duplicates are refused)."""
    if not isinstance(tools, list):
        return [ToolProblem((), f"expected a list of tools, got {_kind(tools)}")]
    problems: list[ToolProblem] = []
    seen = {name: -1 for name in taken}
    for i, tool in enumerate(tools):
        problems += _one_tool(i, tool, seen)
    return problems


def _one_tool(i: int, tool: Any, seen: dict[str, int]) -> Iterator[ToolProblem]:
    if not isinstance(tool, Mapping):
        yield ToolProblem(
            (i,), f"a tool is a mapping with `name` and `input_schema`, got {_kind(tool)}"
        )
        return
    name = tool.get("name")
    if not isinstance(name, str):
        yield ToolProblem((i, "name"), "every tool needs a `name` (a string)")
    elif not TOOL_NAME_RE.fullmatch(name):
        yield ToolProblem(
            (i, "name"),
            f"tool name {name!r} does not match {TOOL_NAME_RE.pattern}",
            "use 1 to 64 letters, digits, `_` and `-`",
        )
    elif name in seen:
        first = "a static tool" if seen[name] < 0 else f"tools[{seen[name]}]"
        yield ToolProblem(
            (i, "name"),
            f"tool name {name!r} is used twice (also {first})",
            "tool names must be unique in a request",
        )
    else:
        seen[name] = i
    kind = tool.get("type")
    if kind not in (None, "custom"):
        return  # a server tool (web search, code execution, ...): the API knows its shape
    for key in tool:
        if key not in TOOL_KEYS:
            close = _close(str(key), TOOL_KEYS)
            hint = (
                f"did you mean `{close}`?"
                if close
                else "known keys: " + ", ".join(sorted(TOOL_KEYS))
            )
            yield ToolProblem((i, key), f"unknown key {key!r} in a tool", hint)
    if "input_schema" not in tool:
        yield ToolProblem(
            (i,),
            "every tool needs an `input_schema` (a JSON Schema of its input)",
            "e.g. `input_schema: {type: object, properties: {city: {type: string}}}`",
        )
        return
    schema = tool["input_schema"]
    problem = schema_problem(schema)
    if problem is not None:
        yield ToolProblem((i, "input_schema", *problem.at), problem.message)
    elif "type" in schema and schema["type"] != "object":
        yield ToolProblem(
            (i, "input_schema", "type"),
            f'a tool\'s input is an object: `type` must be "object", got {schema["type"]!r}',
        )
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        yield ToolProblem((i, "description"), f"expected a string, got {_kind(description)}")


def tool_choice_problems(choice: Any, names: Iterable[str] | None = None) -> list[ToolProblem]:
    """The problems of a ``tool_choice``; with ``names`` (the request's tool names), also
    a choice that names a tool not among them, or needs tools and has none."""
    if not isinstance(choice, Mapping):
        return [ToolProblem((), f"expected a mapping like `{{type: auto}}`, got {_kind(choice)}")]
    kind = choice.get("type")
    if kind not in TOOL_CHOICE_KEYS:
        return [
            ToolProblem(
                ("type",),
                f"tool_choice type must be one of {', '.join(TOOL_CHOICE_KEYS)}, got {kind!r}",
            )
        ]
    problems = [
        ToolProblem((key,), f"unknown key {key!r} for tool_choice type {kind!r}")
        for key in choice
        if key not in TOOL_CHOICE_KEYS[kind]
    ]
    if kind == "tool" and not isinstance(choice.get("name"), str):
        problems.append(ToolProblem(("name",), "tool_choice type `tool` needs the tool's `name`"))
    elif names is not None:
        known = list(names)
        if kind == "tool" and choice["name"] not in known:
            listed = ", ".join(known) or "none"
            problems.append(
                ToolProblem(
                    ("name",),
                    f"tool_choice names tool {choice['name']!r}, which is not "
                    f"among the request's tools ({listed})",
                )
            )
        elif kind == "any" and not known:
            problems.append(ToolProblem(("type",), "tool_choice `any` needs at least one tool"))
    return problems


def output_config_problems(config: Any) -> list[ToolProblem]:
    """The problems of ``params.output_config``'s ``format`` (its ``effort`` is the
    request rules' business)."""
    if not isinstance(config, Mapping):
        return [ToolProblem((), f"expected a mapping, got {_kind(config)}")]
    fmt = config.get("format")
    if fmt is None:
        return []
    if not isinstance(fmt, Mapping):
        return [ToolProblem(("format",), f"expected a mapping, got {_kind(fmt)}")]
    problems = []
    if fmt.get("type") != _SCHEMA_FORMAT:
        problems.append(
            ToolProblem(("format", "type"), f"must be {_SCHEMA_FORMAT!r}, got {fmt.get('type')!r}")
        )
    for key in fmt:
        if key not in ("type", "schema"):
            problems.append(
                ToolProblem(("format", key), f"unknown key {key!r} in output_config.format")
            )
    if "schema" not in fmt:
        problems.append(ToolProblem(("format",), "output_config.format needs a `schema`"))
    else:
        problem = schema_problem(fmt["schema"])
        if problem is not None:
            problems.append(ToolProblem(("format", "schema", *problem.at), problem.message))
    return problems


def output_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The API's ``output_config.format`` for a JSON Schema."""
    return {"type": _SCHEMA_FORMAT, "schema": schema}


read_data_file = load_schema_file
"""A JSON file, or YAML for ``.yaml`` / ``.yml``; raises ``ValueError`` naming it."""
parse_data = parse_json_or_yaml
"""``read_data_file``'s parsing of text already read."""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _close(word: str, options: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(options), n=1)
    return found[0] if found else None


def _cut(message: str, width: int = 160) -> str:
    return message if len(message) <= width else message[: width - 3] + "..."


def config_tool_problems(config: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """What spans fields of a validated config (an ``EvalConfig``): tools, ``tool_choice``
    or an output format given both by a variant and by ``params`` (top level or a
    model's), and a static ``tool_choice`` naming a tool the request will not have.
    Each problem is ``(loc, message, hint)``, ``loc`` a config field path."""
    problems: list[tuple[tuple[Any, ...], str, str]] = []
    sources = [(("params",), config.params.as_dict())]
    sources += [(("models", j, "params"), m.params.as_dict()) for j, m in enumerate(config.models)]
    for i, variant in enumerate(config.prompts):
        mine = ("prompts", i)
        tools_key = next(
            (k for k in ("tools", "tools_file") if getattr(variant, k) is not None), None
        )
        schema_key = next(
            (k for k in ("output_schema", "output_schema_file") if getattr(variant, k) is not None),
            None,
        )
        for where, params in sources:
            theirs = at_text(where)
            if tools_key and "tools" in params:
                problems.append(_both(mine, tools_key, f"{theirs}.tools", "tools"))
            if variant.tool_choice is not None and "tool_choice" in params:
                problems.append(_both(mine, "tool_choice", f"{theirs}.tool_choice", "tool_choice"))
            output = params.get("output_config")
            if schema_key and isinstance(output, Mapping) and "format" in output:
                problems.append(_both(mine, schema_key, f"{theirs}.output_config.format", "schema"))
        if variant.tools_field is not None:
            continue  # the tool names are known row by row
        for j, model in enumerate(config.models):
            merged = {**config.params.as_dict(), **model.params.as_dict()}
            choice = (
                variant.tool_choice
                if variant.tool_choice is not None
                else merged.get("tool_choice")
            )
            tools = variant.static_tools if tools_key else merged.get("tools")
            if choice is None or not isinstance(tools or [], list):
                continue
            names = [t.get("name") for t in tools or [] if isinstance(t, Mapping)]
            if variant.tool_choice is not None:
                loc: tuple[Any, ...] = (*mine, "tool_choice")
            elif "tool_choice" in model.params.as_dict():
                loc = ("models", j, "params", "tool_choice")
            else:
                loc = ("params", "tool_choice")
            for p in tool_choice_problems(choice, names):
                entry = ((*loc, *p.at), p.message, p.hint)
                if entry not in problems:
                    problems.append(entry)
    return problems


def request_schema_problems(config: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """A ``json_schema: {schema: request}`` scorer in a config none of whose requests asks
    for structured output: every item would be invalid."""
    asks = any(
        v.output_schema is not None or v.output_schema_file is not None for v in config.prompts
    )
    for params in [config.params.as_dict(), *(m.params.as_dict() for m in config.models)]:
        output = params.get("output_config")
        asks = asks or (isinstance(output, Mapping) and "format" in output)
    if asks:
        return []
    problems = []
    for k, item in enumerate(config.scorers):
        options = item.get("json_schema") if isinstance(item, Mapping) else None
        if isinstance(item, Mapping) and item.get("type") == "json_schema":
            options = item
        if isinstance(options, Mapping) and options.get("schema") == "request":
            problems.append(
                (
                    ("scorers", k, "schema"),
                    "`schema: request` checks each answer against its request's output "
                    "schema, but no request asks for one",
                    "give a prompt variant an `output_schema` (see docs/tools.md), or the "
                    "scorer a schema of its own",
                )
            )
    return problems


def _both(
    mine: tuple[Any, ...], key: str, theirs: str, what: str
) -> tuple[tuple[Any, ...], str, str]:
    return (
        (*mine, key),
        f"`{at_text((*mine, key))}` and `{theirs}` both give the request's {what}",
        f"give the {what} in one place: the variant (for this prompt) or params (for every "
        "prompt of the model)",
    )
