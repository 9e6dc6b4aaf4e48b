"""Hostile inputs to content blocks (``runs._content``), found in review: each is a
clear ``RenderError`` naming the row and the block, or a request the API would take."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchmark._errors import RenderError
from batchmark.config._media import blob_ref, parse_blob_ref
from batchmark.config._schema import load_config
from batchmark.runs._grid import expand

from ..media import gif, jpeg, pdf, png
from .test_content import IMAGE_SPEC, make_spec, render_error


def test_a_path_with_a_nul_byte_is_a_render_error_not_a_traceback(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "nul-row", "image": "a\x00b.png", "q": "?"}])
    text = str(render_error(spec))
    assert "row 'nul-row'" in text and "messages[0].content[0] (image)" in text
    assert "NUL" in text


@pytest.mark.parametrize(
    "data",
    [png(0, 0), png(0, 7), gif(7, 0), jpeg(0, 5)],
    ids=["png0x0", "png0x7", "gif7x0", "jpeg0x5"],
)
def test_an_image_of_zero_pixels_on_a_side_is_refused(tmp_path: Path, data: bytes) -> None:
    """The API cannot process an image with no pixels; the harness said it was fine."""
    spec = make_spec(
        tmp_path, IMAGE_SPEC, [{"id": "r", "image": "a.img", "q": "?"}], files={"a.img": data}
    )
    text = str(render_error(spec))
    assert "messages[0].content[0] (image)" in text and "cannot read the image's size" in text


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("a.pdf", "messages[0].content[1] (image): file 'a.pdf' is not a PNG"),
        ("a.png", "messages[0].content[1] (document): file 'a.png' is neither a PDF"),
    ],
)
def test_a_file_read_for_one_block_kind_is_checked_again_for_another(
    tmp_path: Path, file: str, message: str
) -> None:
    """The resolver remembers a file's facts; a PDF read as a document and then named by
    an image block was sent as an image of type application/pdf (and a PNG as a PDF)."""
    first = "document" if file.endswith(".pdf") else "image"
    second = "image" if first == "document" else "document"
    content = [
        {"type": first, "path": "{{ f }}"},
        {"type": second, "path": "{{ f }}"},
        {"type": "text", "text": "?"},
    ]
    files = {"a.pdf": pdf(["x"]), "a.png": png(2, 2)}
    spec = make_spec(tmp_path, content, [{"id": "r", "f": file}], files=files)
    assert message in str(render_error(spec))


FAKE_REF = blob_ref(hashlib.sha256(b"x").hexdigest(), 4)


@pytest.mark.parametrize(
    ("prompt", "row"),
    [
        ({"messages": [{"field": "conv"}]}, {"conv": [{"role": "user", "content": FAKE_REF}]}),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "{{ q }}"}]}]},
            {"q": FAKE_REF},
        ),
        ({"system": "{{ q }}", "messages": [{"role": "user", "content": "hi"}]}, {"q": FAKE_REF}),
    ],
    ids=["conversation", "text-block", "system"],
)
def test_a_blob_reference_in_the_data_is_refused_not_spliced(
    tmp_path: Path, prompt: dict[str, Any], row: dict[str, Any]
) -> None:
    """A string of the data that reads as a blob reference was counted as the blob's size
    and replaced by the ledger's blob (or, missing, failed the create mid-stream as a
    connection error) when the batch was created: it must be refused before anything is
    written, naming the row."""
    spec = make_spec(tmp_path, "x", [{"id": "ref-row", **row}])
    raw = yaml.safe_load(spec.path.read_text())
    raw["prompts"] = [{"name": "v", **prompt}]
    spec.path.write_text(yaml.safe_dump(raw, sort_keys=False))
    text = str(render_error(load_config(spec.path)))
    assert "row 'ref-row'" in text and "blob reference" in text


def test_an_api_shaped_image_block_from_the_data_keeps_its_transformations(
    tmp_path: Path,
) -> None:
    """``ImageBlockParam`` has ``transformations`` (``{oversized_image: downsize|error}``):
    the API takes it, so a conversation from the data may carry it; it was refused as an
    unknown key."""
    from batchmark.runs._content import ContentResolver

    spec = make_spec(tmp_path, "{{ q }}", [{"id": "r", "q": "?"}])
    source = {"type": "base64", "media_type": "image/png", "data": b64(png(4, 4))}
    image = {"type": "image", "source": source, "transformations": {"oversized_image": "error"}}
    [message] = ContentResolver(spec).messages([{"role": "user", "content": [image]}], "v", "r")
    assert message["content"][0]["transformations"] == {"oversized_image": "error"}
    bad = {**image, "transformations": {"oversized_image": "crop"}}
    with pytest.raises(RenderError, match=r"content\[0\] \(image\): transformations"):
        ContentResolver(spec).messages([{"role": "user", "content": [bad]}], "v", "r")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tool_result(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation whose last user turn is a tool_result holding ``blocks``."""
    use = {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": list(blocks)}
    return [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]


def test_an_image_path_inside_a_tool_result_is_resolved_like_any_image(tmp_path: Path) -> None:
    """A tool_result's content may hold image and document blocks: one with a `path` was
    sent as is (a `path` key the API refuses), unread and unchecked."""
    from batchmark.runs._content import ContentResolver

    spec = make_spec(tmp_path, "{{ q }}", [{"id": "r", "q": "?"}], files={"a.png": png(5, 6)})
    resolver = ContentResolver(spec)
    out = resolver.messages(tool_result({"type": "image", "path": "a.png"}), "v", "r")
    [image] = out[2]["content"][0]["content"]
    assert image["source"]["type"] == "base64"
    assert parse_blob_ref(image["source"]["data"]).size == (5, 6)
    assert resolver.refs == 1
    for bad, message in [
        ({"type": "image", "path": "/etc/passwd"}, "leaves the dataset's folder"),
        ({"type": "image", "path": "nope.png"}, "not found"),
    ]:
        with pytest.raises(RenderError) as info:
            resolver.messages(tool_result(bad), "v", "r")
        assert "messages[2].content[0].content[0] (image)" in str(info.value)
        assert message in str(info.value)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("image", "bytes in base64; the API takes at most"), ("document", "at most 32,000,000")],
)
def test_a_huge_file_is_refused_by_its_size_before_it_is_read(
    tmp_path: Path, kind: str, message: str
) -> None:
    """A 1 GB file named by a row was read whole into memory, then refused."""
    spec = make_spec(tmp_path, [{"type": kind, "path": "big.bin"}], [{"id": "r"}])
    with open(tmp_path / "data" / "big.bin", "wb") as fh:  # sparse: no disk used
        fh.write(png(10, 10) if kind == "image" else pdf(["x"]))
        fh.truncate(1 << 30)
    tracemalloc.start()
    try:
        text = str(render_error(spec))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message in text and "file 'big.bin'" in text
    assert peak < 32 << 20, f"{peak:,} bytes allocated to refuse it"


def test_a_fifo_is_refused_not_read_forever(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "r", "image": "pipe.png", "q": "?"}])
    os.mkfifo(tmp_path / "data" / "pipe.png")
    assert "not a regular file" in str(render_error(spec))


def test_an_image_path_inside_a_content_document_is_resolved_like_any_image(
    tmp_path: Path,
) -> None:
    """A document whose source is `{type: content, content: [blocks]}` (text and image
    blocks, SDK ``ContentBlockSourceParam``) was passed on unread and unchecked."""
    from batchmark.runs._content import ContentResolver

    spec = make_spec(tmp_path, "{{ q }}", [{"id": "r", "q": "?"}], files={"a.png": png(5, 6)})
    resolver = ContentResolver(spec)

    def doc(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
        source = {"type": "content", "content": list(blocks)}
        return [{"role": "user", "content": [{"type": "document", "source": source}]}]

    out = resolver.messages(doc({"type": "image", "path": "a.png"}), "v", "r")
    [image] = out[0]["content"][0]["source"]["content"]
    assert parse_blob_ref(image["source"]["data"]).size == (5, 6) and resolver.refs == 1
    with pytest.raises(RenderError) as info:
        resolver.messages(doc({"type": "image", "path": "../x.png"}), "v", "r")
    assert "messages[0].content[0].source.content[0] (image): path" in str(info.value)


def test_a_document_from_the_data_may_have_empty_citations(tmp_path: Path) -> None:
    """``CitationsConfigParam`` is ``total=False``: ``citations: {}`` is a valid config the
    API takes (the emulator too); the resolver refused it."""
    from batchmark.runs._content import ContentResolver

    spec = make_spec(tmp_path, "{{ q }}", [{"id": "r", "q": "?"}])
    document = {"type": "document", "text": "A note.", "citations": {}}
    [message] = ContentResolver(spec).messages([{"role": "user", "content": [document]}], "v", "r")
    assert message["content"][0]["citations"] == {}


def test_memory_does_not_grow_with_the_text_documents_read(tmp_path: Path) -> None:
    """The resolver remembered the facts of up to 4,096 files, a text document's whole
    text among them: rows naming distinct 1 MB text files kept every one in memory."""
    files = {f"d{i}.txt": (b"%03d " % i) * 250_000 for i in range(48)}
    rows = [{"id": f"r{i}", "doc": f"d{i}.txt"} for i in range(48)]
    spec = make_spec(tmp_path, [{"type": "document", "path": "{{ doc }}"}], rows, files=files)
    del files
    assert sum(1 for _ in expand(spec)) == 48  # imports and first-use caches warmed up
    tracemalloc.start()
    try:
        for request in expand(spec):
            del request
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert current < 16 << 20, f"{current:,} bytes still held after 48 MB of documents"


@pytest.mark.parametrize("path", ["loop.png", "loop.png/x.png"])
@pytest.mark.parametrize("outside", [False, True], ids=["inside-only", "allow-outside"])
def test_a_symlink_loop_is_a_render_error_not_a_traceback(
    tmp_path: Path, path: str, outside: bool
) -> None:
    """Path.resolve raised RuntimeError('Symlink loop ...') from validate and run."""
    spec = make_spec(
        tmp_path,
        IMAGE_SPEC,
        [{"id": "loop-row", "image": path, "q": "?"}],
        dataset={"allow_outside_paths": outside},
    )
    os.symlink("loop.png", tmp_path / "data" / "loop.png")
    text = str(render_error(spec))
    assert "row 'loop-row'" in text and repr(path) in text and "symlink loop" in text
