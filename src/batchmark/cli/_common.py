"""What the command modules share: common options, the progress bar, consoles, numbers.

The consoles are :class:`~batchmark._terminal.SafeConsole`: a string printed on them
(a row id, a variant name, a path) is shown as written, never read as markup; styled
output is built as ``Text``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

from batchmark._terminal import SafeConsole, visible
from batchmark.cli._complete import complete_run_ref
from batchmark.runs._run import Run, command_ref

if TYPE_CHECKING:
    from batchmark.runs._batches import Progress

__all__ = [
    "allow_external_code_option",
    "base_url_option",
    "complete_run_ref",
    "echo",
    "fmt_int",
    "forget_run",
    "format_option",
    "max_cost_option",
    "note_run",
    "noted_run",
    "poll_option",
    "progress_detail",
    "progress_display",
    "results_option",
    "run_base_url_option",
    "stdout_console",
    "stopped_run_message",
]

results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results root: runs live in RESULTS/<eval>/<run id>/.",
)
base_url_option = click.option(
    "--base-url",
    default=None,
    help="API endpoint (default: ANTHROPIC_BASE_URL, else the real API); a run records "
    "it, and resume, score and cancel go back to it.",
)
# What ``Endpoint.resolve(run=...)`` does: ``base_url`` or run.json's ``base_url``; for a
# run made against the real API, ANTHROPIC_BASE_URL, else the real API.
run_base_url_option = click.option(
    "--base-url",
    default=None,
    help="API endpoint (default: the one the run was made against, as recorded in its "
    "run.json, whatever ANTHROPIC_BASE_URL now says; for a run made against the real API, "
    "ANTHROPIC_BASE_URL if set, else the real API).",
)
poll_option = click.option(
    "--poll-interval",
    type=float,
    default=None,
    help="Override the config's first poll interval, in seconds.",
)
allow_external_code_option = click.option(
    "--allow-external-code",
    is_flag=True,
    help="Let the config's `python:` scorers and responders load code from outside its "
    "repository (installed modules, files elsewhere). Only for configs you trust: see "
    "docs/security.md.",
)
max_cost_option = click.option(
    "--max-cost",
    type=float,
    default=None,
    metavar="USD",
    help="Refuse to submit if the estimated maximum cost (USD, batch prices) is over this.",
)


def _stderr_console() -> Console:
    return SafeConsole(stderr=True)


PROGRESS_BAR_WIDTH = 10
"""Characters of the progress bar: the line fits an 80-column terminal."""


class _Detail(ProgressColumn):
    """The request states and batches: the one column cut (with …) when the line is too
    wide, so the counts and the elapsed time always show."""

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("detail", ""), no_wrap=True, overflow="ellipsis")


def progress_detail(p: Progress) -> str:
    """The states of a run's requests, short: states with none are left out."""
    in_flight = p.states.get("submitted", 0)
    queued = p.states.get("pending", 0) + p.states.get("submitting", 0)
    failed = p.states.get("failed", 0)
    parts = [f"{n} {what}" for n, what in ((in_flight, "in flight"), (queued, "queued")) if n]
    if failed:
        parts.append(f"{failed} failed")
    open_batches = sum(1 for b in p.batches if not b["collected"])
    parts.append(f"batches {open_batches}/{len(p.batches)} open")
    if p.waiting:
        parts.append(p.waiting)
    return " · ".join(parts)


@contextlib.contextmanager
def progress_display(quiet: bool, console: Console | None = None) -> Iterator[Any]:
    """A rich progress bar fed from the ledger's counts; a no-op when quiet.

    One line that fits 80 columns: ``requests ━━━━━━━━━━ 250/400 150 in flight ·
    batches 2/2 open 0:00:07``; on a narrower terminal the states are cut, not the
    counts or the time.
    """
    if quiet:
        yield None
        return
    console = console or _stderr_console()
    whole = Column(no_wrap=True)
    bar = RichProgress(
        TextColumn("[bold]requests", table_column=whole),
        BarColumn(bar_width=PROGRESS_BAR_WIDTH, table_column=Column(no_wrap=True)),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        _Detail(),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console,
        transient=False,
    )
    task = bar.add_task("requests", total=None, detail="expanding")

    def update(p: Progress) -> None:
        if not bar.live.is_started:
            bar.start()  # drawn from the first progress on: an early error prints alone
        bar.update(task, total=p.total, completed=p.ended, detail=progress_detail(p))

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


# The run the current command works on: a command stopped (Ctrl-C, SIGTERM) or failed
# midway (a full disk) names it, with the command that continues it.
_NOTED: dict[str, tuple[Run, str | None]] = {}


def note_run(handle: Run, again: str | None = "batchmark resume {run}") -> Run:
    """Remember ``handle`` as this command's run; ``again`` continues it (``{run}``), None
    for a command that only reads it."""
    _NOTED["run"] = (handle, again)
    return handle


def noted_run() -> Run | None:
    noted = _NOTED.get("run")
    return noted[0] if noted else None


def forget_run() -> None:
    _NOTED.clear()


def stopped_run_message() -> str | None:
    """What to tell a user whose command stopped midway: its run and how to continue."""
    noted = _NOTED.get("run")
    if noted is None:
        return None
    handle, again = noted
    if again is None:
        return None
    try:
        info = handle.info
    except (OSError, ValueError):
        info = {}
    if info.get("emulated"):
        config = info.get("config_path", "CONFIG")
        return (
            f"run {handle.id} stopped with its in-process emulator: `batchmark run {config} "
            "--emulate` starts it again (answers already collected come from the cache)"
        )
    command = again.format(run=command_ref(handle.path))
    return f"run {handle.id} stopped; nothing is lost: `{command}` continues it"


def echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for a message holding names or ids: control characters visible."""
    click.echo(visible(message), err=err, nl=nl)


def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def stdout_console() -> Console:
    """The console for tables: full width on a terminal, 160 columns in a pipe or log."""
    console = SafeConsole()
    return console if console.is_terminal else SafeConsole(width=160)


def format_option(choices: list[str], help: str, default: str | None = None) -> Any:
    """``--format``: output for people (the first choice by default) or for programs."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default or choices[0],
        show_default=True,
        help=help,
    )
