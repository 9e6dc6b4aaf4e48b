"""What image and PDF bytes are, their size, tokens and blob references (config._media)."""

from __future__ import annotations

import base64

import orjson
import pytest

from batchmark.config._media import (
    b64_length,
    blob_ref,
    image_size,
    image_size_b64,
    image_tokens,
    parse_blob_ref,
    pdf_pages,
    sniff,
)
from batchmark.config._tokens import block_tokens

from ..media import gif, jpeg, pdf, png, webp


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (png(640, 480), "image/png", (640, 480)),
        (jpeg(1024, 768), "image/jpeg", (1024, 768)),
        (jpeg(300, 200, exif=20_000), "image/jpeg", (300, 200)),
        (gif(33, 17), "image/gif", (33, 17)),
        (webp(5000, 4000), "image/webp", (5000, 4000)),
    ],
)
def test_the_media_type_and_size_are_read_from_the_header(
    data: bytes, media_type: str, size: tuple[int, int]
) -> None:
    assert sniff(data) == media_type
    assert image_size(data) == size
    assert image_size_b64(base64.b64encode(data).decode()) == size


def test_a_pdf_is_recognised_and_its_pages_counted() -> None:
    data = pdf(["one", "two", "three"])
    assert sniff(data) == "application/pdf"
    assert pdf_pages(data) == 3


def test_bytes_of_no_known_kind_have_no_type_or_size() -> None:
    assert sniff(b"hello world") is None
    assert image_size(b"\x89PNG\r\n\x1a\n") is None  # cut short


def test_image_tokens_follow_width_times_height_over_750_after_scaling() -> None:
    assert image_tokens(750, 1) == 1
    assert image_tokens(200, 200) == -(-(200 * 200) // 750)  # 54
    # a large image is scaled to about 1.15 megapixels first: ~1,533 tokens, not 4000*3000/750
    assert 1400 < image_tokens(4000, 3000) <= 1_150_000 // 750 + 1


def test_a_blob_reference_round_trips_and_is_escaped_in_json() -> None:
    ref = blob_ref("ab" * 32, b64_length(10), "640x480")
    parsed = parse_blob_ref(ref)
    assert parsed is not None
    assert (parsed.sha256, parsed.b64_len, parsed.size) == ("ab" * 32, 16, (640, 480))
    assert orjson.dumps(ref).startswith(b'"\\u0000blob:')
    assert parse_blob_ref("iVBORw0KGgo") is None


def test_an_image_block_counts_its_pixels_not_its_base64_text() -> None:
    data = base64.b64encode(png(300, 250)).decode()
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    assert block_tokens(block) == image_tokens(300, 250) == 100
    referenced = {**block, "source": {**block["source"], "data": blob_ref("0" * 64, 9, "300x250")}}
    assert block_tokens(referenced) == 100


def test_a_pdf_document_counts_per_page() -> None:
    data = base64.b64encode(pdf(["a", "b"])).decode()
    block = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": data},
    }
    assert block_tokens(block) == 2 * 1500
