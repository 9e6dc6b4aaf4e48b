"""Hostile inputs to content blocks (``runs._content``), found in review: each is a
clear ``RenderError`` naming the row and the block, or a request the API would take."""

from __future__ import annotations

from pathlib import Path

from .test_content import IMAGE_SPEC, make_spec, render_error


def test_a_path_with_a_nul_byte_is_a_render_error_not_a_traceback(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, IMAGE_SPEC, [{"id": "nul-row", "image": "a\x00b.png", "q": "?"}])
    text = str(render_error(spec))
    assert "row 'nul-row'" in text and "messages[0].content[0] (image)" in text
    assert "NUL" in text
