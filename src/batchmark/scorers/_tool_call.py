"""tool_call: the response's tool calls against the expected ones.

The expected calls come from a row field (``field: expected_calls``: one ``{name,
input}`` mapping or a list of them, or a JSON string of either) or from templates (one
call: ``tool: "{{ tool }}"`` and ``input``, a mapping or a template rendering to JSON).
A call given without ``input`` matches any input. Arguments are matched (``match``):

- ``exact``: equal as JSON (``1`` equals ``1.0``; ``true`` is not ``1``);
- ``subset``: every key the expected input gives is there with a matching value, more
  keys are fine (lists: same length, items matched the same way);
- ``schema``: the expected ``input`` is a JSON Schema the call's input must satisfy.

A call in the data may carry its own ``match``. Several expected calls are matched
``in_order`` (the response's calls in that order) or ``any_order``; ``allow_extra`` lets
the response make other calls too. The score is 1 when every expected call is matched,
else 0 with the first mismatch as a path into the response's calls:
``calls[1].input.city: expected "Paris", got "paris"``. A response without a tool call
fails (unless no call is expected). Only the response's ``tool_calls`` are scored: its
text and thinking never are. A key whose value is null counts as absent (in the row and
in the response): a Parquet struct column gives every row the keys of all rows, the
missing ones null. Bad expectations in a row (not a call, a schema that is
not one) make the item invalid, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic import PrivateAttr, model_validator

from batchmark.scorers._base import (
    Score,
    ScoreContext,
    ScorerOptions,
    Template,
    compile_template,
    field_error,
    no_response,
)

__all__ = ["ToolCall", "first_mismatch"]

Match = Literal["exact", "subset", "schema"]
_MATCHES = ("exact", "subset", "schema")
_MAX_VALIDATORS = 1024
"""Row schemas whose compiled validators are remembered (memory stays bounded)."""


class _Invalid(Exception):
    """The expectation cannot be used for this item; the message says why."""


def _json(value: Any, width: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _key(path: str, key: Any) -> str:
    key = str(key)
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _same_scalar(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return expected == got
    return type(expected) is type(got) and expected == got


def first_mismatch(expected: Any, got: Any, path: str, *, subset: bool = False) -> str | None:
    """The first place where ``got`` differs from ``expected`` (``path: expected X, got
    Y``), else None. ``subset``: keys ``expected`` leaves out may be anything. A key
    whose value is null counts as absent, on both sides."""
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{path}: expected an object, got {_json(got)}"
        expected = {k: v for k, v in expected.items() if v is not None}  # null = absent
        got = {k: v for k, v in got.items() if v is not None}
        for key, value in expected.items():
            if key not in got:
                return f"{_key(path, key)}: missing (expected {_json(value)})"
            found = first_mismatch(value, got[key], _key(path, key), subset=subset)
            if found:
                return found
        if not subset:
            for key in got:
                if key not in expected:
                    return f"{_key(path, key)}: not expected (got {_json(got[key])})"
        return None
    if isinstance(expected, list):
        if not isinstance(got, list):
            return f"{path}: expected a list, got {_json(got)}"
        for i, (want, have) in enumerate(zip(expected, got, strict=False)):
            found = first_mismatch(want, have, f"{path}[{i}]", subset=subset)
            if found:
                return found
        if len(expected) != len(got):
            return f"{path}: expected {len(expected)} items, got {len(got)}"
        return None
    if not _same_scalar(expected, got):
        return f"{path}: expected {_json(expected)}, got {_json(got)}"
    return None


class ToolCall(ScorerOptions):
    """Passes when the response's tool calls match the expected calls."""

    type_name = "tool_call"

    field: str | None = None
    """A row field holding the expected call (`{name, input}`) or a list of them (a JSON
    string of either is parsed); `[]` expects no call."""
    tool: str | None = None
    """Instead of `field`: the expected tool's name, a Jinja2 template over the row."""
    input: dict[str, Any] | str | None = None
    """With `tool`: the expected input, a mapping, or a template rendering to JSON
    (`'{{ args | tojson }}'`); with `match: schema`, a JSON Schema. Left out: any input."""
    match: Match = "exact"
    """How inputs are compared: `exact`, `subset` or `schema` (a call in the data may
    say its own `match`)."""
    order: Literal["in_order", "any_order"] = "in_order"
    """Several expected calls: in the response's order, or in any order."""
    allow_extra: bool = False
    """Let the response make calls besides the expected ones."""

    _tool: Template | None = PrivateAttr(default=None)
    _input: Template | None = PrivateAttr(default=None)
    _validators: dict[bytes, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> ToolCall:
        if (self.field is None) == (self.tool is None):
            raise field_error(
                "field",
                "give exactly one of `field` (a row field with the expected calls) and "
                "`tool` (one expected call's name)",
            )
        if self.field is not None and self.input is not None:
            raise field_error("input", "`input` goes with `tool`; with `field` the row gives it")
        if self.tool is not None:
            self._tool = compile_template(self.tool, "tool")
        if isinstance(self.input, str):
            self._input = compile_template(self.input, "input")
        elif isinstance(self.input, dict) and self.match == "schema":
            try:
                self._validator(self.input)
            except _Invalid as err:
                raise field_error("input", str(err)) from None
        return self

    @property
    def row_variables(self) -> frozenset[str]:
        """Row fields read: the templates' variables, and `field`."""
        found = set(super().row_variables)
        if self.field is not None:
            found.add(self.field)
        return frozenset(found)

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        if (failed := no_response(ctx)) is not None:
            return failed
        try:
            expected = self._expected(ctx)
        except _Invalid as err:
            return Score.of_invalid(str(err))
        got = [
            {"name": c.get("name"), "input": c.get("input")}
            for c in ctx.response.get("tool_calls") or []
            if isinstance(c, Mapping)
        ]
        if not got and expected:
            stop = ctx.response.get("stop_reason")
            return Score.failure(f"no tool call in the response (stop_reason: {stop})", [])
        try:
            problem = self._explain(expected, got)
        except _Invalid as err:
            return Score.of_invalid(str(err))
        if problem is not None:
            return Score.failure(problem, got)
        if not expected:
            return Score.success("no tool call, as expected" if not got else "", got)
        n = len(expected)
        return Score.success(f"{n} expected call{'s' if n != 1 else ''} matched", got)

    # --- the expected calls -----------------------------------------------------------

    def _expected(self, ctx: ScoreContext) -> list[dict[str, Any]]:
        if self.field is None:
            return [self._templated(ctx)]
        where = f"field {self.field!r}"
        if self.field not in ctx.row:
            raise _Invalid(f"{where}: the row has no such field")
        value = ctx.row[self.field]
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as err:
                raise _Invalid(f"{where}: not JSON: {err}") from None
        calls = value if isinstance(value, list) else [value]
        calls = [_drop_nulls(call) for call in calls]
        for k, call in enumerate(calls):
            at = f"{where}: expected[{k}]"
            if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
                raise _Invalid(f"{at}: expected a mapping with a `name`, got {_json(call)}")
            if call.get("match", self.match) not in _MATCHES:
                raise _Invalid(f"{at}.match: expected one of {', '.join(_MATCHES)}")
            extra = set(call) - {"name", "input", "match"}
            if extra:
                raise _Invalid(f"{at}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
        return calls

    def _templated(self, ctx: ScoreContext) -> dict[str, Any]:
        private = self.__pydantic_private__
        try:
            call: dict[str, Any] = {"name": private["_tool"].render_row(ctx)}
            if private["_input"] is not None:
                text = private["_input"].render_row(ctx)
                try:
                    call["input"] = orjson.loads(text)
                except orjson.JSONDecodeError as err:
                    raise _Invalid(f"input: rendered {_json(text)}, not JSON: {err}") from None
            elif self.input is not None:
                call["input"] = self.input
        except ValueError as err:
            raise _Invalid(f"tool/input: {err}") from None
        return call

    def _validator(self, schema: Any) -> Any:
        if not isinstance(schema, Mapping | bool):
            raise _Invalid(f"a JSON Schema is a mapping, got {_json(schema)}")
        cache = self.__pydantic_private__["_validators"]
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        validator = cache.get(key)
        if validator is None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as err:
                raise _Invalid(f"not a valid JSON Schema: {err.message}") from None
            validator = Draft202012Validator(schema)
            if len(cache) < _MAX_VALIDATORS:
                cache[key] = validator
        return validator

    # --- matching ---------------------------------------------------------------------

    def _mismatch(self, want: Mapping[str, Any], have: Mapping[str, Any], j: int) -> str | None:
        """Why the response's call ``j`` is not the expected call ``want``, else None."""
        path = f"calls[{j}]"
        if have["name"] != want["name"]:
            return f"{path}.name: expected {_json(want['name'])}, got {_json(have['name'])}"
        if "input" not in want:
            return None
        mode = want.get("match", self.match)
        if mode != "schema":
            return first_mismatch(
                want["input"], have["input"], f"{path}.input", subset=mode == "subset"
            )
        try:
            errors = list(self._validator(want["input"]).iter_errors(have["input"]))
        except RecursionError:
            return f"{path}.input: nested too deeply to validate"
        if not errors:
            return None
        error = best_match(errors)
        where = f"{path}.input"
        for part in error.absolute_path:
            where = f"{where}[{part}]" if isinstance(part, int) else _key(where, part)
        return f"{where}: {error.message[:160]}"

    def _explain(self, expected: list[Mapping[str, Any]], got: list[dict[str, Any]]) -> str | None:
        if self.order == "in_order":
            return self._in_order(expected, got)
        return self._any_order(expected, got)

    def _in_order(self, expected: list[Mapping[str, Any]], got: list[dict[str, Any]]) -> str | None:
        if not self.allow_extra:
            for j, (want, have) in enumerate(zip(expected, got, strict=False)):
                problem = self._mismatch(want, have, j)
                if problem:
                    return problem
            return _count_problem(expected, got)
        j = 0
        for k, want in enumerate(expected):
            start = j
            while j < len(got) and self._mismatch(want, got[j], j) is not None:
                j += 1
            if j == len(got):
                return _unmatched(k, want, got, start, self._mismatch)
            j += 1
        return None

    def _any_order(
        self, expected: list[Mapping[str, Any]], got: list[dict[str, Any]]
    ) -> str | None:
        fits = [
            [j for j, have in enumerate(got) if self._mismatch(want, have, j) is None]
            for want in expected
        ]
        owner: dict[int, int] = {}  # response call -> expected call (a maximum matching)

        def place(k: int, seen: set[int]) -> bool:
            for j in fits[k]:
                if j not in seen:
                    seen.add(j)
                    if j not in owner or place(owner[j], seen):
                        owner[j] = k
                        return True
            return False

        placed = {k for k in range(len(expected)) if place(k, set())}
        for k, want in enumerate(expected):
            if k not in placed:
                return _unmatched(k, want, got, 0, self._mismatch, any_order=True)
        if not self.allow_extra:
            for j, have in enumerate(got):
                if j not in owner:
                    return f"calls[{j}] ({have['name']}) was not expected"
        return None


def _drop_nulls(value: Any) -> Any:
    """``value`` without mapping keys whose value is null, at any depth: a Parquet struct
    column fills the keys a row lacks (but other rows have) with null."""
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _count_problem(expected: list[Mapping[str, Any]], got: list[dict[str, Any]]) -> str | None:
    if len(got) > len(expected):
        j = len(expected)
        return (
            f"expected {len(expected)} call{'s' if len(expected) != 1 else ''}, got {len(got)}: "
            f"calls[{j}] ({got[j]['name']}) was not expected"
        )
    if len(got) < len(expected):
        k = len(got)
        return (
            f"expected {len(expected)} calls, got {len(got)}: no call for expected[{k}] "
            f"({expected[k]['name']})"
        )
    return None


def _unmatched(
    k: int,
    want: Mapping[str, Any],
    got: list[dict[str, Any]],
    start: int,
    mismatch: Any,
    *,
    any_order: bool = False,
) -> str:
    """Why expected call ``k`` matched no call (from ``start``): the first call to the
    same tool and its mismatch, else that no call names the tool."""
    same = [j for j in range(start, len(got)) if got[j]["name"] == want["name"]]
    for j in same:
        problem = mismatch(want, got[j], j)
        if problem is not None:
            return f"expected[{k}] ({want['name']}) matched no call: {problem}"
    if same:
        return f"expected[{k}] ({want['name']}): each call to it matches another expected call"
    names = ", ".join(c["name"] or "?" for c in got[start:]) or "none"
    after = "" if any_order or start == 0 else f" after calls[{start - 1}]"
    return f"expected[{k}] ({want['name']}): no call to it{after} (calls: {names})"
