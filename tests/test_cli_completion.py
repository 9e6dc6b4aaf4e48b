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


def _bash_tab(lines: list[str], cwd: Path, bin_dir: Path) -> list[str]:
    """What an interactive bash shows after typing each of ``lines`` and TAB, with
    batchmark's completion loaded as the README says (a real bash on a pseudo-terminal;
    the script is the one `_BATCHMARK_COMPLETE=bash_source batchmark` prints)."""
    import pty
    import select
    import time

    script = bin_dir / "completion.bash"
    script.write_text(BashComplete(cli, {}, "batchmark", "_BATCHMARK_COMPLETE").source())
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive bash, no user rc files
        os.chdir(cwd)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(cwd),
            "TERM": "dumb",
            "PS1": "$ ",
            "INPUTRC": "/dev/null",
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)

    def read(until: str, timeout: float = 30.0) -> str:
        out, end = "", time.monotonic() + timeout
        while until not in out and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096).decode(errors="replace")
                except OSError:
                    break
        return out

    shown = []
    try:
        os.write(fd, f'source "{script}"; echo LOAD""ED\n'.encode())
        read("\nLOADED\r\n$ ")  # the prompt: readline reads the keys from here on
        for line in lines:  # complete, go to the end of the line, end it
            os.write(fd, line.encode() + b'\t\x05; echo DO""NE\n')
            shown.append(read("\nDONE\r\n$ ").split("\n")[0])
        return shown
    finally:
        os.close(fd)
        os.waitpid(pid, 0)


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="no bash")
def test_bash_completes_latest_colon_eval(root: tuple[Path, list[str]], tmp_path: Path) -> None:
    where, _ = root
    entry = tmp_path / "batchmark"  # the console script, as installed
    entry.write_text(f'#!/bin/sh\nexec {sys.executable} -m batchmark "$@"\n')
    entry.chmod(0o755)
    # bash splits words at ':' (COMP_WORDBREAKS): `latest:` completes the eval after it
    (shown,) = _bash_tab(["batchmark status latest:ar"], where, tmp_path)
    assert "status latest:arith " in shown


def test_bash_pieces_of_a_word_split_at_colons_complete_what_follows(
    root: tuple[Path, list[str]],
) -> None:
    where, _ = root  # COMP_WORDS as bash splits `latest:` and `latest:ar`
    assert _complete("batchmark report latest :", where) == [("plain", "arith")]
    assert _complete("batchmark report latest : ar", where) == [("plain", "arith")]


def test_a_folder_left_by_a_run_killed_while_expanding_is_not_offered(
    root: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    where, (old, new) = root
    copy = tmp_path / "w"
    shutil.copytree(where / "results", copy / "results")
    # `run` expands into a hidden `.ID.partial` folder (run.json and ledger included) and
    # renames it when done: kill -9 before the rename leaves it behind, not a run.
    shutil.copytree(
        copy / "results" / "arith" / new, copy / "results" / "arith" / f".{new}x.partial"
    )
    assert _offered("batchmark status ", copy, monkeypatch) == ["latest", "latest:arith", new, old]
    assert _offered("batchmark status .", copy, monkeypatch) == []


def test_completion_follows_results_given_with_a_tilde(
    root: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, ids = root  # the shell expands `~` when it runs the command, not in COMP_WORDS
    monkeypatch.setenv("HOME", str(where))
    assert set(
        _offered("batchmark status --results ~/results ", where / "cfg", monkeypatch)
    ) >= set(ids)
