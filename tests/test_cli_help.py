"""Every command says what it does: sqlite-utils fails its own tests on a command with
no help, and so do we (STYLE.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from batchmark.cli import COMMANDS as LAZY
from batchmark.cli import cli


def _commands(group: click.Group, prefix: str = "batchmark") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads the lazily imported ones
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = [("batchmark", cli), *_commands(cli)]


def test_the_command_line_has_commands() -> None:
    assert len(COMMANDS) > 10


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_commands_have_help(path: str, command: click.Command) -> None:
    assert command.help, f"`{path}` is missing its help"
    assert command.get_short_help_str(), f"`{path}` has no short help for its group's list"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_and_argument_is_explained(path: str, command: click.Command) -> None:
    """Options carry ``help=``; arguments (click gives them none) are named in the help."""
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    bare = [p.name for p in options if not p.help]
    assert bare == [], f"`{path}`: options without help"
    unnamed = [
        name
        for p in command.params
        if isinstance(p, click.Argument)
        and (name := re.findall(r"[A-Z_]+", p.human_readable_name)[0]) not in (command.help or "")
    ]
    assert unnamed == [], f"`{path}`: arguments its help does not mention"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_help_prints(path: str, command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_the_lazy_command_list_says_what_the_commands_docstrings_say() -> None:
    """``--help`` lists the commands from ``COMMANDS`` without importing them: each line
    must be the command's own short help, and every command must be listed there."""
    ctx = click.Context(cli)
    registered = {name for name, _ in _commands(cli) if " " not in name.removeprefix("batchmark ")}
    assert {f"batchmark {name}" for name in LAZY} == registered - {"batchmark"}
    for name, (module, line) in LAZY.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.callback is not None
        assert command.callback.__module__ == f"batchmark.cli.{module}", name
        assert line == command.get_short_help_str(limit=10_000), name


LIGHT = ("anthropic", "pydantic", "pandas", "numpy", "datasets", "pyarrow", "jinja2", "httpx")
NO_SDK = ("anthropic", "pandas", "numpy", "datasets", "pyarrow", "httpx")
QUICKSTART = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["--help"], LIGHT),
        (["status", "--results", "{root}"], LIGHT),
        (["status", "--help"], LIGHT),
        (["baseline", "list", "--results", "{root}"], LIGHT),
        (["validate", QUICKSTART], NO_SDK),  # renders every request: config models, jinja2
    ],
)
def test_commands_import_only_what_they_use(
    args: list[str], forbidden: tuple[str, ...], tmp_path: Path
) -> None:
    """Issue 18: `batchmark --help` took 3.0 s (anthropic alone 1.7 s; datasets/pyarrow
    ~150 MB), `validate` of the quickstart 3.1 s and 222 MB. What a command imports is
    checked here; the time is benchmarks/cli_start.py's."""
    code = (
        "import json, sys\n"
        "from batchmark.cli import main\n"
        "try:\n"
        f"    main({[a.replace('{root}', str(tmp_path)) for a in args]!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {forbidden!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_a_mistyped_command_is_told_the_close_ones(tmp_path: Path) -> None:
    """A mistyped command names the commands it may mean, though none is imported yet
    (click suggests from the commands it holds, and the lazy group holds none)."""
    done = subprocess.run(
        [sys.executable, "-m", "batchmark", "staus"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "No such command 'staus'. Did you mean 'status'?" in done.stderr
    assert "Traceback" not in done.stderr
