"""json_schema: find JSON in a response and validate it (JSON Schema draft 2020-12).

Extraction (``extract: auto``) tries, in order: the input of a ``tool_use`` call, the
whole text, the first fenced code block (```` ```json ```` preferred), the first
balanced ``{...}`` object. Invalid JSON fails the item with the parse error; JSON nested
too deeply to parse or validate fails too; nothing here raises on any response.
The schema is checked when the scorer is built, so a broken schema file is a config
error before anything is sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, best_match
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from batchmark.scorers._base import (
    Score,
    ScoreContext,
    ScorerOptions,
    base_dir_of,
    field_error,
    no_response,
    short,
)

__all__ = [
    "JsonSchema",
    "extract_json",
    "first_balanced_object",
    "load_schema_file",
    "parse_json_or_yaml",
]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_MAX_OBJECT_STARTS = 16
# What matters when matching braces: a whole string literal (skipped, braces and escaped
# quotes inside it included; an unterminated one runs to the end), or a brace.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}]', re.DOTALL)


class _NoJson(Exception):
    """No JSON could be extracted; the message says why."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """Strict JSON (no NaN/Infinity); raises ``_NoJson`` with the parse error."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise _NoJson(f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise _NoJson("invalid JSON: nested too deeply to parse") from None
    except ValueError as err:
        raise _NoJson(f"invalid JSON: {err}") from None


def first_balanced_object(text: str) -> str | None:
    """The first ``{...}`` span whose braces balance (braces in strings don't count).

    Tries at most 16 opening braces, so hostile text stays linear-ish.
    """
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_OBJECT_STARTS:
        tries += 1
        end = _balanced_end(text, start)
        if end is not None:
            candidate = text[start:end]
            try:
                parse_json(candidate)
                return candidate
            except _NoJson:
                pass
        start = text.find("{", start + 1)
    return None


def _balanced_end(text: str, start: int) -> int | None:
    depth = 0
    for token in _TOKENS.finditer(text, start):
        c = token.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return token.end()
    return None


Source = Literal["auto", "tool_use", "text", "fenced", "object"]


def extract_json(
    text: str, tool_calls: list[Any], source: Source = "auto", tool: str | None = None
) -> tuple[Any, str]:
    """The JSON a response carries and where it was found; raises ``_NoJson``."""
    if source in ("auto", "tool_use"):
        calls = [c for c in tool_calls or [] if tool is None or c.get("name") == tool]
        if calls:
            return calls[0].get("input"), f"tool_use {calls[0].get('name')!r}"
        if source == "tool_use":
            named = f" named {tool!r}" if tool else ""
            raise _NoJson(f"no tool_use call{named} in the response")
    if source == "text":
        return parse_json(text), "text"
    if source == "fenced":
        block = _fenced(text)
        if block is None:
            raise _NoJson("no fenced code block in the response")
        return parse_json(block), "fenced block"
    if source == "object":
        found = first_balanced_object(text)
        if found is None:
            raise _NoJson("no JSON object in the response")
        return parse_json(found), "object"
    # auto: the whole text, else a fenced block, else the first balanced object
    stripped = text.strip()
    if not stripped:
        raise _NoJson("empty response")
    first_error = ""  # the message only: the exception's traceback would hold this frame
    try:
        return parse_json(stripped), "text"
    except _NoJson as err:
        first_error = str(err)
    block = _fenced(text)
    if block is not None:
        return parse_json(block), "fenced block"
    found = first_balanced_object(text)
    if found is not None:
        return parse_json(found), "object"
    if stripped[0] in "{[":
        raise _NoJson(first_error)
    raise _NoJson(f"no JSON found in {short(stripped, 60)}")


def _fenced(text: str) -> str | None:
    if "```" not in text:
        return None
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    for lang, body in blocks:
        if lang in ("json", "jsonc", "json5"):
            return body
    return blocks[0][1] if blocks else None


def load_schema_file(path: Path) -> Any:
    """Read a JSON file (YAML for ``.yaml``/``.yml``): a schema, tools; raises
    ``ValueError`` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    return parse_json_or_yaml(text, path)


def parse_json_or_yaml(text: str, path: Path) -> Any:
    """``load_schema_file``'s parsing of text already read (``path`` decides YAML and
    names the file in errors)."""
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON: {err.msg} (line {err.lineno})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not YAML: {err}") from None


class JsonSchema(ScorerOptions):
    """Passes when the response carries JSON that validates against the schema."""

    type_name = "json_schema"

    schema_: dict[str, Any] | bool | Literal["request"] | None = Field(None, alias="schema")
    """The JSON Schema inline (draft 2020-12 unless ``$schema`` says otherwise), or
    ``request``: the structured-output schema each request was sent with (its
    ``output_config.format.schema``, see docs/tools.md)."""
    schema_file: str | None = None
    """A schema file (JSON or YAML) relative to the config, e.g. ``evals/answer.schema.json``."""
    extract: Source = "auto"
    """Where the JSON is: ``auto`` (tool_use, whole text, fenced block, first object),
    ``tool_use``, ``text``, ``fenced`` or ``object``."""
    tool: str | None = None
    """Only take the input of the tool_use call with this name."""
    check_formats: bool = False
    """Also check ``format`` keywords (``date-time``, ``email``, ...); off by default, as
    draft 2020-12 makes them annotations."""

    _validator: Any = PrivateAttr(default=None)
    _request_validators: dict[bytes, Any] = PrivateAttr(default_factory=dict)

    @field_validator("schema_", mode="before")
    @classmethod
    def _not_a_file_name(cls, value: Any) -> Any:
        """A string other than ``request`` is a file name written under the wrong key:
        one clear error instead of one per member of the union (issue 17)."""
        if isinstance(value, str) and value != "request":
            raise field_error(
                "",  # the location is the field's already
                f"`schema` takes the JSON Schema itself or `request`, not a file name "
                f"({value[:60]!r})",
                f"for a file write `schema_file: {value[:60]}`",
            )
        return value

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> JsonSchema:
        if (self.schema_ is None) == (self.schema_file is None):
            raise field_error("schema", "give exactly one of `schema` and `schema_file`")
        field = "schema" if self.schema_file is None else "schema_file"
        if self.schema_ == "request":
            return self  # each item's schema is its request's, checked with the config
        schema: Any = self.schema_
        if self.schema_file is not None:
            path = base_dir_of(info) / self.schema_file
            try:
                schema = load_schema_file(path)
            except ValueError as err:
                raise field_error(field, str(err)) from None
            if not isinstance(schema, dict | bool):
                raise field_error(field, f"{path}: a schema is an object or a boolean")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as err:
            where = err.json_path if hasattr(err, "json_path") else "$"
            raise field_error(field, f"invalid JSON Schema at {where}: {err.message}") from None
        checker = FormatChecker() if self.check_formats else None
        self._validator = Draft202012Validator(schema, format_checker=checker)
        return self

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        if (failed := no_response(ctx)) is not None:
            return failed
        validator = self.__pydantic_private__["_validator"]
        if validator is None:  # schema: request
            validator = self._request_validator(ctx)
            if isinstance(validator, Score):
                return validator
        response = ctx.response
        try:
            data, where = extract_json(
                response.get("text") or "",
                response.get("tool_calls") or [],
                self.extract,
                self.tool,
            )
        except _NoJson as err:
            return Score.failure(str(err))
        try:
            errors = list(validator.iter_errors(data))
        except RecursionError:
            return Score.failure(f"JSON from {where} is nested too deeply to validate")
        except Exception as err:  # an unresolvable $ref, a bad regex in the schema, ...
            return Score.of_invalid(f"schema could not be applied: {type(err).__name__}: {err}")
        if not errors:
            return Score.success(f"valid ({where})", data)
        error = best_match(errors)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return Score.failure(f"{error.json_path}: {_cut(error.message)}{more}", data)

    def _request_validator(self, ctx: ScoreContext) -> Any:
        """The validator of the schema the item's request asked for, or an invalid score."""
        config = ctx.request.get("output_config") if ctx.request else None
        fmt = config.get("format") if isinstance(config, dict) else None
        schema = fmt.get("schema") if isinstance(fmt, dict) else None
        if not isinstance(schema, dict | bool):
            return Score.of_invalid(
                "schema: request, but the request asked for no structured output "
                "(output_config.format.schema)"
            )
        cache = self.__pydantic_private__["_request_validators"]
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        validator = cache.get(key)
        if validator is None:
            checker = FormatChecker() if self.check_formats else None
            validator = Draft202012Validator(schema, format_checker=checker)
            if len(cache) < _MAX_REQUEST_SCHEMAS:
                cache[key] = validator
        return validator


_MAX_REQUEST_SCHEMAS = 256
"""Distinct request schemas whose validators are kept (memory stays bounded)."""


def _cut(message: str, width: int = 200) -> str:
    return message if len(message) <= width else message[: width - 3] + "..."
