"""Images, documents and text blocks end to end: a real run through the SDK against the
emulator, the blobs kept once in the ledger and spliced into create bodies, bad input
refused before anything is sent, and a run killed -9 mid-submission resumed."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import batchmark

from ..media import pdf, png
from .support import LiveEmulator, write_config

# Six rows over three distinct images (rows 0 and 3 share one), each also with a PDF.
IMAGES = {
    f"img/{i}.png": png(40 + i, 30 + i, rgb=(i * 60, 0, 0), pad=os.urandom(3000)) for i in range(3)
}
ROWS = [
    {"id": f"r{i}", "image": f"img/{i % 3}.png", "question": f"Question {i}?"} for i in range(6)
]
PROMPTS = [
    {
        "name": "look",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "path": "{{ image }}"},
                    {"type": "text", "text": "{{ question }}"},
                ],
            }
        ],
    },
    {
        "name": "read",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Shared instructions.",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {
                        "type": "document",
                        "path": "report.pdf",
                        "title": "Report",
                        "citations": {"enabled": True},
                    },
                    {"type": "image", "path": "{{ image }}"},
                    {"type": "text", "text": "{{ question }}"},
                ],
            }
        ],
    },
]


def make_config(folder: Path, **extra: Any) -> Path:
    config = write_config(folder, rows=ROWS, prompts=PROMPTS, models=["claude-haiku-4-5"], **extra)
    for name, data in IMAGES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "report.pdf").write_bytes(pdf(["page one", "page two"]))
    return config


def sent_images(live: LiveEmulator) -> Counter[tuple[str, str]]:
    """(custom_id, sha256 of each image's bytes) over every create the emulator received."""
    seen: Counter[tuple[str, str]] = Counter()
    for batch in live.emu.batches.values():
        for request in batch.requests:
            for message in request["params"]["messages"]:
                for block in message["content"]:
                    if block["type"] == "image":
                        raw = base64.b64decode(block["source"]["data"], validate=True)
                        seen[(request["custom_id"], hashlib.sha256(raw).hexdigest())] += 1
    return seen


def expected_images(run: batchmark.Run) -> Counter[tuple[str, str]]:
    by_row = {r["id"]: hashlib.sha256(IMAGES[r["image"]]).hexdigest() for r in ROWS}
    return Counter((r["custom_id"], by_row[r["row_id"]]) for r in run.requests())


def test_image_document_and_text_blocks_reach_the_model_end_to_end(
    live: LiveEmulator, tmp_path: Path
) -> None:
    run = batchmark.run(make_config(tmp_path / "cfg"), results=tmp_path / "results")

    assert run.status.complete
    responses = {(r["variant"], r["row_id"]): r for r in run.responses()}
    assert len(responses) == 12
    look = responses[("look", "r4")]["text"].splitlines()
    assert look == ["[image image/png 41x31]", "Question 4?"]
    read = responses[("read", "r2")]["text"].splitlines()
    assert read == [
        "Shared instructions.",
        '[document application/pdf "Report"]',
        "[image image/png 42x32]",
        "Question 2?",
    ]
    # what the emulator received: the real bytes, each image once per request
    assert sent_images(live) == expected_images(run)
    sent = [r["params"] for b in live.emu.batches.values() for r in b.requests]
    read_params = next(p for p in sent if len(p["messages"][0]["content"]) == 4)
    cached, document = read_params["messages"][0]["content"][:2]
    assert cached["cache_control"] == {"type": "ephemeral"}
    assert document["citations"] == {"enabled": True}
    assert (
        base64.b64decode(document["source"]["data"])
        == (tmp_path / "cfg" / "report.pdf").read_bytes()
    )


def test_the_ledger_keeps_each_distinct_blob_once(live: LiveEmulator, tmp_path: Path) -> None:
    run = batchmark.run(make_config(tmp_path / "cfg"), results=tmp_path / "results")

    db = sqlite3.connect(run.path / "ledger.sqlite")
    blobs = dict(db.execute("SELECT sha256, length(data) FROM blobs"))
    expected = {hashlib.sha256(d).hexdigest(): len(base64.b64encode(d)) for d in IMAGES.values()}
    expected[hashlib.sha256((tmp_path / "cfg" / "report.pdf").read_bytes()).hexdigest()] = len(
        base64.b64encode((tmp_path / "cfg" / "report.pdf").read_bytes())
    )
    assert blobs == expected
    largest = max(len(p) for (p,) in db.execute("SELECT params FROM params"))
    assert largest < 2000  # references, not 4 kB of base64 per image


def test_a_rerun_is_served_from_the_response_cache(live: LiveEmulator, tmp_path: Path) -> None:
    config = make_config(tmp_path / "cfg")
    batchmark.run(config, results=tmp_path / "results")
    creates = len(live.emu.batches)
    again = batchmark.run(config, results=tmp_path / "results")
    assert again.status.complete
    assert len(live.emu.batches) == creates  # nothing sent twice


def test_a_missing_image_fails_the_run_before_anything_is_sent(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = make_config(tmp_path / "cfg")
    (tmp_path / "cfg" / "img" / "2.png").unlink()
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(tmp_path / "r")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ})
    assert proc.returncode == 2, proc.stderr
    assert "prompt variant 'look', row 'r2'" in proc.stderr
    assert "messages[0].content[0] (image): file 'img/2.png' not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert live.emu.batches == {}
    assert not [p for p in (tmp_path / "r").glob("arith/*") if not p.name.startswith(".")]


def test_validate_names_a_bad_image_and_exits_2(tmp_path: Path) -> None:
    config = make_config(tmp_path / "cfg")
    (tmp_path / "cfg" / "img" / "1.png").write_bytes(b"GIF89a")  # a cut-off GIF
    cmd = [sys.executable, "-m", "batchmark", "validate", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "row 'r1'" in proc.stderr and "file 'img/1.png'" in proc.stderr
    assert "cannot read the image's size" in proc.stderr


# --- kill -9 -----------------------------------------------------------------------------


def _start(config: Path, results: Path, live: LiveEmulator, crashpoint: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": live.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "BATCHMARK_CRASHPOINT": crashpoint,
    }
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("crashpoint", ["after_expand", "before_create@2", "after_create@2"])
def test_a_run_killed_during_submission_resumes_sending_each_image_once(
    live: LiveEmulator, tmp_path: Path, crashpoint: str
) -> None:
    """Killed -9 after expansion or between creates, then resumed: every request reached
    the emulator exactly once, each with the bytes of its own image, none missing."""
    config = make_config(tmp_path / "cfg", batch={"max_requests": 3, "max_in_flight": 1})
    results = tmp_path / "results"
    proc = _start(config, results, live, crashpoint)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    [folder] = [p for p in results.glob("arith/*") if not p.name.startswith(".")]

    run = batchmark.resume(folder.name, results=results, poll_interval=0.02)

    assert run.status.complete
    assert sent_images(live) == expected_images(run)  # each once, none missing
    assert max(Counter(live.submitted()).values()) == 1
    assert len(live.submitted()) == 12


def test_a_judge_scores_answers_to_image_requests(live: LiveEmulator, tmp_path: Path) -> None:
    """A judge's rubric sees the candidate's prompt with its image named, not its bytes."""
    judge = {
        "judge": {
            "name": "judge",
            "model": "claude-haiku-4-5",
            "rubric": "Prompt:\n{{ prompt }}\nResponse:\n{{ response }}\nGrade A or B.",
            "grades": {"A": 1.0, "B": 0.0},
        }
    }
    run = batchmark.run(make_config(tmp_path / "cfg", scorers=[judge]), results=tmp_path / "r")

    assert run.status.complete
    scores = [s for s in run.scores() if s["scorer"] == "judge"]
    assert len(scores) == 12 and not any(s["invalid"] for s in scores)
    rubrics = [
        r["params"]["messages"][0]["content"]
        for b in live.emu.batches.values()
        for r in b.requests
        if r["custom_id"].startswith("j-")
    ]
    assert len(rubrics) == 12
    assert all("[image]" in text and "blob:" not in text for text in rubrics)
