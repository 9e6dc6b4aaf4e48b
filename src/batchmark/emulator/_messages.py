"""Messages requests: validate ``params`` and turn a responder's reply into a Message.

The reply is shaped as the real API would: a forced ``tool_choice`` yields one
``tool_use`` block, a request that thinks (``_thinking``) gets a thinking block before
the answer unless the responder gave one, ``stop_sequences`` cut the text at the first
occurrence, ``max_tokens`` truncates thinking and text together by the token
approximation, and ``usage`` carries every key of the SDK's ``Usage`` type (thinking
counted in ``output_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchmark.config._models import Catalog
from batchmark.config._tokens import approx_tokens, block_tokens
from batchmark.emulator._cache import CacheUsage
from batchmark.emulator._content import content_error, images_error
from batchmark.emulator._responders import Reply, Responder
from batchmark.emulator._schema import minimal_instance
from batchmark.emulator._structured import output_format_error, structured
from batchmark.emulator._thinking import (
    THINKING_TYPES,
    display,
    signature,
    thinking_block,
    thinking_on,
)

__all__ = ["build_message", "count_tokens_error", "params_error"]

SAMPLING_VERSION = "2023-06-01"
"""The only API version that still accepts temperature / top_p / top_k [unverified]."""
_SAMPLING_KEYS = ("temperature", "top_p", "top_k")
_TOOL_CHOICES = ("auto", "any", "tool", "none")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _messages_error(messages: Any) -> str | None:
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list) or not messages:
        return "messages: Input should be a non-empty list of messages"
    blocks = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be an object"
        role = message.get("role")
        if role not in ("user", "assistant", "system"):  # SDK MessageParam (2.16)
            return f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'"
        content = message.get("content")
        if not isinstance(content, str | list):
            return f"messages.{i}.content: Input should be a valid string or list of blocks"
        if role == "system" and isinstance(content, list):  # SystemMessageParam: text only
            kinds = [b.get("type") if isinstance(b, dict) else None for b in content]
            if any(kind != "text" for kind in kinds):
                return f"messages.{i}.content: a system message takes text blocks only"
        if isinstance(content, list):
            blocks = True
            problem = content_error(content, f"messages.{i}.content")
            if problem:
                return problem
    return images_error(messages) if blocks else None


def _tools_error(params: dict[str, Any]) -> str | None:
    tools = params.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, dict) and t.get("name") for t in tools)
    ):
        return "tools: Input should be a list of tools, each with a name"
    choice = params.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    names = {t["name"] for t in tools or []}
    if choice["type"] == "any" and not names:
        return "tool_choice: 'any' requires at least one tool in tools"
    if choice["type"] == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: tool {choice.get('name')!r} is not in tools"
    return None


def params_error(params: dict[str, Any], api_version: str, *, in_batch: bool) -> str | None:
    """The first problem with a Messages request, worded like the API's 400, or None."""
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    max_tokens = params.get("max_tokens")
    if max_tokens is None:
        return "max_tokens: Field required"
    if not _is_int(max_tokens) or max_tokens < 1:
        return "max_tokens: Input should be an integer greater than or equal to 1"
    problem = _messages_error(params.get("messages"))
    if problem:
        return problem
    if params.get("stream"):
        return (
            "stream: batch requests cannot be streamed"
            if in_batch
            else "stream: the emulator does not stream responses; send stream=false"
        )
    if api_version != SAMPLING_VERSION:
        for key in _SAMPLING_KEYS:
            if key in params:
                return (
                    f"{key}: Extra inputs are not permitted (removed in anthropic-version "
                    f"{api_version}; pin {SAMPLING_VERSION} to send it)"
                )
    if not isinstance(params.get("system", ""), str | list):
        return "system: Input should be a valid string or list of text blocks"
    stops = params.get("stop_sequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        return "stop_sequences: Input should be a list of strings"
    return (
        _thinking_error(params.get("thinking"))
        or _tools_error(params)
        or output_format_error(params)
    )


_THINKING_TYPES = ("enabled", "adaptive", "disabled", "between_tools")  # SDK ThinkingConfigParam


def _thinking_error(thinking: Any) -> str | None:
    """The shape of ``thinking`` (the SDK's ``ThinkingConfigParam`` union); the model
    rules on it are the catalog's (``config._rules``)."""
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        return "thinking: Input should be a valid dictionary or object to extract fields from"
    kind = thinking.get("type")
    if kind not in _THINKING_TYPES:
        allowed = ", ".join(f"'{t}'" for t in _THINKING_TYPES)
        return (
            f"thinking.type: Input tag {kind!r} found using 'type' does not match any of "
            f"the expected tags: {allowed}"
        )
    if kind == "enabled" and not _is_int(thinking.get("budget_tokens")):
        return "thinking.enabled.budget_tokens: Field required (an integer)"
    if thinking.get("display") not in (None, "summarized", "omitted"):
        return "thinking.display: Input should be 'summarized' or 'omitted'"
    return None


def count_tokens_error(params: dict[str, Any]) -> str | None:
    """The first problem with a count_tokens request, or None."""
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    return _messages_error(params.get("messages")) or _tools_error(params)


def _forced_tool(params: dict[str, Any], reply: Reply) -> dict[str, Any] | None:
    choice = params.get("tool_choice") or {}
    if choice.get("type") not in ("any", "tool"):
        return None
    tools = {t["name"]: t for t in params.get("tools") or []}
    proposed = [b for b in reply.content if b.get("type") == "tool_use" and b["name"] in tools]
    name = choice.get("name") or (proposed[0]["name"] if proposed else next(iter(tools)))
    for block in proposed:
        if block["name"] == name:
            return {"name": name, "input": block.get("input", {})}
    return {"name": name, "input": minimal_instance(tools[name].get("input_schema") or {})}


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    found = [(text.find(s), s) for s in stops if s and s in text]
    if not found:
        return text, None
    index, stop = min(found)
    return text[:index], stop


def _truncate(text: str, tokens: int) -> str:
    return text.encode("utf-8")[: tokens * 4].decode("utf-8", errors="ignore")


def _shape(
    params: dict[str, Any], reply: Reply, catalog: Catalog | None
) -> tuple[list[dict[str, Any]], str, str | None]:
    """Content blocks, stop_reason and stop_sequence after thinking, stops and max_tokens."""
    forced = _forced_tool(params, reply)
    if forced is not None:
        return [{"type": "tool_use", **forced}], "tool_use", None
    content = reply.content
    if thinking_on(params, catalog) and not any(b["type"] in THINKING_TYPES for b in content):
        content = (thinking_block(params), *content)
    budget = params["max_tokens"]  # thinking and text together (docs: a hard limit)
    stops = params.get("stop_sequences") or []
    blocks: list[dict[str, Any]] = []
    reason = reply.stop_reason or ("tool_use" if _has_tool_use(reply) else "end_turn")
    for block in content:
        if block["type"] == "thinking":
            tokens = approx_tokens(block["thinking"])
            if tokens > budget:
                blocks.append({**block, "thinking": _truncate(block["thinking"], budget)})
                return blocks, "max_tokens", None
            budget -= tokens
            blocks.append(block)
            continue
        if block["type"] == "redacted_thinking":  # opaque: counted, never cut
            budget -= min(budget, block_tokens(block))
        if block["type"] != "text":
            blocks.append(block)
            continue
        text, stop = _cut_at_stop(block["text"], stops)
        if approx_tokens(text) > budget:
            blocks.append({**block, "text": _truncate(text, budget)})
            return blocks, "max_tokens", None
        budget -= approx_tokens(text)
        blocks.append({**block, "text": text})
        if stop is not None:
            return blocks, "stop_sequence", stop
    return blocks, reason, None


def _has_tool_use(reply: Reply) -> bool:
    return any(b.get("type") == "tool_use" for b in reply.content)


def _wire_block(
    block: dict[str, Any], tool_id: Callable[[], str], model: str, shown: str
) -> dict[str, Any]:
    if block["type"] == "text":
        return {"type": "text", "text": block["text"], "citations": None}
    if block["type"] == "thinking":
        text = block["thinking"]
        return {
            "type": "thinking",
            "thinking": "" if shown == "omitted" else text,
            "signature": block.get("signature") or signature(model, text),
        }
    if block["type"] == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block["data"]}
    return {
        "type": "tool_use",
        "id": block.get("id") or tool_id(),
        "name": block["name"],
        "input": block.get("input", {}),
        "caller": {"type": "direct"},  # [unverified] what the service sends for client tools
        "toolset_name": None,
    }


def _usage(
    cache: CacheUsage, output_tokens: int, thinking_tokens: int, service_tier: str
) -> dict[str, Any]:
    return {
        "input_tokens": cache.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache.creation_5m + cache.creation_1h,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.creation_5m,
            "ephemeral_1h_input_tokens": cache.creation_1h,
        },
        "service_tier": service_tier,
        "inference_geo": None,
        "server_tool_use": None,
        "output_tokens_details": {"thinking_tokens": thinking_tokens},
        "speed": "standard",
    }


def build_message(
    params: dict[str, Any],
    responder: Responder,
    *,
    message_id: str,
    tool_id: Callable[[], str],
    cache: CacheUsage,
    service_tier: str,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """The ``Message`` JSON for valid ``params`` (raises ``ResponderError``); ``catalog``:
    the emulator's model catalog (default: batchmark's), for the models that think by
    default and how they show it."""
    reply = structured(params, responder(params))
    blocks, stop_reason, stop_sequence = _shape(params, reply, catalog)
    thinks = [b for b in blocks if b["type"] in THINKING_TYPES]
    model = params["model"]
    shown = display(params, catalog) if thinks else "summarized"
    content = [_wire_block(b, tool_id, model, shown) for b in blocks]
    thinking_tokens = sum(block_tokens(b) for b in thinks)
    output_tokens = max(1, sum(block_tokens(b) for b in blocks))
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": None,
        "container": None,
        "diagnostics": None,
        "usage": _usage(cache, output_tokens, thinking_tokens, service_tier),
    }
