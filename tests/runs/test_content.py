"""Content blocks in prompt templates and from the data, resolved into API blocks
(``runs._content``): what each spec becomes, and every bad input refused with the row,
the block and the path named."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchmark._errors import ConfigError, RenderError
from batchmark.config._media import blob_ref, parse_blob_ref
from batchmark.config._schema import EvalSpec, load_config
from batchmark.runs._blobs import sent_size
from batchmark.runs._grid import expand, validate_spec
from batchmark.runs._keys import params_bytes

from ..media import gif, jpeg, pdf, png, webp


def make_spec(
    folder: Path,
    content: list[dict[str, Any]] | str,
    rows: list[dict[str, Any]],
    *,
    files: dict[str, bytes] | None = None,
    dataset: dict[str, Any] | None = None,
    data_dir: str = "data",
) -> EvalSpec:
    """A config in ``folder`` whose one variant sends ``content``; rows and files in
    ``folder/data_dir``."""
    (folder / data_dir).mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        path = folder / data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (folder / data_dir / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "content",
        "dataset": {"path": f"{data_dir}/rows.jsonl", "id_field": "id", **(dataset or {})},
        "prompts": [{"name": "v", "messages": [{"role": "user", "content": content}]}],
        "models": ["claude-haiku-4-5"],
        "params": {"max_tokens": 16},
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_config(path)


def blocks_of(spec: EvalSpec) -> list[list[dict[str, Any]]]:
    return [r.params["messages"][0]["content"] for r in expand(spec)]


def render_error(spec: EvalSpec) -> RenderError:
    with pytest.raises(RenderError) as info:
        list(expand(spec))
    return info.value


IMAGE_SPEC = [{"type": "image", "path": "{{ image }}"}, {"type": "text", "text": "{{ q }}"}]


def test_an_image_path_from_the_row_becomes_a_base64_block_holding_a_blob_reference(
    tmp_path: Path,
) -> None:
    data = png(64, 32)
    spec = make_spec(
        tmp_path,
        IMAGE_SPEC,
        [{"id": "r1", "image": "img/a.png", "q": "Colour?"}],
        files={"img/a.png": data},
    )
    [[image, text]] = blocks_of(spec)
    assert text == {"type": "text", "text": "Colour?"}
    assert image["type"] == "image"
    source = image["source"]
    assert (source["type"], source["media_type"]) == ("base64", "image/png")
    ref = parse_blob_ref(source["data"])
    assert ref is not None
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert (ref.size, ref.b64_len) == ((64, 32), len(base64.b64encode(data)))


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(jpeg(20, 10), "image/jpeg"), (gif(20, 10), "image/gif"), (webp(20, 10), "image/webp")],
)
def test_the_media_type_is_detected_from_the_bytes_not_the_name(
    tmp_path: Path, data: bytes, media_type: str
) -> None:
    spec = make_spec(
        tmp_path, IMAGE_SPEC, [{"id": "r", "image": "x.png", "q": "?"}], files={"x.png": data}
    )
    [[image, _]] = blocks_of(spec)
    assert image["source"]["media_type"] == media_type


def test_a_request_is_measured_as_sent_with_the_image_data_in(tmp_path: Path) -> None:
    data = png(10, 10, pad=b"x" * 30_000)
    spec = make_spec(
        tmp_path, IMAGE_SPEC, [{"id": "r", "image": "a.png", "q": "?"}], files={"a.png": data}
    )
    [request] = list(expand(spec))
    stored = params_bytes(request.params)
    assert len(stored) < 1000  # the reference, not the data
    assert (
        sent_size(stored)
        == len(stored)
        - len(json.dumps(request.params["messages"][0]["content"][0]["source"]["data"]))
        + len(base64.b64encode(data))
        + 2
    )
    assert request.nbytes > len(base64.b64encode(data))


def test_base64_from_a_column_and_a_data_url_give_the_same_block(tmp_path: Path) -> None:
    data = png(8, 8)
    b64 = base64.b64encode(data).decode()
    rows = [{"id": "plain", "b": b64}, {"id": "url", "b": "data:image/png;base64," + b64}]
    spec = make_spec(tmp_path, [{"type": "image", "base64": "{{ b }}"}], rows)
    first, second = blocks_of(spec)
    assert first == second
    assert first[0]["source"]["data"] == blob_ref(hashlib.sha256(data).hexdigest(), len(b64), "8x8")


def test_an_image_url_is_passed_for_the_api_to_fetch(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        [{"type": "image", "url": "https://example.com/{{ n }}.png"}],
        [{"id": "r", "n": "7"}],
    )
    assert blocks_of(spec) == [
        [{"type": "image", "source": {"type": "url", "url": "https://example.com/7.png"}}]
    ]


def test_a_pdf_document_with_citations_title_and_context(tmp_path: Path) -> None:
    content = [
        {
            "type": "document",
            "path": "doc.pdf",
            "title": "Report {{ id }}",
            "context": "2026",
            "citations": {"enabled": True},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
        {"type": "text", "text": "{{ q }}"},
    ]
    spec = make_spec(
        tmp_path, content, [{"id": "r", "q": "Who?"}], files={"doc.pdf": pdf(["a", "b"])}
    )
    [[doc, _]] = blocks_of(spec)
    assert doc["source"]["media_type"] == "application/pdf"
    assert parse_blob_ref(doc["source"]["data"]).pages == 2
    assert (doc["title"], doc["context"], doc["citations"]) == (
        "Report r",
        "2026",
        {"enabled": True},
    )
    assert doc["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_a_text_file_or_inline_text_is_a_plain_text_document(tmp_path: Path) -> None:
    content = [{"type": "document", "path": "notes.txt"}, {"type": "document", "text": "{{ t }}"}]
    spec = make_spec(
        tmp_path, content, [{"id": "r", "t": "inline"}], files={"notes.txt": b"from a file"}
    )
    [[a, b]] = blocks_of(spec)
    assert a["source"] == {"type": "text", "media_type": "text/plain", "data": "from a file"}
    assert b["source"] == {"type": "text", "media_type": "text/plain", "data": "inline"}


def test_a_text_block_keeps_its_cache_control(tmp_path: Path) -> None:
    content = [
        {"type": "text", "text": "Long shared context", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "{{ q }}"},
    ]
    spec = make_spec(tmp_path, content, [{"id": "r", "q": "?"}])
    assert blocks_of(spec)[0][0] == {
        "type": "text",
        "text": "Long shared context",
        "cache_control": {"type": "ephemeral"},
    }


def test_the_cache_key_follows_the_image_content_not_its_path(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "image": "one.png", "q": "?"},
        {"id": "b", "image": "two.png", "q": "?"},
        {"id": "c", "image": "three.png", "q": "?"},
    ]
    same, other = png(4, 4), png(4, 4, rgb=(0, 0, 255))
    spec = make_spec(
        tmp_path, IMAGE_SPEC, rows, files={"one.png": same, "two.png": same, "three.png": other}
    )
    keys = [r.cache_key for r in expand(spec)]
    assert keys[0] == keys[1] != keys[2]
    assert keys == [r.cache_key for r in expand(spec)]  # deterministic


# --- bad input: an error naming the row, the block and the path; nothing sent ---------------


def test_a_missing_file_names_the_row_the_block_and_the_path(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "row-7", "image": "img/nope.png", "q": "?"}])
    err = render_error(spec)
    text = str(err)
    assert err.row_id == "row-7" and err.variant == "v"
    assert "messages[0].content[0] (image)" in text
    assert (
        "'img/nope.png' not found" in text and str(tmp_path / "data" / "img" / "nope.png") in text
    )


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../secret.png", "leaves the dataset's folder"),
        ("/etc/passwd", "leaves the dataset's folder"),
    ],
)
def test_a_path_from_the_data_may_not_leave_the_dataset_folder(
    tmp_path: Path, path: str, why: str
) -> None:
    (tmp_path / "secret.png").write_bytes(png(2, 2))
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "r", "image": path, "q": "?"}])
    err = render_error(spec)
    assert why in str(err) and repr(path) in str(err)
    assert "allow_outside_paths" in str(err)


def test_a_symlink_out_of_the_dataset_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png(2, 2))
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "r", "image": "link.png", "q": "?"}])
    os.symlink(tmp_path / "secret.png", tmp_path / "data" / "link.png")
    assert "leads out of the dataset's folder" in str(render_error(spec))


def test_allow_outside_paths_lets_the_config_read_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "shared.png").write_bytes(png(3, 3))
    spec = make_spec(
        tmp_path,
        IMAGE_SPEC,
        [{"id": "r", "image": "../shared.png", "q": "?"}],
        dataset={"allow_outside_paths": True},
    )
    [[image, _]] = blocks_of(spec)
    assert parse_blob_ref(image["source"]["data"]).size == (3, 3)


@pytest.mark.parametrize(
    ("content", "files", "row", "message"),
    [
        (
            IMAGE_SPEC,
            {"a.png": b"not an image"},
            {"image": "a.png", "q": "?"},
            "file 'a.png' is not a PNG, JPEG, GIF or WebP image",
        ),
        (IMAGE_SPEC, {"a.png": pdf(["x"])}, {"image": "a.png", "q": "?"}, "not a PNG"),
        (
            IMAGE_SPEC,
            {"a.png": png(9000, 10)},
            {"image": "a.png", "q": "?"},
            "9000x10 px; each side may be at most 8000",
        ),
        (
            IMAGE_SPEC,
            {"a.png": png(10, 10, pad=os.urandom(5_000_000))},
            {"image": "a.png", "q": "?"},
            "per image",
        ),
        (
            IMAGE_SPEC,
            {"a.png": png(1, 1)},
            {"image": "a.png", "q": "  "},
            "content[1] (text): the text is empty",
        ),
        (
            [{"type": "image", "path": "a.png", "media_type": "image/jpeg"}],
            {"a.png": png(2, 2)},
            {},
            "is image/png, not 'image/jpeg'",
        ),
        ([{"type": "image", "base64": "{{ b }}"}], {}, {"b": "@@not base64@@"}, "not valid base64"),
        (
            [{"type": "image", "url": "{{ u }}"}],
            {},
            {"u": "file:///etc/passwd"},
            "http:// or https://",
        ),
        (
            [{"type": "document", "path": "d.bin"}],
            {"d.bin": b"\xff\xfe\x00\x81"},
            {},
            "neither a PDF nor UTF-8 text",
        ),
        ([{"type": "document", "path": "img"}], {"img/x": b""}, {}, "cannot read file 'img'"),
    ],
)
def test_an_unusable_block_is_a_render_error_naming_what_and_where(
    tmp_path: Path, content: Any, files: dict[str, bytes], row: dict[str, Any], message: str
) -> None:
    spec = make_spec(tmp_path, content, [{"id": "bad-row", **row}], files=files)
    text = str(render_error(spec))
    assert message in text
    assert "row 'bad-row'" in text and "messages[0].content[" in text


def test_blocks_from_the_data_go_through_the_same_checks(tmp_path: Path) -> None:
    """A rendered message whose content came from a row (a conversation field) holds block
    specs and API blocks alike: the resolver checks and converts them the same way."""
    from batchmark.runs._content import ContentResolver

    spec = make_spec(tmp_path, "{{ q }}", [{"id": "r", "q": "?"}], files={"a.png": png(5, 6)})
    resolver = ContentResolver(spec)
    b64 = base64.b64encode(png(7, 8)).decode()
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "path": "a.png"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": b64},
                },
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
            ],
        }
    ]
    out = resolver.messages(messages, "v", "r")
    sizes = [parse_blob_ref(b["source"]["data"]).size for b in out[0]["content"][:2]]
    assert sizes == [(5, 6), (7, 8)]
    assert out[0]["content"][2] == messages[0]["content"][2]  # not ours: unchanged
    bad = [{"role": "user", "content": [{"type": "image", "path": "../x.png"}]}]
    with pytest.raises(RenderError, match=r"messages\[0\]\.content\[0\] \(image\): path"):
        resolver.messages(bad, "v", "r")


def test_a_block_spec_in_the_config_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_spec(tmp_path, [{"type": "image", "path": "a.png", "url": "https://x"}], [{"id": "r"}])
    assert "exactly one of `path`, `url`, `base64`" in str(info.value)
    assert "prompts[0].messages[0].content[0]" in str(info.value)


def test_validate_reports_a_missing_image_and_counts_image_tokens(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        IMAGE_SPEC,
        [{"id": "ok", "image": "a.png", "q": "?"}],
        files={"a.png": png(300, 250)},
    )
    report = validate_spec(spec)
    assert report.requests == 1
    assert report.approx_input_tokens >= 100  # the image's 300*250/750, not its base64 text
    assert report.approx_input_tokens < 200


def test_more_than_20_images_in_a_request_must_each_fit_2000_px(tmp_path: Path) -> None:
    content = [{"type": "image", "path": f"{i}.png"} for i in range(21)]
    files = {f"{i}.png": png(2000, 1) for i in range(20)} | {"20.png": png(2001, 1)}
    spec = make_spec(tmp_path, content, [{"id": "many"}], files=files)
    text = str(render_error(spec))
    assert "messages[0].content[20] (image): 2001x1 px" in text and "more than 20 images" in text
    (tmp_path / "data" / "20.png").write_bytes(png(2000, 1))
    assert len(blocks_of(make_spec(tmp_path, content, [{"id": "many"}]))[0]) == 21


def test_a_request_over_100_pdf_pages_is_refused(tmp_path: Path) -> None:
    content = [{"type": "document", "path": "a.pdf"}, {"type": "document", "path": "b.pdf"}]
    files = {"a.pdf": pdf(["p"] * 60), "b.pdf": pdf(["p"] * 41)}
    spec = make_spec(tmp_path, content, [{"id": "long"}], files=files)
    assert "the request's PDFs have 101 pages; the API takes at most 100" in str(render_error(spec))


def test_a_pdf_url_is_passed_for_the_api_to_fetch(tmp_path: Path) -> None:
    content = [{"type": "document", "url": "https://example.com/{{ id }}.pdf", "title": "T"}]
    spec = make_spec(tmp_path, content, [{"id": "r"}])
    assert blocks_of(spec) == [
        [
            {
                "type": "document",
                "source": {"type": "url", "url": "https://example.com/r.pdf"},
                "title": "T",
            }
        ]
    ]
