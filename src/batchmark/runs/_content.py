"""Content blocks: block specs (from a template or from the data) made into API blocks.

After a variant is rendered for a row, every message whose content is a list of blocks
goes through ``ContentResolver.messages``, whether the list came from the config
(``content: [{type: image, path: "{{ image }}"}]``) or from a row (a conversation
field). A block *spec* names where its bytes are; the resolver reads and checks them and
returns the API's block:

- ``{type: text, text, cache_control?}``: a text block (empty text is refused, as the
  API refuses it).
- ``{type: image, path | url | base64, media_type?}``: a PNG, JPEG, GIF or WebP file, an
  image the API fetches, or base64 bytes (a ``data:`` URL prefix is allowed). The media
  type is read from the bytes; a ``media_type`` given and different is an error.
- ``{type: document, path | url | base64 | text, title?, context?, citations?,
  cache_control?}``: a PDF (a file or base64), a UTF-8 text file or inline text (a
  plain-text document), or a PDF the API fetches.
- A block already in the API's shape (``{type: image, source: {...}}``) is checked, its
  base64 data handled as above; any other block type (``tool_use``, ``tool_result``,
  ...) is passed on unchanged.

Every check is against ``config._media``'s limits (each with its source). A problem is a
``RenderError`` naming the variant, the row, the place in the rendered request
(``messages[1].content[0]``) and the path; nothing is sent.

**Paths.** A ``path`` is relative to the dataset file's folder (the config's folder for a
Hub dataset). An absolute path, a ``..`` part, or a symlink leading out of that folder is
refused unless ``dataset.allow_outside_paths: true``: a path may come from the data, and
data must not read files it was not given.

**Blobs.** The base64 data of an image or a PDF is not put into the params: a reference
(``config._media.blob_ref``: the sha256 of the bytes, the base64 length, the image's
size or the PDF's pages) takes its place, and the base64 text goes once to ``blobs`` (the
run's ledger), keyed by that hash, before any request referencing it is written. Create
bodies splice the data back in (``runs._blobs``). Since the reference is the content
hash, the cache key over params holding it is as deterministic as over the data itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, Protocol

from batchmark._errors import RenderError
from batchmark.config._media import (
    IMAGE_MEDIA_TYPES,
    MANY_IMAGES,
    MAX_IMAGE_BASE64_BYTES,
    MAX_IMAGE_SIDE,
    MAX_IMAGE_SIDE_MANY,
    MAX_IMAGES_PER_REQUEST,
    MAX_PDF_BYTES,
    MAX_PDF_PAGES,
    PDF_MEDIA_TYPE,
    TEXT_MEDIA_TYPE,
    b64_length,
    blob_ref,
    image_size,
    parse_blob_ref,
    pdf_pages,
    sniff,
)

if TYPE_CHECKING:
    from batchmark.config._schema import EvalSpec

__all__ = ["BlobSink", "ContentResolver", "dataset_folder"]

_MEMO = 4096  # files whose facts are remembered (by kind, path, mtime, size): a few MB
_MEMO_TEXT = 8 * 1024 * 1024  # characters of text documents remembered, at most
_CACHE_TTLS = ("5m", "1h")


class BlobSink(Protocol):
    """Where blobs go: ``put_blob(sha256 hex, base64 bytes)``, durable on return."""

    def put_blob(self, sha256: str, data: bytes) -> None: ...


class _Problem(Exception):
    """A block is unusable: the message, and a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class _Media:
    """What a file or base64 value holds, checked."""

    media_type: str
    ref: str | None  # the blob reference (images, PDFs)
    size: tuple[int, int] | None = None
    pages: int | None = None
    text: str | None = None  # a plain-text document's text


def dataset_folder(spec: EvalSpec) -> Path:
    """The folder block paths are relative to: the dataset file's, else the config's."""
    path = spec.dataset.path
    return (Path(path).parent if path else spec.base_dir).resolve()


@dataclass(slots=True)
class _Tally:
    """What one request's blocks add up to: its images (where, size) and PDF pages."""

    images: list[tuple[str, tuple[int, int] | None]] = field(default_factory=list)
    pages: int = 0


class ContentResolver:
    """Turns the block specs of rendered messages into API blocks (module docstring).

    ``blobs`` receives each distinct image or PDF once; without it (``validate``,
    ``estimate``) the bytes are read, checked and hashed, and kept nowhere.
    """

    def __init__(self, spec: EvalSpec, blobs: BlobSink | None = None) -> None:
        self.base = dataset_folder(spec)
        self.allow_outside = spec.dataset.allow_outside_paths
        self.file = str(spec.path)
        self.blobs = blobs
        self._put: set[str] = set()
        self.refs = 0
        """Blob references the last ``messages`` call placed: ``expand`` refuses a request
        holding more (a string of the data that reads as one would be spliced)."""
        self._memo: OrderedDict[tuple[str, str, int, int], _Media] = OrderedDict()
        self._memo_text = 0  # characters of the text documents in _memo

    # --- messages -------------------------------------------------------------------

    def messages(
        self, messages: list[dict[str, Any]], variant: str, row_id: str
    ) -> list[dict[str, Any]]:
        """The messages with every block list resolved (the same list when none has
        blocks). Raises ``RenderError`` naming the variant, row, block and path."""
        self.refs = 0
        out: list[dict[str, Any]] | None = None
        tally = _Tally()
        for i, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            if out is None:
                out = list(messages)
            blocks = [
                self._resolve(raw, f"messages[{i}].content[{j}]", tally, variant, row_id)
                for j, raw in enumerate(content)
            ]
            out[i] = {**message, "content": blocks}
        if out is None:
            return messages
        self._check_request(tally.images, tally.pages, variant, row_id)
        return out

    def _resolve(
        self, raw: Any, where: str, tally: _Tally, variant: str, row_id: str
    ) -> dict[str, Any]:
        """One block, resolved and counted (a method, not a closure calling itself: that
        is a reference cycle per request, and the collector is paused while expanding)."""
        try:
            block, media = self.block(raw)
        except _Problem as err:
            kind = raw.get("type") if isinstance(raw, dict) else None
            at = f"{where} ({kind})" if isinstance(kind, str) else where
            raise RenderError(
                self.file, variant, row_id, f"{at}: {err.message}", err.hint
            ) from None
        if media is not None and media.ref is not None:
            self.refs += 1
        if media is not None and media.media_type in IMAGE_MEDIA_TYPES:
            tally.images.append((where, media.size))
        elif media is not None and media.pages:
            tally.pages += media.pages
        inner = block.get("content") if block.get("type") == "tool_result" else None
        if isinstance(inner, list):  # a tool's answer: text, image, document blocks
            nested = [
                self._resolve(b, f"{where}.content[{k}]", tally, variant, row_id)
                for k, b in enumerate(inner)
            ]
            block = {**block, "content": nested}
        source = block.get("source") if block.get("type") == "document" else None
        if isinstance(source, dict) and source.get("type") == "content":
            inner = source.get("content")
            if isinstance(inner, list):  # a document of text and image blocks
                at = f"{where}.source.content"
                nested = [
                    self._resolve(b, f"{at}[{k}]", tally, variant, row_id)
                    for k, b in enumerate(inner)
                ]
                block = {**block, "source": {**source, "content": nested}}
        return block

    def _check_request(
        self,
        images: list[tuple[str, tuple[int, int] | None]],
        pages: int,
        variant: str,
        row_id: str,
    ) -> None:
        def refuse(detail: str, hint: str) -> None:
            raise RenderError(self.file, variant, row_id, detail, hint)

        if len(images) > MAX_IMAGES_PER_REQUEST:
            refuse(
                f"the request has {len(images)} images; the API takes at most "
                f"{MAX_IMAGES_PER_REQUEST}",
                "send fewer images per request",
            )
        if len(images) > MANY_IMAGES:
            for where, size in images:
                if size is not None and max(size) > MAX_IMAGE_SIDE_MANY:
                    refuse(
                        f"{where} (image): {size[0]}x{size[1]} px; with more than "
                        f"{MANY_IMAGES} images in a request each side may be at most "
                        f"{MAX_IMAGE_SIDE_MANY} px",
                        "scale the images down or send fewer per request",
                    )
        if pages > MAX_PDF_PAGES:
            refuse(
                f"the request's PDFs have {pages} pages; the API takes at most {MAX_PDF_PAGES}",
                "split the documents across requests",
            )

    # --- one block ----------------------------------------------------------------------

    def block(self, raw: Any) -> tuple[dict[str, Any], _Media | None]:
        """One block spec as an API block, with what its bytes hold (None for text)."""
        if not isinstance(raw, dict):
            raise _Problem(f"a content block must be an object, not {type(raw).__name__}")
        kind = raw.get("type")
        if kind == "text":
            return self._text(raw), None
        if kind == "image":
            return self._image(raw)
        if kind == "document":
            return self._document(raw)
        if not isinstance(kind, str):
            raise _Problem("a content block needs a `type` (text, image, document, ...)")
        return raw, None  # tool_use, tool_result, thinking, ...: not ours to check

    def _text(self, raw: dict[str, Any]) -> dict[str, Any]:
        _only(raw, {"type", "text", "cache_control", "citations"})
        text = raw.get("text")
        if not isinstance(text, str):
            raise _Problem("a text block needs `text`, a string")
        if not text.strip():
            raise _Problem("the text is empty", "the API refuses empty text blocks")
        block: dict[str, Any] = {"type": "text", "text": text}
        if raw.get("citations") is not None:
            block["citations"] = raw["citations"]
        return _with_cache_control(block, raw)

    def _image(self, raw: dict[str, Any]) -> tuple[dict[str, Any], _Media | None]:
        if "source" in raw:
            _only(raw, {"type", "source", "cache_control", "transformations"})
            source = raw["source"]
            if not isinstance(source, dict):
                raise _Problem("`source` must be an object")
            kind = source.get("type")
            if kind == "base64":
                data = source.get("data")
                media = self._base64(data, "image", source.get("media_type"))
                block = _with_transformations(_image_block(media), raw)
                return _with_cache_control(block, raw), media
            if kind == "url":
                block = _with_transformations({"type": "image", "source": _url(source)}, raw)
                return _with_cache_control(block, raw), None
            if kind == "file":
                return raw, None
            raise _Problem(f"source.type {kind!r}: expected 'base64', 'url' or 'file'")
        _only(raw, {"type", "path", "url", "base64", "media_type", "cache_control"})
        source_keys = [k for k in ("path", "url", "base64") if raw.get(k) is not None]
        if len(source_keys) != 1:
            raise _Problem("an image block needs exactly one of `path`, `url`, `base64`")
        declared = raw.get("media_type")
        if "url" in source_keys:
            return _with_cache_control(
                {"type": "image", "source": _url({"url": raw["url"]})}, raw
            ), None
        if "path" in source_keys:
            media = self._file(raw["path"], "image", declared)
        else:
            media = self._base64(raw["base64"], "image", declared)
        return _with_cache_control(_image_block(media), raw), media

    def _document(self, raw: dict[str, Any]) -> tuple[dict[str, Any], _Media | None]:
        common = {"type", "title", "context", "citations", "cache_control"}
        media: _Media | None = None
        if "source" in raw:
            _only(raw, common | {"source"})
            source = raw["source"]
            if not isinstance(source, dict):
                raise _Problem("`source` must be an object")
            kind = source.get("type")
            if kind == "base64":
                media = self._base64(source.get("data"), "document", source.get("media_type"))
                block = _document_block(media)
            elif kind == "url":
                block = {"type": "document", "source": _url(source)}
            elif kind == "text":
                if source.get("media_type", TEXT_MEDIA_TYPE) != TEXT_MEDIA_TYPE:
                    raise _Problem(f"a text source's media_type must be {TEXT_MEDIA_TYPE!r}")
                block = _document_block(_Media(TEXT_MEDIA_TYPE, None, text=source.get("data")))
            elif kind in ("content", "file"):
                block = {"type": "document", "source": source}
            else:
                raise _Problem(
                    f"source.type {kind!r}: expected 'base64', 'url', 'text', 'content' or 'file'"
                )
        else:
            _only(raw, common | {"path", "url", "base64", "text", "media_type"})
            keys = [k for k in ("path", "url", "base64", "text") if raw.get(k) is not None]
            if len(keys) != 1:
                raise _Problem(
                    "a document block needs exactly one of `path`, `url`, `base64`, `text`"
                )
            declared = raw.get("media_type")
            if keys[0] == "url":
                block = {"type": "document", "source": _url({"url": raw["url"]})}
            elif keys[0] == "text":
                media = _Media(TEXT_MEDIA_TYPE, None, text=raw["text"])
                block = _document_block(media)
            elif keys[0] == "path":
                media = self._file(raw["path"], "document", declared)
                block = _document_block(media)
            else:
                media = self._base64(raw["base64"], "document", declared)
                block = _document_block(media)
        for key in ("title", "context"):
            value = raw.get(key)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise _Problem(f"`{key}` must be a string")
            block[key] = value
        citations = raw.get("citations")
        if citations is not None:
            if isinstance(citations, bool):  # `citations: true` as a shorthand from data
                citations = {"enabled": citations}
            if not (
                isinstance(citations, dict)
                and set(citations) <= {"enabled"}  # SDK CitationsConfigParam: total=False
                and isinstance(citations.get("enabled", False), bool)
            ):
                raise _Problem("`citations` must be {enabled: true} or {enabled: false}")
            block["citations"] = dict(citations)
        return _with_cache_control(block, raw), media

    # --- bytes ----------------------------------------------------------------------------

    def _path(self, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise _Problem("`path` must be a non-empty string")
        if "\x00" in value:  # the OS takes no NUL in a path (os.stat raises ValueError)
            raise _Problem(f"path {value!r} holds a NUL character", "fix the path in the data")
        hint = (
            "paths are relative to the dataset's folder; set `dataset.allow_outside_paths: "
            "true` to read files elsewhere"
        )
        relative = PurePath(value)
        if not self.allow_outside and (relative.is_absolute() or ".." in relative.parts):
            raise _Problem(f"path {value!r} leaves the dataset's folder {self.base}", hint)
        try:
            full = (self.base / relative).resolve()
        except (RuntimeError, OSError):  # pathlib: RuntimeError("Symlink loop from ...")
            raise _Problem(
                f"path {value!r} is a symlink loop", "fix the symlink or the path in the data"
            ) from None
        if not self.allow_outside and not full.is_relative_to(self.base):
            raise _Problem(f"path {value!r} leads out of the dataset's folder {self.base}", hint)
        return full

    def _file(self, value: Any, kind: str, declared: Any) -> _Media:
        path = self._path(value)
        try:
            stat = path.stat()
        except OSError:
            raise _Problem(
                f"file {value!r} not found (looked for {path})",
                f"paths are relative to the dataset's folder {self.base}",
            ) from None
        if not S_ISREG(stat.st_mode):  # a FIFO or a device would be read forever
            raise _Problem(f"cannot read file {value!r} ({path}): not a regular file")
        _check_file_size(stat.st_size, kind, f"file {value!r}")  # before reading it whole
        key = (kind, str(path), stat.st_mtime_ns, stat.st_size)  # a PDF is no image
        known = self._memo.get(key)
        if known is not None and (declared is None or declared == known.media_type):
            self._memo.move_to_end(key)
            return known
        try:
            data = path.read_bytes()
        except OSError as err:
            raise _Problem(f"cannot read file {value!r} ({path}): {err.strerror or err}") from None
        media = self._bytes(data, kind, declared, f"file {value!r}")
        size = len(media.text or "")
        if size > _MEMO_TEXT // 8:  # a big text document is read again when named again
            return media
        self._memo[key] = media
        self._memo_text += size
        while len(self._memo) > _MEMO or self._memo_text > _MEMO_TEXT:
            self._memo_text -= len(self._memo.popitem(last=False)[1].text or "")
        return media

    def _base64(self, value: Any, kind: str, declared: Any) -> _Media:
        if isinstance(value, str) and parse_blob_ref(value) is not None:
            raise _Problem("base64 data may not be a blob reference")
        if not isinstance(value, str) or not value.strip():
            raise _Problem("base64 data must be a non-empty string")
        text = value.strip()
        if text.startswith("data:") and "," in text:  # a data: URL
            text = text.split(",", 1)[1]
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _Problem(
                "the value is not valid base64", "give the file's bytes base64-encoded"
            ) from None
        return self._bytes(data, kind, declared, "the base64 data")

    def _bytes(self, data: bytes, kind: str, declared: Any, what: str) -> _Media:
        media_type = sniff(data)
        if kind == "image":
            if media_type not in IMAGE_MEDIA_TYPES:
                raise _Problem(
                    f"{what} is not a PNG, JPEG, GIF or WebP image",
                    "the API accepts image/png, image/jpeg, image/gif and image/webp",
                )
        elif media_type != PDF_MEDIA_TYPE:
            if declared not in (None, TEXT_MEDIA_TYPE):
                raise _Problem(f"{what} is not a PDF (media_type {declared!r})")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _Problem(
                    f"{what} is neither a PDF nor UTF-8 text",
                    "a document is a PDF or a plain-text file",
                ) from None
            if not text.strip():
                raise _Problem(f"{what} is an empty text document")
            return _Media(TEXT_MEDIA_TYPE, None, text=text)
        if declared is not None and declared != media_type:
            raise _Problem(f"{what} is {media_type}, not {declared!r} as given")
        b64_len = b64_length(len(data))
        if media_type == PDF_MEDIA_TYPE:
            if len(data) > MAX_PDF_BYTES:
                raise _Problem(
                    f"{what} is {len(data):,} bytes; a request may hold at most {MAX_PDF_BYTES:,}",
                    "split the PDF",
                )
            pages = pdf_pages(data)
            if pages is not None and pages > MAX_PDF_PAGES:
                raise _Problem(
                    f"{what} has {pages} pages; the API takes at most {MAX_PDF_PAGES}",
                    "split the PDF",
                )
            facts = f"p{pages}" if pages else ""
            return _Media(media_type, self._store(data, b64_len, facts), pages=pages)
        size = image_size(data)
        if size is None:
            raise _Problem(f"{what}: cannot read the image's size (a damaged or cut file?)")
        if max(size) > MAX_IMAGE_SIDE:
            raise _Problem(
                f"{what} is {size[0]}x{size[1]} px; each side may be at most {MAX_IMAGE_SIDE}",
                "scale the image down",
            )
        if b64_len > MAX_IMAGE_BASE64_BYTES:
            raise _Problem(
                f"{what} is {b64_len:,} bytes in base64; the API takes at most "
                f"{MAX_IMAGE_BASE64_BYTES:,} per image",
                "compress or scale the image down",
            )
        return _Media(media_type, self._store(data, b64_len, f"{size[0]}x{size[1]}"), size=size)

    def _store(self, data: bytes, b64_len: int, facts: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.blobs is not None and sha not in self._put:
            self.blobs.put_blob(sha, base64.b64encode(data))
            self._put.add(sha)
        return blob_ref(sha, b64_len, facts)


def _check_file_size(size: int, kind: str, what: str) -> None:
    """Refuse a file too large for its block by its size alone, unread: an image over
    the base64 limit, a document over a request's bytes (the same messages as
    ``_bytes``)."""
    if kind == "image" and b64_length(size) > MAX_IMAGE_BASE64_BYTES:
        raise _Problem(
            f"{what} is {b64_length(size):,} bytes in base64; the API takes at most "
            f"{MAX_IMAGE_BASE64_BYTES:,} per image",
            "compress or scale the image down",
        )
    if kind == "document" and size > MAX_PDF_BYTES:
        raise _Problem(
            f"{what} is {size:,} bytes; a request may hold at most {MAX_PDF_BYTES:,}",
            "split the document",
        )


def _only(raw: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(k for k in raw if k not in allowed)
    if extra:
        raise _Problem(f"unknown key {extra[0]!r}", "allowed here: " + ", ".join(sorted(allowed)))


def _url(source: dict[str, Any]) -> dict[str, str]:
    url = source.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _Problem(f"url {url!r}: expected an http:// or https:// URL")
    return {"type": "url", "url": url}


def _image_block(media: _Media) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media.media_type, "data": media.ref},
    }


def _document_block(media: _Media) -> dict[str, Any]:
    if media.media_type == TEXT_MEDIA_TYPE:
        if not isinstance(media.text, str) or not media.text.strip():
            raise _Problem("a text document needs non-empty text")
        source = {"type": "text", "media_type": TEXT_MEDIA_TYPE, "data": media.text}
    else:
        source = {"type": "base64", "media_type": PDF_MEDIA_TYPE, "data": media.ref}
    return {"type": "document", "source": source}


_OVERSIZED = ("downsize", "error")


def _with_transformations(block: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """An API-shaped image block's ``transformations`` (SDK ``ImageTransformationsParam``:
    ``{oversized_image?: downsize | error}``), checked and kept."""
    value = raw.get("transformations")
    if value is None:
        return block
    if not (
        isinstance(value, dict)
        and set(value) <= {"oversized_image"}
        and value.get("oversized_image", "downsize") in _OVERSIZED
    ):
        raise _Problem(
            f"transformations {value!r}: expected {{oversized_image: downsize}} or "
            "{oversized_image: error}"
        )
    return {**block, "transformations": dict(value)}


def _with_cache_control(block: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    marker = raw.get("cache_control")
    if marker is None:
        return block
    if not (
        isinstance(marker, dict)
        and marker.get("type") == "ephemeral"
        and set(marker) <= {"type", "ttl"}
        and marker.get("ttl", "5m") in _CACHE_TTLS
    ):
        raise _Problem(
            f"cache_control {marker!r}: expected {{type: ephemeral}} with an optional "
            "ttl of '5m' or '1h'"
        )
    return {**block, "cache_control": dict(marker)}
