"""A prompt variant's tools and output format in its requests; a row's own tools.

``variant_params(params, variant)`` adds what a variant sets for every row (``tools``,
``tool_choice``, ``output_config.format``) to a (variant, model) pair's merged params:
static, so the grid's prompt-cache planning sees the variant's tools as the start of
the prefix and may put its breakpoint on the last one.

``RowTools`` reads a row's tools (``tools_field``) and checks them as config tools are
checked (``config._tools``), plus what only the whole request shows: a name that a
static tool already has, a ``tool_choice`` naming a tool the request lacks. A bad row
is a ``RenderError`` naming the variant, the row id and the field, raised while the
grid is expanded, so ``validate`` reports it and ``run`` sends nothing. Rows usually
share a handful of tool lists: each distinct list is checked once (``jsonschema``'s
schema check is the costly part), remembered by its canonical JSON up to
``MAX_REMEMBERED`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from batchmark._errors import RenderError
from batchmark.config._schema import PromptVariant
from batchmark.config._tools import at_text, tool_choice_problems, tool_problems

__all__ = ["MAX_REMEMBERED", "RowTools", "add_row_tools", "variant_params", "without_nulls"]

MAX_REMEMBERED = 4096
"""Distinct row tool lists whose check is remembered (memory stays bounded)."""


def variant_params(params: dict[str, Any], variant: PromptVariant) -> dict[str, Any]:
    """``params`` (a pair's merged params, modified) with the variant's tools,
    ``tool_choice`` and output format added; the config has refused a variant that
    sets one of them when ``params`` does too."""
    tools = variant.static_tools
    if tools is not None:
        params["tools"] = list(tools)
    if variant.tool_choice is not None:
        params["tool_choice"] = variant.tool_choice
    fmt = variant.output_format
    if fmt is not None:
        output = params.get("output_config")
        params["output_config"] = {**(output if isinstance(output, Mapping) else {}), "format": fmt}
    return params


def add_row_tools(params: dict[str, Any], tools: list[Any] | None) -> None:
    """Append a row's tools to a request's (static) tools."""
    if tools:
        params["tools"] = [*(params.get("tools") or ()), *tools]


def without_nulls(value: Any) -> Any:
    """``value`` with every mapping key whose value is null left out, at any depth.

    A Parquet struct column (or an Arrow table built from one) gives every row the keys
    of all rows, a key a row lacks filled in with null. A null in a tool definition means
    nothing the API needs (``cache_control: null`` is "none"), so nulls are left out
    rather than sent as ``properties: {city: null}``."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class RowTools:
    """The tools of each row for one (variant, model) pair, checked."""

    def __init__(
        self,
        variant: PromptVariant,
        static: list[Any] | None,
        tool_choice: Any,
        file: str,
        checked: dict[bytes, str | None],
    ) -> None:
        assert variant.tools_field is not None
        self.field = variant.tools_field
        self.variant = variant.name
        self.static_names = [t["name"] for t in static or () if isinstance(t, Mapping)]
        self.tool_choice = tool_choice
        self.file = file
        self._checked = checked
        """Shared by the pairs of one variant: canonical JSON -> first problem or None."""

    def __call__(self, row_id: str, data: Mapping[str, Any]) -> list[Any] | None:
        """The row's tools, or None; raises ``RenderError``."""
        if self.field not in data:
            shown = ", ".join(sorted(str(k) for k in data)[:30])
            self._fail(row_id, "the row has no such field", f"the row's fields: {shown}")
        value = data[self.field]
        if isinstance(value, str):  # a CSV cell, or JSON kept as text
            try:
                value = orjson.loads(value) if value.strip() else None
            except orjson.JSONDecodeError as err:
                self._fail(row_id, f"not a JSON list of tools: {err}")
        else:
            value = without_nulls(value)
        if value is None or value == []:
            tools: list[Any] | None = None
        else:
            problem = self._check(value)
            if problem is not None:
                self._fail(row_id, problem)
            tools = value
        if self.tool_choice is not None:
            names = [*self.static_names, *(t["name"] for t in tools or ())]
            found = tool_choice_problems(self.tool_choice, names)
            if found:
                self._fail(row_id, f"tool_choice: {found[0].message}")
        return tools

    def _check(self, value: Any) -> str | None:
        try:
            key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON data (a Parquet value of another type)
            key = None
        if key is not None and key in self._checked:
            problem = self._checked[key]
        else:
            found = tool_problems(value)
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            problem = (
                f"{at_text(found[0].at, 'tools')}: {found[0].message}{more}" if found else None
            )
            if key is not None and len(self._checked) < MAX_REMEMBERED:
                self._checked[key] = problem
        if problem is None and isinstance(value, list):
            for i, tool in enumerate(value):
                if tool.get("name") in self.static_names:
                    return (
                        f"tools[{i}].name: tool name {tool['name']!r} is also a static tool's "
                        "(the variant's or params' tools)"
                    )
                if tool.get("cache_control") is not None:
                    return (
                        f"tools[{i}].cache_control: a row's tools take no cache breakpoint "
                        "(they differ from row to row; batchmark places the breakpoint on "
                        "the static tools)"
                    )
        return problem

    def _fail(self, row_id: str, detail: str, hint: str | None = None) -> NoReturn:
        raise RenderError(
            self.file,
            self.variant,
            row_id,
            f"tools_field {self.field!r}: {detail}",
            hint or "a row's tools are a list of {name, description, input_schema} mappings",
        )
