"""Shared by the benchmark scripts: the machine description, the README's blocks, and
running one phase in a fresh interpreter (``run_phase``).

Each script owns one block of the top-level README's ``## Performance`` section::

    <!-- bench:NAME -->
    ...a Markdown table, notes and one line naming the machine and the date...
    <!-- /bench:NAME -->

``write_block`` replaces what lies between a script's two markers and leaves everything
else in the file untouched, so the scripts can be run in any order and any subset. A
block that does not exist yet is inserted just before the ``<!-- PERFORMANCE -->``
placeholder, which stays in place for the next new block. The file is rewritten
atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER = "<!-- PERFORMANCE -->"


def add_readme_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-readme``: print the figures only, leave README.md alone."""
    parser.add_argument(
        "--no-readme",
        dest="readme",
        action="store_false",
        help="print the figures only; do not rewrite this script's block in README.md",
    )


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_lines(packages: Iterable[str], sqlite: bool = False) -> list[str]:
    """The machine, Python and package versions, as the scripts print them."""
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    if sqlite:
        versions += f", SQLite {sqlite3.sqlite_version}"
    return [
        f"machine:  {platform.platform()}, {os.cpu_count()} CPUs ({platform.machine()})",
        f"python:   {platform.python_implementation()} {platform.python_version()}",
        f"packages: {versions}",
    ]


def machine_summary(packages: Iterable[str], sqlite: bool = False) -> str:
    """One Markdown line: the date, the machine, Python and package versions."""
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    if sqlite:
        versions += f", SQLite {sqlite3.sqlite_version}"
    today = datetime.date.today().isoformat()
    return (
        f"_Measured {today} on {platform.platform()}, {os.cpu_count()} CPUs "
        f"({platform.machine()}); {platform.python_implementation()} "
        f"{platform.python_version()}; {versions}._"
    )


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]], right: int = 1) -> list[str]:
    """A Markdown table; columns from index ``right`` on are right-aligned (numbers)."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row has {len(row)} cells, header has {len(header)}: {row!r}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def render_block(name: str, body: Sequence[str]) -> str:
    return "\n".join([f"<!-- bench:{name} -->", *body, f"<!-- /bench:{name} -->"])


def replace_block(text: str, name: str, body: Sequence[str]) -> str:
    """``text`` with block ``name`` set to ``body`` (inserted at the placeholder if new)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"bad block name {name!r}")
    block = render_block(name, body)
    start = re.compile(rf"^<!-- bench:{re.escape(name)} -->[ \t]*\r?$", re.MULTILINE)
    end = re.compile(rf"^<!-- /bench:{re.escape(name)} -->[ \t]*\r?$", re.MULTILINE)
    starts, ends = list(start.finditer(text)), list(end.finditer(text))
    if len(starts) > 1 or len(ends) > 1:
        raise ValueError(f"README has block {name!r} more than once; fix it by hand")
    if starts and ends:
        if ends[0].start() < starts[0].end():
            raise ValueError(f"README block {name!r}: end marker before start marker")
        return text[: starts[0].start()] + block + text[ends[0].end() :]
    if starts or ends:
        raise ValueError(f"README block {name!r} has only one of its two markers")
    placeholder = re.compile(rf"^{re.escape(PLACEHOLDER)}[ \t]*\r?$", re.MULTILINE)
    found = list(placeholder.finditer(text))
    if len(found) != 1:
        raise ValueError(
            f"README has no block {name!r} and {len(found)} {PLACEHOLDER} placeholders "
            "(need exactly one to insert a new block)"
        )
    at = found[0].start()
    return text[:at] + block + "\n\n" + text[at:]


def write_block(name: str, body: Sequence[str], readme: Path = README) -> Path:
    """Rewrite block ``name`` of ``readme`` atomically; everything else stays as it was."""
    with open(readme, encoding="utf-8", newline="") as fh:
        text = fh.read()
    new = replace_block(text, name, body)
    if "\r\n" in text:  # keep the file's line endings
        new = re.sub(r"(?<!\r)\n", "\r\n", new)
    fd, tmp = tempfile.mkstemp(prefix=f".{readme.name}.", suffix=".tmp", dir=readme.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, os.stat(readme).st_mode & 0o7777)
        os.replace(tmp, readme)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return readme


def run_phase(script: str, phase: str, config: Path, datasets_cache: Path) -> dict:
    """Run ``script --child PHASE CONFIG`` in a fresh interpreter (its peak RSS is the
    phase's own) with ``datasets_cache`` as its ``datasets`` cache, offline; the JSON
    object the child printed last."""
    cmd = [sys.executable, script, "--child", phase, str(config)]
    env = {**os.environ, "HF_DATASETS_CACHE": str(datasets_cache), "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])
