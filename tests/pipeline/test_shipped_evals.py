"""The shipped vision and document-QA evals validate and run with --emulate, and their
scripted answers score as their responders say: the pipeline, not the models, is tested."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import jsonschema
import pytest
import yaml

import batchmark
from batchmark.config._schema import config_json_schema

REPO = Path(__file__).resolve().parents[2]


def failed(run: batchmark.Run, scorer: str) -> set[tuple[str, str, str]]:
    return {
        (s["model_key"], s["variant"], s["row_id"])
        for s in run.scores()
        if s["scorer"] == scorer and not s["passed"]
    }


@pytest.mark.parametrize("name", ["vision", "docqa"])
def test_the_shipped_eval_matches_the_json_schema(name: str) -> None:
    data = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    jsonschema.validate(data, config_json_schema())


@pytest.mark.parametrize("name", ["vision", "docqa"])
def test_the_shipped_eval_validates(name: str) -> None:
    cmd = [sys.executable, "-m", "batchmark", "validate", str(REPO / "configs" / f"{name}.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"OK ({name})" in proc.stdout


def test_the_vision_eval_runs_with_emulate(tmp_path: Path) -> None:
    run = batchmark.run(REPO / "configs" / "vision.yaml", results=tmp_path, emulate=True)
    assert run.status.complete
    responses = list(run.responses())
    assert len(responses) == 6 * 2 * 2 and {r["status"] for r in responses} == {"succeeded"}
    # haiku's script calls yellow "gold" and answers white in a sentence
    haiku = {("claude-haiku-4-5", v) for v in ("image-first", "question-first")}
    assert failed(run, "exact_match") == {(*h, r) for h in haiku for r in ("yellow", "white")}
    assert failed(run, "includes") == {(*h, "yellow") for h in haiku}


def test_the_docqa_eval_runs_with_emulate(tmp_path: Path) -> None:
    run = batchmark.run(REPO / "configs" / "docqa.yaml", results=tmp_path, emulate=True)
    assert run.status.complete
    assert len(list(run.responses())) == 6 * 2
    # the plain-text variant's script answers two questions in a sentence
    model = "claude-haiku-4-5"
    assert failed(run, "exact_match") == {(model, "text", "shift"), (model, "text", "supply-boat")}
    assert failed(run, "includes") == set()


def _same(a: bytes, b: bytes) -> bool:
    """Equal files; PNGs equal in header and pixels (zlib builds may compress differently)."""
    if not a.startswith(b"\x89PNG"):
        return a == b

    def chunks(data: bytes) -> dict[bytes, bytes]:
        out, i = {}, 8
        while i < len(data):
            (n,) = struct.unpack(">I", data[i : i + 4])
            out[data[i + 4 : i + 8]] = data[i + 8 : i + 8 + n]
            i += 12 + n
        return out

    x, y = chunks(a), chunks(b)
    return x[b"IHDR"] == y[b"IHDR"] and zlib.decompress(x[b"IDAT"]) == zlib.decompress(y[b"IDAT"])


def test_the_shipped_files_are_what_their_scripts_make(tmp_path: Path) -> None:
    """The committed images and PDF are the scripts' output (so they can be made again)."""
    colours = ("red", "green", "blue", "yellow", "black", "white")
    for folder, script, files in [
        ("vision", "make_images.py", ["questions.jsonl", *(f"images/{c}.png" for c in colours)]),
        ("docqa", "make_pdf.py", ["handbook.pdf", "handbook.txt"]),
    ]:
        source = REPO / "evals" / folder
        copy = tmp_path / folder
        copy.mkdir()
        (copy / script).write_text((source / script).read_text())
        subprocess.run([sys.executable, str(copy / script)], check=True, timeout=60)
        for name in files:
            assert _same((copy / name).read_bytes(), (source / name).read_bytes()), name
