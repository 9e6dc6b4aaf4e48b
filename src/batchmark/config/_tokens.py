"""A documented, deterministic token approximation.

The emulator reports ``usage`` with it and the harness uses it to decide whether a
shared prompt prefix is long enough to be cached. It is not a real tokenizer: one
token per 4 bytes of UTF-8 text (rounded up), plus a small fixed overhead per message
and per content block. Real Claude tokenizers give different numbers (Claude 4.7+
models use ~30% more tokens for the same text); use ``count_tokens`` on the real API
when exact figures matter.

An ``image`` block counts ``width * height / 750`` tokens after the API's scaling, a
``document`` ``PDF_PAGE_TOKENS`` per PDF page or its plain text's tokens (``_media``
says where each figure comes from); their base64 data is never counted as text.

A ``thinking`` block counts its thinking text (not its signature), a
``redacted_thinking`` block its opaque ``data``: in an answer these are output tokens
(the API bills thinking as output, docs "extended thinking"), in a later request's
assistant turn input tokens [unverified: the API drops earlier turns' thinking from
the context window on some models; the approximation keeps it].
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple

import orjson

from batchmark.config._media import (
    PDF_PAGE_TOKENS,
    image_size_b64,
    image_tokens,
    parse_blob_ref,
    pdf_pages,
)

__all__ = [
    "MESSAGE_OVERHEAD",
    "PrefixUnit",
    "approx_tokens",
    "automatic_cache_control",
    "block_tokens",
    "prefix_units",
    "request_input_tokens",
    "request_prefix_tokens",
]

BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3  # role marker and separators of one message or system prompt


def approx_tokens(text: str) -> int:
    """Tokens of a piece of text: ceil(utf-8 bytes / 4)."""
    n = len(text.encode("utf-8"))
    return -(-n // BYTES_PER_TOKEN)


def block_tokens(block: Any) -> int:
    """Tokens of a content block, a string, or any JSON value (tool schemas, inputs)."""
    if isinstance(block, str):
        return approx_tokens(block)
    if isinstance(block, dict):
        kind = block.get("type")
        if kind == "text":
            return approx_tokens(block.get("text", ""))
        if kind == "tool_use":
            return approx_tokens(block.get("name", "")) + _json_tokens(block.get("input", {}))
        if kind == "tool_result":
            content = block.get("content", "")
            if isinstance(content, list):
                return sum(block_tokens(b) for b in content)
            return approx_tokens(str(content))
        if kind == "thinking":  # the signature is not counted
            return approx_tokens(block.get("thinking", ""))
        if kind == "redacted_thinking":
            return approx_tokens(str(block.get("data", "")))
        if kind == "image":
            return _image_block_tokens(block.get("source"))
        if kind == "document":
            return _document_block_tokens(block)
        clean = {k: v for k, v in block.items() if k != "cache_control"}
        return _json_tokens(clean)
    return _json_tokens(block)


URL_IMAGE_TOKENS = image_tokens(1568, 733)
"""An image the API fetches from a URL: its size is unknown here, so it counts as the
largest image the API keeps unscaled (about 1,530 tokens) [an approximation]."""
URL_PDF_PAGES = 1
"""A PDF the API fetches from a URL counts as one page [an approximation]."""


def _image_block_tokens(source: Any) -> int:
    """An image: ``width * height / 750`` after the API's scaling (``_media``), the size
    read from the reference or the image's header bytes (an unreadable one counts 0)."""
    if not isinstance(source, dict):
        return 0
    data = source.get("data")
    if source.get("type") == "base64" and isinstance(data, str):
        ref = parse_blob_ref(data)
        size = ref.size if ref is not None else image_size_b64(data)
        return image_tokens(*size) if size else 0
    return URL_IMAGE_TOKENS


def _document_block_tokens(block: dict[str, Any]) -> int:
    """A document: a plain-text source by its text, a PDF at ``PDF_PAGE_TOKENS`` a page
    (pages read from the reference or the PDF's bytes), plus its title and context."""
    source = block.get("source")
    extra = sum(
        approx_tokens(block[k]) for k in ("title", "context") if isinstance(block.get(k), str)
    )
    if not isinstance(source, dict):
        return extra
    data = source.get("data")
    kind = source.get("type")
    if kind == "text" and isinstance(data, str):
        return extra + approx_tokens(data)
    if kind == "content":
        return extra + _content_tokens(source.get("content"))
    pages = URL_PDF_PAGES
    if kind == "base64" and isinstance(data, str):
        ref = parse_blob_ref(data)
        pages = ref.pages if ref is not None else _pdf_pages_b64(data)
    return extra + (pages or URL_PDF_PAGES) * PDF_PAGE_TOKENS


def _pdf_pages_b64(data: str) -> int | None:
    try:
        return pdf_pages(base64.b64decode(data))
    except (binascii.Error, ValueError):
        return None


def _json_tokens(value: Any) -> int:
    return -(-len(orjson.dumps(value)) // BYTES_PER_TOKEN)


def _content_tokens(content: Any) -> int:
    if isinstance(content, list):
        return sum(block_tokens(b) for b in content)
    return block_tokens(content)


class PrefixUnit(NamedTuple):
    """One unit of a request's prompt prefix: a tool, a system block or a message block."""

    tokens: int
    cache_control: dict[str, Any] | None
    """The unit's ``cache_control`` marker (a cache breakpoint), or None."""
    content: Any
    """The unit without its ``cache_control`` (messages wrapped with their role): what a
    prompt cache hashes."""
    automatic: bool = False
    """The marker is the request's top-level ``cache_control`` (automatic caching)."""


def _marker(unit: Any) -> dict[str, Any] | None:
    if isinstance(unit, dict) and isinstance(unit.get("cache_control"), dict):
        return unit["cache_control"]
    return None


def _without_marker(unit: Any) -> Any:
    if isinstance(unit, dict) and "cache_control" in unit:
        return {k: v for k, v in unit.items() if k != "cache_control"}
    return unit


def _cacheable(block: Any) -> bool:
    """Whether a block may carry a breakpoint: not a thinking or redacted_thinking block
    (the SDK's params for them have no ``cache_control``), not empty text (the API
    answers "cache_control cannot be set for empty text blocks")."""
    if isinstance(block, str):
        return bool(block)
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "text":
        return bool(block.get("text"))
    return kind not in ("thinking", "redacted_thinking")


def automatic_cache_control(params: dict[str, Any]) -> dict[str, Any] | None:
    """The request's top-level ``cache_control`` (automatic caching), or None."""
    marker = params.get("cache_control")
    return marker if isinstance(marker, dict) else None


def prefix_units(params: dict[str, Any]) -> list[PrefixUnit]:
    """The units of a Messages request in prefix order (tools, system, messages).

    One unit per tool, per system block, per message content block (a message with
    string content is one unit). The sum of the tokens is the request's input.

    A top-level ``cache_control`` (automatic caching) puts its marker on the last
    cacheable unit (SDK: "automatically applies a cache_control marker to the last
    cacheable block in the request"), flagged ``automatic``. When that unit already
    carries a marker of its own, the two are one breakpoint and the unit's own marker
    (its ``ttl``) stands [unverified: the API's answer to differing TTLs there].
    """
    units: list[PrefixUnit] = []
    last_cacheable = -1
    for tool in params.get("tools") or []:
        units.append(PrefixUnit(_json_tokens(_without_marker(tool)), _marker(tool), tool))
        last_cacheable = len(units) - 1
    system = params.get("system")
    if isinstance(system, str) and system:
        units.append(PrefixUnit(approx_tokens(system) + MESSAGE_OVERHEAD, None, system))
        last_cacheable = len(units) - 1
    elif isinstance(system, list):
        for i, block in enumerate(system):
            extra = MESSAGE_OVERHEAD if i == 0 else 0
            units.append(
                PrefixUnit(block_tokens(block) + extra, _marker(block), _without_marker(block))
            )
            if _cacheable(block):
                last_cacheable = len(units) - 1
    for message in params.get("messages") or []:
        role = message.get("role")
        content = message.get("content", "")
        if isinstance(content, list) and content:
            for i, block in enumerate(content):
                extra = MESSAGE_OVERHEAD if i == 0 else 0
                wrapped = {"role": role, "block": _without_marker(block)}
                units.append(PrefixUnit(block_tokens(block) + extra, _marker(block), wrapped))
                if _cacheable(block):
                    last_cacheable = len(units) - 1
        else:
            tokens = _content_tokens(content) + MESSAGE_OVERHEAD
            units.append(PrefixUnit(tokens, None, {"role": role, "content": content}))
            if _cacheable(content):
                last_cacheable = len(units) - 1
    marker = automatic_cache_control(params)
    if marker is not None and last_cacheable >= 0 and units[last_cacheable].cache_control is None:
        units[last_cacheable] = units[last_cacheable]._replace(cache_control=marker, automatic=True)
    return units


def request_prefix_tokens(params: dict[str, Any]) -> list[tuple[int, bool]]:
    """Token counts of a Messages request in prefix order (tools, system, messages).

    Returns one ``(tokens, has_breakpoint)`` pair per unit of the prefix: each tool,
    each system block, each message content block. ``has_breakpoint`` is true when
    the unit carries a ``cache_control`` object. The sum of the tokens is the
    request's input.
    """
    return [(u.tokens, u.cache_control is not None) for u in prefix_units(params)]


def request_input_tokens(params: dict[str, Any]) -> int:
    """The request's input tokens: the sum of ``request_prefix_tokens(params)``'s, without
    building its units (the emulator counts every answer's input)."""
    total = sum(_json_tokens(_without_marker(tool)) for tool in params.get("tools") or [])
    system = params.get("system")
    if isinstance(system, str) and system:
        total += approx_tokens(system) + MESSAGE_OVERHEAD
    elif isinstance(system, list) and system:
        total += sum(block_tokens(block) for block in system) + MESSAGE_OVERHEAD
    for message in params.get("messages") or []:
        content = message.get("content", "")
        if isinstance(content, list) and content:
            total += sum(block_tokens(block) for block in content) + MESSAGE_OVERHEAD
        else:
            total += _content_tokens(content) + MESSAGE_OVERHEAD
    return total
