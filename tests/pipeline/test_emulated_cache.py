"""The response cache of emulated runs is keyed by what the emulator answers with: a
run after switching the responder (or editing its rules) gets the new responder's
answers, not the old cached ones (issue 17: 400 stale echo answers were served)."""

from __future__ import annotations

from pathlib import Path

import yaml

import batchmark

from .support import write_config

RULES = "- text: scripted answer\n"


def _set_responder(config: Path, responder: str) -> None:
    raw = yaml.safe_load(config.read_text())
    raw["emulator"] = {"responder": responder}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_switching_the_responder_does_not_serve_the_old_answers(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    config = write_config(folder, models=["claude-haiku-4-5"])
    (folder / "rules.yaml").write_text(RULES)
    results = tmp_path / "results"
    echo = batchmark.run(config, results=results, emulate=True)
    assert {r["text"] for r in echo.responses()} != {"scripted answer"}

    _set_responder(config, "scripted:rules.yaml")
    scripted = batchmark.run(config, results=results, emulate=True)
    assert {r["text"] for r in scripted.responses()} == {"scripted answer"}

    (folder / "rules.yaml").write_text("- text: edited answer\n")  # the rules edited
    edited = batchmark.run(config, results=results, emulate=True)
    assert {r["text"] for r in edited.responses()} == {"edited answer"}


def test_the_same_responder_still_hits_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    config = write_config(folder, models=["claude-haiku-4-5"])
    results = tmp_path / "results"
    first = batchmark.run(config, results=results, emulate=True)
    again = batchmark.run(config, results=results, emulate=True)
    assert again.status.done == first.status.total
    assert {r["attempts"] for r in again.responses()} == {0}  # every answer from the cache
