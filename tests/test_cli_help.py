"""Every command says what it does: sqlite-utils fails its own tests on a command with
no help, and so do we (STYLE.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from batchmark.cli import cli


def _commands(group: click.Group, prefix: str = "batchmark") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
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
