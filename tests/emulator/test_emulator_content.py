"""Content blocks at the emulator, through the real SDK: the shapes the API accepts, the
400s for the ones it refuses, image and document tokens, and echo naming what it got."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import pytest

from batchmark.config._media import PDF_PAGE_TOKENS, image_tokens

from ..media import gif, jpeg, pdf, png, webp
from .support import read_results

MODEL = "claude-haiku-4-5"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": b64(data)},
    }


def pdf_document(data: bytes, **extra: Any) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "application/pdf", "data": b64(data)}
    return {"type": "document", "source": source, **extra}


def ask(client: anthropic.Anthropic, content: list[dict[str, Any]]) -> anthropic.types.Message:
    return client.messages.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": content}]
    )


def refusal(client: anthropic.Anthropic, content: list[dict[str, Any]]) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(client, content)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    return caught.value.body["error"]["message"]


def test_echo_names_the_image_and_document_blocks_it_received(client: anthropic.Anthropic) -> None:
    content = [
        image(png(640, 480)),
        pdf_document(pdf(["x"]), title="Report", citations={"enabled": True}),
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "n"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "What is shown?", "cache_control": {"type": "ephemeral"}},
    ]
    text = ask(client, content).content[0].text
    assert text.splitlines() == [
        "[image image/png 640x480]",
        '[document application/pdf "Report"]',
        "[document text/plain]",
        "[image url https://example.com/a.png]",
        "What is shown?",
    ]


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(jpeg(30, 20), "image/jpeg"), (gif(30, 20), "image/gif"), (webp(30, 20), "image/webp")],
)
def test_every_image_media_type_the_api_takes_is_accepted(
    client: anthropic.Anthropic, data: bytes, media_type: str
) -> None:
    assert ask(client, [image(data, media_type)]).content[0].text == f"[image {media_type} 30x20]"


def test_an_image_costs_width_times_height_over_750_tokens(client: anthropic.Anthropic) -> None:
    text_only = ask(client, [{"type": "text", "text": "hi"}]).usage.input_tokens
    with_image = ask(client, [image(png(600, 500)), {"type": "text", "text": "hi"}])
    assert with_image.usage.input_tokens - text_only == image_tokens(600, 500) == 400


def test_a_pdf_costs_tokens_per_page(client: anthropic.Anthropic) -> None:
    text_only = ask(client, [{"type": "text", "text": "hi"}]).usage.input_tokens
    with_pdf = ask(client, [pdf_document(pdf(["a", "b", "c"])), {"type": "text", "text": "hi"}])
    assert with_pdf.usage.input_tokens - text_only == 3 * PDF_PAGE_TOKENS


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            [image(png(2, 2), "image/bmp")],
            "messages.0.content.0.image.source.base64.media_type: "
            "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        ),
        (
            [image(png(2, 2), "image/jpeg")],
            "The image was specified using the image/jpeg media "
            "type, but the image appears to be a image/png image",
        ),
        ([image(b"plain bytes")], "not valid base64 of a supported image"),
        ([image(png(9000, 2))], "image dimensions exceed max allowed size: 8000 pixels"),
        (
            [{"type": "image", "source": {"type": "path", "path": "/x"}}],
            "messages.0.content.0.image.source: Input tag 'path' found",
        ),
        ([{"type": "image"}], "messages.0.content.0.image.source: Field required"),
        ([pdf_document(png(2, 2))], "The PDF specified was not valid."),
        (
            [
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "text/plain", "data": b64(b"x")},
                }
            ],
            "document.source.base64.media_type: Input should be 'application/pdf'",
        ),
        (
            [pdf_document(pdf(["a"]), citations={"enabled": "yes"})],
            "messages.0.content.0.document.citations.enabled: Input should be a valid boolean",
        ),
        (
            [{"type": "text", "text": " "}],
            "messages.0.content.0.text: text content blocks must be non-empty",
        ),
        (
            [{"type": "text", "text": "a", "cache_control": {"type": "forever"}}],
            "messages.0.content.0.text.cache_control.type: Input should be 'ephemeral'",
        ),
    ],
)
def test_a_block_the_api_refuses_is_a_400_naming_its_path(
    client: anthropic.Anthropic, content: list[dict[str, Any]], expected: str
) -> None:
    assert expected in refusal(client, content)


def test_a_bad_block_inside_a_batch_is_an_errored_result(client: anthropic.Anthropic) -> None:
    good = {
        "model": MODEL,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": [image(png(4, 4))]}],
    }
    bad = {**good, "messages": [{"role": "user", "content": [image(png(4, 4), "image/gif")]}]}
    batch = client.messages.batches.create(
        requests=[{"custom_id": "good", "params": good}, {"custom_id": "bad", "params": bad}]
    )
    results = {r.custom_id: r.result for r in read_results(client, batch.id)}
    assert results["good"].type == "succeeded"
    assert results["good"].message.content[0].text == "[image image/png 4x4]"
    assert results["bad"].type == "errored"
    assert "appears to be a image/png image" in results["bad"].error.error.message


def test_past_20_images_each_side_may_be_at_most_2000_px(client: anthropic.Anthropic) -> None:
    small = [image(png(2000, 1)) for _ in range(20)]
    assert len(ask(client, small + [image(png(2000, 2))]).content[0].text.splitlines()) == 21
    message = refusal(client, small + [image(png(2001, 1))])
    assert message.startswith("messages.0.content.20.image.source.base64.data: At least one")
    assert "2000 pixels" in message


def test_more_than_100_images_is_a_400(client: anthropic.Anthropic) -> None:
    message = refusal(client, [image(png(2, 2)) for _ in range(101)])
    assert message == "messages: Too many images: 101 > 100 maximum"


@pytest.mark.parametrize("data", [png(0, 0), png(9, 0)], ids=["0x0", "9x0"])
def test_an_image_of_zero_pixels_on_a_side_is_a_400(
    client: anthropic.Anthropic, data: bytes
) -> None:
    message = refusal(client, [image(data), {"type": "text", "text": "?"}])
    assert message == "messages.0.content.0.image.source.base64.data: Could not process image"


def test_a_bad_image_inside_a_tool_result_is_a_400(client: anthropic.Anthropic) -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}
    tool = {"name": "shot", "description": "a screenshot", "input_schema": {"type": "object"}}

    def answer(inner: dict[str, Any]) -> anthropic.types.Message:
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [inner]}
        return client.messages.create(
            model=MODEL,
            max_tokens=50,
            tools=[tool],
            messages=[
                {"role": "user", "content": "look"},
                {"role": "assistant", "content": [use]},
                {"role": "user", "content": [result]},
            ],
        )

    assert answer(image(png(4, 4))).content  # a good one is taken
    with pytest.raises(anthropic.BadRequestError) as caught:
        answer({"type": "image", "path": "a.png"})
    assert caught.value.body["error"]["message"].startswith(
        "messages.2.content.0.tool_result.content.0.image.source: Field required"
    )


def test_a_bad_image_inside_a_content_document_is_a_400(client: anthropic.Anthropic) -> None:
    def doc(inner: dict[str, Any]) -> dict[str, Any]:
        return {"type": "document", "source": {"type": "content", "content": [inner]}}

    assert ask(client, [doc(image(png(4, 4))), {"type": "text", "text": "?"}]).content
    message = refusal(client, [doc({"type": "image", "path": "a.png"})])
    assert message.startswith(
        "messages.0.content.0.document.source.content.content.0.image.source: Field required"
    )
