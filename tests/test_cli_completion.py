"""Shell completion of run ids (issue 17): click's own completion machinery in-process,
and once as bash drives it, through the real entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

import batchmark
from batchmark.cli import cli

from .pipeline.support import write_config


def _offered(words: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What bash would offer for the last word of ``words``, asked in-process."""
    monkeypatch.chdir(cwd)
    args = words.split(" ")[1:]
    complete = BashComplete(cli, {}, "batchmark", "_BATCHMARK_COMPLETE")
    return [item.value for item in complete.get_completions(args[:-1], args[-1])]


def _complete(words: str, cwd: Path) -> list[tuple[str, str]]:
    """What bash would offer for the last word of ``words`` (``(type, value)`` pairs)."""
    env = {
        **os.environ,
        "_BATCHMARK_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    out = subprocess.run(
        [sys.executable, "-m", "batchmark"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [tuple(line.split(",", 1)) for line in out.splitlines()]  # type: ignore[misc]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    where = tmp_path_factory.mktemp("complete")
    config = write_config(where / "cfg", models=["claude-haiku-4-5"])
    ids = [batchmark.run(config, results=where / "results", emulate=True).id for _ in range(2)]
    return where, ids


def test_run_ids_complete_newest_first_with_latest(
    root: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, (old, new) = root
    assert _offered("batchmark report ", where, monkeypatch) == [
        "latest",
        "latest:arith",
        new,
        old,
    ]
    assert _offered(f"batchmark resume {old[:-2]}", where, monkeypatch) == [old]
    assert _offered("batchmark status latest:", where, monkeypatch) == ["latest:arith"]
    assert _offered("batchmark ci --resume ", where, monkeypatch)[2:] == [new, old]


def test_completion_follows_results_given_before(
    root: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, ids = root
    elsewhere = where / "cfg"  # no results/ here
    assert _offered("batchmark compare ", elsewhere, monkeypatch) == ["latest"]
    words = f"batchmark compare --results {where / 'results'} "
    assert set(_offered(words, elsewhere, monkeypatch)) >= set(ids)


def test_the_console_entry_point_completes(root: tuple[Path, list[str]]) -> None:
    where, (old, new) = root
    assert _complete("batchmark doctor ", where)[2:] == [("plain", new), ("plain", old)]
