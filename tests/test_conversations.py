"""The content block types a row's conversation may hold, against the installed SDK."""

from __future__ import annotations

import typing
from typing import Required

from anthropic.types.message_content_param import MessageContentParam

from batchmark._conversations import BLOCK_KEYS


def _sdk_blocks() -> dict[str, frozenset[str]]:
    """Each ``*BlockParam`` of the SDK's message content: its type and required keys."""
    (blocks,) = [a for a in typing.get_args(MessageContentParam) if a is not str]
    (union,) = typing.get_args(blocks)
    out = {}
    for param in typing.get_args(union):
        if typing.get_origin(param) is typing.Annotated:  # response blocks, same types
            continue
        hints = typing.get_type_hints(param, include_extras=True)
        (kind,) = typing.get_args(typing.get_args(hints["type"])[0])
        required = {k for k, v in hints.items() if typing.get_origin(v) is Required}
        out[kind] = frozenset(required - {"type"})
    return out


def test_the_block_types_and_required_keys_are_the_sdks() -> None:
    assert BLOCK_KEYS == _sdk_blocks()
