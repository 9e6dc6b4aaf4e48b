"""How a response is stored: compact (``normalize_message``) and read back whole
(``expand_message``). Plain data only: reading a run's responses (``status``, ``report``,
``validate``'s checks, scoring) imports no SDK (issue 18)."""

from __future__ import annotations

from typing import Any

__all__ = ["expand_message", "normalize_message"]


_ZERO_USAGE = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_ZERO_CACHE_CREATION = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


def normalize_message(message: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Message (as JSON) an eval needs, as plain data, stored compactly.

    Fields at their default (no tool calls, no thinking, no stop sequence, zero token
    counts) are left out: a stored response is about half the size, which is most of
    what writing it costs. ``expand_message`` puts the defaults back when it is read.
    ``text`` joins the text blocks (the answer); ``thinking`` joins the thinking blocks'
    text, apart from it.
    """
    content = message.get("content") or ()
    out: dict[str, Any] = {
        "message_id": message.get("id"),
        "response_model": message.get("model"),
    }
    if len(content) == 1 and content[0].get("type") == "text":  # by far the common case
        out["text"] = content[0].get("text", "")
    else:
        texts: list[str] = []
        thoughts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in content:
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                tool_calls.append(
                    {"id": block.get("id"), "name": block.get("name"), "input": block.get("input")}
                )
            elif kind == "thinking":
                thoughts.append(block.get("thinking", ""))
        out["text"] = "".join(texts)
        if tool_calls:
            out["tool_calls"] = tool_calls
        if thoughts:
            out["thinking"] = "\n".join(thoughts)
    out["stop_reason"] = message.get("stop_reason")
    if message.get("stop_sequence") is not None:
        out["stop_sequence"] = message["stop_sequence"]
    raw = message.get("usage") or {}
    usage = {k: raw[k] for k in _ZERO_USAGE if raw.get(k)}
    creation = raw.get("cache_creation") or {}
    if any(creation.get(k) for k in _ZERO_CACHE_CREATION):
        usage["cache_creation"] = {k: creation.get(k) or 0 for k in _ZERO_CACHE_CREATION}
    if raw.get("service_tier") is not None:
        usage["service_tier"] = raw["service_tier"]
    out["usage"] = usage
    return out


_USAGE_DEFAULTS: dict[str, Any] = {**dict.fromkeys(_ZERO_USAGE, 0), "service_tier": None}
_CACHE_CREATION_DEFAULTS: dict[str, int] = dict.fromkeys(_ZERO_CACHE_CREATION, 0)


def expand_message(data: dict[str, Any]) -> dict[str, Any]:
    """A stored (compact) message with every field present: the response record's shape.

    Records stored in full (by earlier versions) come back unchanged. Modifies ``data``.
    """
    if "tool_calls" not in data:
        data["tool_calls"] = []
    if "thinking" not in data:
        data["thinking"] = None
    if "stop_sequence" not in data:
        data["stop_sequence"] = None
    stored = data.get("usage") or {}
    usage = {**_USAGE_DEFAULTS, **stored}
    creation = stored.get("cache_creation")
    usage["cache_creation"] = (
        {**_CACHE_CREATION_DEFAULTS, **creation} if creation else dict(_CACHE_CREATION_DEFAULTS)
    )
    data["usage"] = usage
    return data
