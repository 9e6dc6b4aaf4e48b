"""A minimal valid instance of a JSON schema, for forced ``tool_use`` inputs.

Covers what tool schemas use: ``type`` (one or a list), ``properties`` + ``required``,
``items`` + ``minItems``, ``enum``, ``const``, ``default``, string and number bounds,
``anyOf`` / ``oneOf`` / ``allOf`` and local ``$ref``s (``#/$defs/…``). Only required
properties are filled. Patterns and formats are not honoured [unverified against tools
that need them]: pass a scripted ``tool_use.input`` for those.
"""

from __future__ import annotations

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
    low = schema.get("minimum")
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], int | float):
        low = schema["exclusiveMinimum"] + (1 if kind == "integer" else 0.5)
    high = schema.get("maximum")
    value = 0 if low is None else low
    if high is not None and value > high:
        value = high
    if kind == "integer":
        return int(-(-value // 1))
    return value


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
