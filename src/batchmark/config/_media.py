"""Images and documents: what their bytes are, their size, the API's limits on them, and
the blob references that stand in for their base64 data until a batch is created.

Every function here reads bytes and returns facts; nothing reads files or the network.
The harness (``runs._content``) checks a block against these limits before anything is
sent, and the emulator (``emulator._content``) checks what it receives against the same
ones, so what ``validate`` accepts the emulator accepts.

**Limits and their sources.** batches-api.md says nothing about images or documents;
the SDK (2.x) gives the accepted media types and source shapes (``Base64ImageSourceParam``,
``Base64PDFSourceParam``, ``PlainTextSourceParam``, ``URLImageSourceParam``,
``URLPDFSourceParam``) but no sizes: its ``ImageDimensionsTooLargeError`` reports the
side limit per request (``max_side_length_pixels``), so it may differ by model. The
numeric limits below are Anthropic's documentation (the vision and PDF-support guides)
as remembered, not checked against a copy here: each is marked [docs, unverified].

**Tokens.** An image costs about ``width * height / 750`` tokens (docs, vision guide),
after the API scales an image whose long edge is over 1568 px, or whose area is over
about 1.15 megapixels, down to fit (the same guide); ``image_tokens`` computes that. A
PDF page costs text tokens plus an image of the page; the PDF guide gives "1,500 to 3,000
tokens per page" for the text: ``PDF_PAGE_TOKENS`` takes the low end plus nothing for the
picture, an approximation, as every token count here is (see ``config._tokens``).

**Blob references** (``blob_ref``): the harness keeps each distinct image or PDF once,
by the sha256 of its bytes, and stores request params with a reference in place of the
base64 ``data``: the string ``"\\x00blob:<sha256 hex>:<base64 length>:<facts>"`` (facts:
``640x480`` for an image, ``p3`` for a 3-page PDF, empty when unknown). It starts with
a NUL, which no base64 text has, and its JSON form (``"\\u0000blob:...``) is what
``runs._blobs`` finds and replaces by the real data when a create body is streamed.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct

__all__ = [
    "BLOB_PREFIX",
    "IMAGE_MEDIA_TYPES",
    "MAX_IMAGES_PER_REQUEST",
    "MAX_IMAGE_BASE64_BYTES",
    "MAX_IMAGE_SIDE",
    "MAX_IMAGE_SIDE_MANY",
    "MAX_PDF_BYTES",
    "MAX_PDF_PAGES",
    "MANY_IMAGES",
    "PDF_MEDIA_TYPE",
    "PDF_PAGE_TOKENS",
    "TEXT_MEDIA_TYPE",
    "BlobRef",
    "b64_length",
    "blob_ref",
    "image_size",
    "image_size_b64",
    "image_tokens",
    "parse_blob_ref",
    "pdf_pages",
    "sniff",
]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
"""[SDK] ``Base64ImageSourceParam.media_type``."""
PDF_MEDIA_TYPE = "application/pdf"
"""[SDK] ``Base64PDFSourceParam.media_type``."""
TEXT_MEDIA_TYPE = "text/plain"
"""[SDK] ``PlainTextSourceParam.media_type``."""

MAX_IMAGE_BASE64_BYTES = 5 * 1024 * 1024
"""[docs, unverified] "5MB" per image through the API; checked on the base64 text (the
larger of the two readings of the rule)."""
MAX_IMAGE_SIDE = 8000
"""[docs, unverified] 8000 x 8000 px at most; the SDK's ``ImageDimensionsTooLargeError``
carries the real limit of a request (``max_side_length_pixels``)."""
MANY_IMAGES = 20
MAX_IMAGE_SIDE_MANY = 2000
"""[docs, unverified] a request with more than ``MANY_IMAGES`` images: 2000 x 2000 px."""
MAX_IMAGES_PER_REQUEST = 100
"""[docs, unverified] images in one Messages request."""
MAX_PDF_BYTES = 32 * 1000 * 1000
"""batches-api.md §4: a Messages body is at most 32 MB, so a PDF is too (the PDF guide
gives the same figure for the request) [docs]."""
MAX_PDF_PAGES = 100
"""[docs, unverified] pages in one request's PDFs (the PDF guide; more on some models)."""
PDF_PAGE_TOKENS = 1500
"""An approximation: the low end of the PDF guide's "1,500 to 3,000 tokens per page"."""

_MAX_LONG_EDGE = 1568  # [docs, unverified] the vision guide's resize threshold
_MAX_PIXELS = 1_150_000  # [docs, unverified] "about 1.15 megapixels"
TOKENS_PER_PIXEL_DIVISOR = 750  # [docs] tokens = width * height / 750

BLOB_PREFIX = "\x00blob:"
_BLOB_RE = re.compile(r"^\x00blob:([0-9a-f]{64}):(\d+):([0-9a-z]*)$")


def sniff(data: bytes) -> str | None:
    """The media type the bytes start with: an image type, a PDF, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return PDF_MEDIA_TYPE
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an image's header bytes, None when they do not say (or
    say a side of 0 px: no image the API can process)."""
    size = _header_size(data)
    return size if size is not None and min(size) > 0 else None


def _header_size(data: bytes) -> tuple[int, int] | None:
    kind = sniff(data)
    try:
        if kind == "image/png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "image/webp":
            return _webp_size(data)
        if kind == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        w = 1 + (b[0] | (b[1] & 0x3F) << 8)
        h = 1 + (b[1] >> 6 | b[2] << 2 | (b[3] & 0x0F) << 10)
        return w, h
    if chunk == b"VP8X" and len(data) >= 30:
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    return None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


_B64_HEAD = 4096  # base64 characters decoded to read a header (3,072 bytes)


def image_size_b64(data: str) -> tuple[int, int] | None:
    """``image_size`` of base64 text, decoding only as much as the header needs (a JPEG's
    size may sit after a long EXIF segment: then more is decoded)."""
    head = _B64_HEAD
    while True:
        try:
            raw = base64.b64decode(data[:head])
        except (binascii.Error, ValueError):
            return None
        size = image_size(raw)
        if size is not None or head >= len(data):
            return size
        if sniff(raw) != "image/jpeg":
            return None
        head *= 8


def image_tokens(width: int, height: int) -> int:
    """Input tokens of an image by the documented approximation (see the module
    docstring): scaled down to the long-edge and area limits, then ``w * h / 750``."""
    if width <= 0 or height <= 0:
        return 0
    scale = min(1.0, _MAX_LONG_EDGE / max(width, height), math.sqrt(_MAX_PIXELS / (width * height)))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return max(1, -(-(w * h) // TOKENS_PER_PIXEL_DIVISOR))


_PAGE_RE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT_RE = re.compile(
    rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b"
)


def pdf_pages(data: bytes) -> int | None:
    """Pages of a PDF: its page objects, or its page tree's ``/Count`` when larger (page
    objects inside compressed object streams are not seen); None when neither is found."""
    objects = len(_PAGE_RE.findall(data))
    counts = [int(a or b) for a, b in _COUNT_RE.findall(data)]
    pages = max([objects, *counts])
    return pages or None


def b64_length(n: int) -> int:
    """Length of the base64 text of ``n`` bytes (padded)."""
    return 4 * (-(-n // 3))


def blob_ref(sha256: str, b64_len: int, facts: str = "") -> str:
    """The reference that stands for a blob's base64 text in stored params."""
    return f"{BLOB_PREFIX}{sha256}:{b64_len}:{facts}"


class BlobRef:
    """A parsed ``blob_ref``: the content hash, the base64 length and the facts."""

    __slots__ = ("b64_len", "facts", "sha256")

    def __init__(self, sha256: str, b64_len: int, facts: str) -> None:
        self.sha256 = sha256
        self.b64_len = b64_len
        self.facts = facts

    @property
    def size(self) -> tuple[int, int] | None:
        """An image's ``(width, height)``, when the facts say."""
        w, sep, h = self.facts.partition("x")
        return (int(w), int(h)) if sep and w.isdigit() and h.isdigit() else None

    @property
    def pages(self) -> int | None:
        """A PDF's pages, when the facts say."""
        return int(self.facts[1:]) if self.facts[:1] == "p" and self.facts[1:].isdigit() else None


def parse_blob_ref(value: str) -> BlobRef | None:
    """The ``BlobRef`` a string is, or None when it is not a reference."""
    if not value.startswith(BLOB_PREFIX):
        return None
    match = _BLOB_RE.match(value)
    return BlobRef(match[1], int(match[2]), match[3]) if match else None
