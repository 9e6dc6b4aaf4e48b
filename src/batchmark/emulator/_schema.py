"""A minimal valid instance of a JSON schema, for forced ``tool_use`` inputs.

Covers what tool schemas use: ``type`` (one or a list), ``properties`` + ``required``,
``items`` + ``minItems``, ``enum``, ``const``, ``default``, string and number bounds,
``anyOf`` / ``oneOf`` / ``allOf`` and local ``$ref``s (``#/$defs/…``). Only required
properties are filled. Patterns and formats are not honoured [unverified against tools
that need them]: pass a scripted ``tool_use.input`` for those.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["minimal_instance"]

_MAX_DEPTH = 32


def minimal_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """The smallest value that satisfies ``schema`` (best effort, deterministic)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    root = schema if root is None else root
    if "$ref" in schema:
        return minimal_instance(_resolve_ref(schema["$ref"], root), root, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged = _merge(merged, part)
        return minimal_instance(merged, root, depth + 1)
    return _of_type(_first_type(schema), schema, root, depth)


def _first_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        return kinds[0]
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "string" if "minLength" in schema else "object"


def _of_type(kind: str, schema: dict[str, Any], root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            name: minimal_instance(props.get(name, {}), root, depth + 1)
            for name in schema.get("required") or []
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [minimal_instance(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind == "string":
        return "a" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return _number(kind, schema)
    if kind == "boolean":
        return False
    return None


def _number(kind: str, schema: dict[str, Any]) -> int | float:
    """The value nearest 0 within the schema's bounds (inclusive and exclusive); for an
    integer, the whole number nearest 0 within them."""

    def bound(key: str) -> float | None:
        value = schema.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return value if ok else None

    low, high = bound("minimum"), bound("maximum")
    xlow, xhigh = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    if kind == "integer":
        lows = [math.ceil(low) if low is not None else None]
        lows.append(math.floor(xlow) + 1 if xlow is not None else None)
        highs = [math.floor(high) if high is not None else None]
        highs.append(math.ceil(xhigh) - 1 if xhigh is not None else None)
        least = max((v for v in lows if v is not None), default=None)
        most = min((v for v in highs if v is not None), default=None)
        value = 0 if least is None else max(0, least)
        return value if most is None else min(value, most)

    def inside(v: float) -> bool:
        above = (low is None or v >= low) and (xlow is None or v > xlow)
        return above and (high is None or v <= high) and (xhigh is None or v < xhigh)

    bottom = max((v for v in (low, xlow) if v is not None), default=None)
    top = min((v for v in (high, xhigh) if v is not None), default=None)
    for candidate in (0, bottom, top):  # 0, else an inclusive bound
        if candidate is not None and inside(candidate):
            return candidate
    if bottom is not None and top is not None:
        return (bottom + top) / 2
    if bottom is not None:
        return bottom + 1
    return top - 1 if top is not None else 0


def _merge(left: dict[str, Any], right: Any) -> dict[str, Any]:
    if not isinstance(right, dict):
        return left
    merged = {**left, **right}
    merged["properties"] = {**left.get("properties", {}), **right.get("properties", {})}
    merged["required"] = [*left.get("required", []), *right.get("required", [])]
    return merged


def _resolve_ref(ref: str, root: Any) -> Any:
    if not ref.startswith("#/"):
        return {}
    node = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node
