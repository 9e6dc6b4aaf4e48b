"""Conversations from the data: a row field holding the messages of a chat.

A prompt variant's ``messages`` may hold an entry ``{field: NAME}``; each row's value of
``NAME`` is read here and its messages take that place in the request. The value is a
list of ``{role, content}``, or a string holding that list as JSON (a CSV cell).

Checked per row, before anything is sent; each problem is a ``RenderError`` naming the
dataset file, the variant, the row, the field and the position in the conversation:

- the value is a list (or JSON text of one) of objects with exactly ``role`` and
  ``content``; ``role`` is ``user``, ``assistant`` or ``system`` (the SDK's
  ``SystemMessageParam``: text only; a system prompt for every row belongs in the
  variant's ``system``);
- ``content`` is a non-empty string (not only whitespace), or a non-empty list of
  content blocks, each an object whose ``type`` is one the API takes and which has the
  keys that type requires (``BLOCK_KEYS``: the SDK's ``*BlockParam`` types, a test
  compares them; an image needs its ``source``, a tool_use its ``id``, ``name`` and
  ``input``); a ``text`` block's ``text`` is a non-empty string (the API refuses empty
  text: "text content blocks must be non-empty");
- each ``tool_result`` answers a ``tool_use`` of the assistant turn just before it, and
  a ``tool_use`` followed by another turn is answered in that turn (``_check_tool_pairs``);
- the conversation is not empty unless the variant has other messages.

Consecutive turns of one role are sent as they are: the API combines them into one
turn (SDK ``messages.create`` docstring: "Consecutive `user` or `assistant` turns in
your request will be combined into a single turn"). A conversation that ends with an
assistant message pre-fills the reply, which some models refuse: the model catalog's
request rules check that for every request (``validate``, ``run``).

Keys whose value is null are dropped from messages and blocks: a Parquet file holds a
column of objects as one struct type, which gives every block every key seen in the
column (a ``tool_use`` block read back carries ``text: null``); the API takes an absent
key, not a null one. (``datasets`` reads such a JSONL column as JSON values, keys as
written.) Values are data: nothing in them is rendered as a template.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchmark._errors import RenderError

__all__ = ["BLOCK_KEYS", "ROLES", "conversation_of"]

ROLES = ("user", "assistant", "system")
"""The roles of the SDK's ``MessageParam`` (2.16: user, assistant, and system messages of
text only, ``SystemMessageParam``)."""
_SPEC_SOURCES = {
    "image": frozenset({"path", "url", "base64"}),
    "document": frozenset({"path", "url", "base64", "text"}),
}
"""The keys of a block *spec* (docs/content.md) in place of the API's ``source``."""
BLOCK_KEYS: dict[str, frozenset[str]] = {
    kind: frozenset(keys)
    for kind, keys in {
        "text": ("text",),
        "image": ("source",),
        "document": ("source",),
        "search_result": ("content", "source", "title"),
        "thinking": ("signature", "thinking"),
        "redacted_thinking": ("data",),
        "tool_use": ("id", "input", "name"),
        "tool_result": ("tool_use_id",),
        "server_tool_use": ("id", "input", "name"),
        "web_search_tool_result": ("content", "tool_use_id"),
        "web_fetch_tool_result": ("content", "tool_use_id"),
        "code_execution_tool_result": ("content", "tool_use_id"),
        "bash_code_execution_tool_result": ("content", "tool_use_id"),
        "text_editor_code_execution_tool_result": ("content", "tool_use_id"),
        "tool_search_tool_result": ("content", "tool_use_id"),
        "container_upload": ("file_id",),
    }.items()
}
"""A message content block's ``type`` -> the keys it requires besides ``type`` (anthropic
2.16 ``types/message_content_param.py``, each ``*BlockParam``'s ``Required`` keys)."""
_HINT = (
    "each message is {role: user|assistant|system, content: text or a list of content "
    "blocks}; "
    "fix the row's data"
)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


class _Where:
    """What a conversation error names: file, variant, row, field."""

    def __init__(self, file: str | None, variant: str, row_id: str, field: str) -> None:
        self.file, self.variant, self.row_id, self.field = file, variant, row_id, field

    def error(self, detail: str, hint: str = _HINT) -> RenderError:
        return RenderError(
            self.file, self.variant, self.row_id, f"field {self.field!r}: {detail}", hint
        )


def conversation_of(
    data: dict[str, Any],
    field: str,
    *,
    file: str | None,
    variant: str,
    row_id: str,
    alone: bool,
) -> list[dict[str, Any]]:
    """The checked messages of ``data[field]`` (new objects: the row is not changed).

    ``alone``: the variant has no other messages, so an empty conversation is an error.
    Raises ``RenderError``.
    """
    where = _Where(file, variant, row_id, field)
    if field not in data or data[field] is None:
        raise where.error(
            "is null or absent in this row",
            f"every row needs a conversation in {field!r} (a list of messages)",
        )
    value = data[field]
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            raise where.error(f"holds text that is not JSON ({err})") from None
    if not isinstance(value, list):
        raise where.error(f"should be a list of messages, not {type(value).__name__}")
    if not value and alone:
        raise where.error("is an empty conversation", "the API needs at least one message")
    messages = [_message(where, i, m) for i, m in enumerate(value)]
    _check_tool_pairs(where, messages)
    return messages


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [str(b.get(key)) for b in content if b["type"] == kind]


def _check_tool_pairs(where: _Where, messages: list[dict[str, Any]]) -> None:
    """Each ``tool_result`` answers a ``tool_use`` of the assistant turn just before it,
    and each ``tool_use`` followed by a turn in the conversation is answered there (the
    API's "Each `tool_result` block must have a corresponding `tool_use` block in the
    previous message" and "`tool_use` ids were found without `tool_result` blocks
    immediately after"). Consecutive messages of one role are one turn, as the API
    combines them. A ``tool_use`` that ends the conversation is not judged here."""
    turns: list[tuple[str, int, list[str], list[str]]] = []  # role, first index, uses, results
    for i, m in enumerate(messages):
        uses, results = _ids(m, "tool_use", "id"), _ids(m, "tool_result", "tool_use_id")
        if turns and turns[-1][0] == m["role"]:
            role, first, u, r = turns[-1]
            turns[-1] = (role, first, u + uses, r + results)
        else:
            turns.append((m["role"], i, uses, results))
    hint_result = "each tool_result answers a tool_use of the assistant message just before it"
    for k, (role, first, _, results) in enumerate(turns):
        if role != "user":
            continue
        prev = turns[k - 1] if k > 0 else None
        called = prev[2] if prev is not None else []
        for tool_id in results:
            if tool_id not in called:
                at = first + next(
                    j
                    for j, m in enumerate(messages[first:])
                    if tool_id in _ids(m, "tool_result", "tool_use_id")
                )
                raise where.error(
                    f"message {at} has a tool_result for {tool_id[:64]}, which the message "
                    "before it did not call",
                    hint_result,
                )
        for tool_id in called:
            if tool_id not in results:
                assert prev is not None
                at = prev[1] + next(
                    j
                    for j, m in enumerate(messages[prev[1] :])
                    if tool_id in _ids(m, "tool_use", "id")
                )
                raise where.error(
                    f"message {at} calls {tool_id[:64]}, but the next message has no "
                    "tool_result for it",
                    "each tool_use needs a tool_result in the next (user) message",
                )


def _message(where: _Where, i: int, message: Any) -> dict[str, Any]:
    at = f"message {i}"
    if not isinstance(message, dict):
        raise where.error(f"{at} should be an object, not {type(message).__name__}")
    message = _drop_nulls(message)
    extra = sorted(str(k) for k in message if k not in ("role", "content"))
    if extra:
        raise where.error(f"{at} has keys the API does not take: {', '.join(extra)}")
    role = message.get("role")
    if role not in ROLES:
        raise where.error(f"{at} has role {role!r}: expected 'user', 'assistant' or 'system'")
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            raise where.error(f"{at} ({role}) has empty content", "the API refuses empty messages")
        return {"role": role, "content": content}
    if not isinstance(content, list):
        got = "nothing" if content is None else type(content).__name__
        raise where.error(f"{at} ({role}) content should be text or a list of blocks, not {got}")
    if not content:
        raise where.error(f"{at} ({role}) has an empty list of blocks")
    for j, block in enumerate(content):
        _check_block(where, f"{at} block {j}", block)
        if role == "system" and block["type"] != "text":
            raise where.error(
                f"{at} block {j} is a {block['type']} block in a system message",
                "a system message holds text only (SDK SystemMessageParam)",
            )
    return {"role": role, "content": content}


def _check_block(where: _Where, at: str, block: Any) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise where.error(f"{at} should be an object with a string `type`")
    kind = block["type"]
    required = BLOCK_KEYS.get(kind)
    if required is None:
        raise where.error(
            f"{at} has type {kind[:40]!r}, which the API does not take",
            f"a content block's type is one of {', '.join(BLOCK_KEYS)}",
        )
    if kind in _SPEC_SOURCES and _SPEC_SOURCES[kind].intersection(block):
        return  # a block spec (a file, a URL, base64): runs._content resolves and checks it
    missing = sorted(required.difference(block))
    if missing:
        raise where.error(f"{at} ({kind}) lacks {', '.join(missing)}")
    if block["type"] == "text":
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            raise where.error(f"{at} is a text block without text", "the API refuses empty text")
