"""Structured outputs: a request's ``output_config.format`` and the answer's text.

The real API constrains decoding, so an answer to a request with ``output_config:
{format: {type: json_schema, schema}}`` is always JSON valid against the schema. The
emulator stands in for that where no responder had an opinion: a text block that only
echoes the last user message (the ``echo`` responder, a scripted file's fallback) becomes
the schema's minimal instance (``_schema.minimal_instance``), compact JSON. A text a
responder chose is left as it is, JSON or not, valid or not, so that a test can show
what a scorer makes of a bad answer [the real API would not send one].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from batchmark.emulator._responders import Reply, last_user_text
from batchmark.emulator._schema import minimal_instance

__all__ = ["output_format_error", "structured"]


def _schema_of(params: Mapping[str, Any]) -> Any:
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    return fmt.get("schema") if isinstance(fmt, dict) else None


def output_format_error(params: Mapping[str, Any]) -> str | None:
    """The problem with a request's ``output_config`` shape, worded like a 400, or None."""
    config = params.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return "output_config.format.type: Input should be 'json_schema'"
    if not isinstance(fmt.get("schema"), dict):
        return "output_config.format.schema: Input should be a valid dictionary"
    return None


def structured(params: Mapping[str, Any], reply: Reply) -> Reply:
    """``reply`` with an echoing text block replaced by JSON the request's schema
    accepts; unchanged when the request asks for no format."""
    schema = _schema_of(params)
    if not isinstance(schema, dict):
        return reply
    echoed = last_user_text(params)
    content = []
    for block in reply.content:
        if block.get("type") == "text" and block.get("text") == echoed:
            block = {**block, "text": orjson.dumps(minimal_instance(schema)).decode()}
        content.append(block)
    return Reply(tuple(content), reply.stop_reason)
