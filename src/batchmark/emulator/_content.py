"""Content blocks as the API accepts them: the checks on a message's block list, and
how a responder is told what non-text blocks it received.

``content_error`` returns the first problem of a message's blocks, worded like the API's
400 ``invalid_request_error`` (a dotted path, then what is wrong), or None. It checks the
shapes of the SDK's block params (``TextBlockParam``, ``ImageBlockParam`` with a base64,
url or file source, ``DocumentBlockParam`` with a base64 PDF, plain text, content, url
or file source, ``CitationsConfigParam``, ``CacheControlEphemeralParam``) and the limits of
``config._media`` (media types, image bytes and sides). The wording of the path (the
block's type and source type after its index, as pydantic names a union's member) and of
the messages is the API's as seen in its error answers [unverified: not in batches-api.md
or the SDK]. The blocks of a ``tool_result``'s content list and of a ``content``
document source are checked the same way. Blocks of other types (``tool_use``,
``thinking``, ...) are left to other checks.

Only the first 4,096 characters of an image's base64 are decoded (its header: type and
size), and 8 of a PDF's: a request's cost does not grow with its images' size.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from batchmark.config._media import (
    IMAGE_MEDIA_TYPES,
    MANY_IMAGES,
    MAX_IMAGE_BASE64_BYTES,
    MAX_IMAGE_SIDE,
    MAX_IMAGE_SIDE_MANY,
    MAX_IMAGES_PER_REQUEST,
    PDF_MEDIA_TYPE,
    TEXT_MEDIA_TYPE,
    image_size_b64,
    sniff,
)

__all__ = ["content_error", "describe_block", "images_error"]

_IMAGE_TYPES_TEXT = ", ".join(f"'{t}'" for t in IMAGE_MEDIA_TYPES[:-1]) + (
    f" or '{IMAGE_MEDIA_TYPES[-1]}'"
)
_TTLS = ("5m", "1h")


def _head(data: str, chars: int) -> bytes | None:
    try:
        return base64.b64decode(data[:chars])
    except (binascii.Error, ValueError):
        return None


def _cache_control_error(block: dict[str, Any], at: str) -> str | None:
    marker = block.get("cache_control")
    if marker is None:
        return None
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        return f"{at}.cache_control.type: Input should be 'ephemeral'"
    if marker.get("ttl", "5m") not in _TTLS:
        return f"{at}.cache_control.ttl: Input should be '5m' or '1h'"
    return None


def _image_error(block: dict[str, Any], at: str) -> str | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return f"{at}.image.source: Field required"
    kind = source.get("type")
    if kind == "url":
        url = source.get("url")
        return (
            None if isinstance(url, str) and url else f"{at}.image.source.url.url: Field required"
        )
    if kind == "file":
        fid = source.get("file_id")
        return None if isinstance(fid, str) else f"{at}.image.source.file.file_id: Field required"
    if kind != "base64":
        return (
            f"{at}.image.source: Input tag {kind!r} found using 'type' does not match any of "
            "the expected tags: 'base64', 'url', 'file'"
        )
    where = f"{at}.image.source.base64"
    media_type = source.get("media_type")
    if media_type not in IMAGE_MEDIA_TYPES:
        return f"{where}.media_type: Input should be {_IMAGE_TYPES_TEXT}"
    data = source.get("data")
    if not isinstance(data, str) or not data:
        return f"{where}.data: Field required"
    if len(data) > MAX_IMAGE_BASE64_BYTES:
        limit = MAX_IMAGE_BASE64_BYTES
        return f"{where}: image exceeds 5 MB maximum: {len(data)} bytes > {limit} bytes"
    head = _head(data, 4096)
    found = sniff(head) if head is not None else None
    if found not in IMAGE_MEDIA_TYPES:
        return f"{where}.data: The image data is not valid base64 of a supported image"
    if found != media_type:
        return (
            f"{where}.data: The image was specified using the {media_type} media type, but "
            f"the image appears to be a {found} image"
        )
    size = image_size_b64(data)
    if size is None:
        return f"{where}.data: Could not process image"
    if max(size) > MAX_IMAGE_SIDE:
        return f"{where}.data: image dimensions exceed max allowed size: {MAX_IMAGE_SIDE} pixels"
    return None


def _document_error(block: dict[str, Any], at: str) -> str | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return f"{at}.document.source: Field required"
    kind = source.get("type")
    where = f"{at}.document.source.{kind}"
    if kind == "base64":
        if source.get("media_type") != PDF_MEDIA_TYPE:
            return f"{where}.media_type: Input should be '{PDF_MEDIA_TYPE}'"
        data = source.get("data")
        if not isinstance(data, str) or not data:
            return f"{where}.data: Field required"
        head = _head(data, 8)
        if head is None or not head.startswith(b"%PDF-"):
            return f"{where}.data: The PDF specified was not valid."
    elif kind == "text":
        if source.get("media_type") != TEXT_MEDIA_TYPE:
            return f"{where}.media_type: Input should be '{TEXT_MEDIA_TYPE}'"
        if not isinstance(source.get("data"), str):
            return f"{where}.data: Field required"
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            return f"{where}.url: Field required"
    elif kind == "content":
        inner = source.get("content")
        if not isinstance(inner, str | list):
            return f"{where}.content: Field required"
        if isinstance(inner, list):
            problem = content_error(inner, f"{where}.content")
            if problem:
                return problem
    elif kind == "file":
        if not isinstance(source.get("file_id"), str):
            return f"{where}.file_id: Field required"
    else:
        return (
            f"{at}.document.source: Input tag {kind!r} found using 'type' does not match any "
            "of the expected tags: 'base64', 'text', 'content', 'url', 'file'"
        )
    citations = block.get("citations")
    if citations is not None and not (
        isinstance(citations, dict) and isinstance(citations.get("enabled", False), bool)
    ):
        return f"{at}.document.citations.enabled: Input should be a valid boolean"
    for key in ("title", "context"):
        if block.get(key) is not None and not isinstance(block[key], str):
            return f"{at}.document.{key}: Input should be a valid string"
    return None


def content_error(content: list[Any], at: str) -> str | None:
    """The first problem of one message's content blocks (``at``: ``messages.0.content``)."""
    for j, block in enumerate(content):
        where = f"{at}.{j}"
        if not isinstance(block, dict):
            return f"{where}: Input should be a valid dictionary or object to extract fields from"
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return f"{where}.text.text: Field required"
            if not text.strip():
                return f"{where}.text: text content blocks must be non-empty"
            problem = _cache_control_error(block, f"{where}.text")
        elif kind == "image":
            problem = _image_error(block, where) or _cache_control_error(block, f"{where}.image")
        elif kind == "document":
            problem = _document_error(block, where) or _cache_control_error(
                block, f"{where}.document"
            )
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            problem = content_error(block["content"], f"{where}.tool_result.content")
        elif not isinstance(kind, str):
            return f"{where}: Unable to extract tag using discriminator 'type'"
        else:
            problem = None
        if problem:
            return problem
    return None


def images_error(messages: list[Any]) -> str | None:
    """Too many images in one request (``MAX_IMAGES_PER_REQUEST``), or, past
    ``MANY_IMAGES``, one larger than ``MAX_IMAGE_SIDE_MANY`` on a side; else None."""
    images: list[tuple[str, dict[str, Any]]] = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            images += [
                (f"messages.{i}.content.{j}", b)
                for j, b in enumerate(content)
                if isinstance(b, dict) and b.get("type") == "image"
            ]
    if len(images) > MAX_IMAGES_PER_REQUEST:
        return f"messages: Too many images: {len(images)} > {MAX_IMAGES_PER_REQUEST} maximum"
    if len(images) > MANY_IMAGES:
        for at, block in images:
            source = block.get("source") or {}
            data = source.get("data") if source.get("type") == "base64" else None
            size = image_size_b64(data) if isinstance(data, str) else None
            if size is not None and max(size) > MAX_IMAGE_SIDE_MANY:
                return (
                    f"{at}.image.source.base64.data: At least one of the image dimensions "
                    f"exceed max allowed size for many-image requests: {MAX_IMAGE_SIDE_MANY} "
                    "pixels"
                )
    return None


def describe_block(block: dict[str, Any]) -> str | None:
    """What a responder is told of a non-text block: ``[image image/png 640x480]``,
    ``[image url https://...]``, ``[document application/pdf]``, ``[document text/plain
    "Title"]``; None for a block it is not told about."""
    kind = block.get("type")
    if kind not in ("image", "document"):
        return None
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    stype = source.get("type")
    if stype == "url":
        what = f"url {source.get('url')}"
    elif stype == "file":
        what = f"file {source.get('file_id')}"
    elif stype == "content":
        what = "content"
    else:
        what = str(source.get("media_type"))
        data = source.get("data")
        if kind == "image" and isinstance(data, str):
            size = image_size_b64(data)
            if size is not None:
                what += f" {size[0]}x{size[1]}"
    title = block.get("title")
    if isinstance(title, str) and title:
        what += f' "{title}"'
    return f"[{kind} {what}]"
