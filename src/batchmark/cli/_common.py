"""What the command modules share: common options, the progress bar, consoles, numbers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from batchmark._batches import Progress

__all__ = [
    "allow_external_code_option",
    "base_url_option",
    "max_cost_option",
    "fmt_cost",
    "fmt_int",
    "format_option",
    "poll_option",
    "progress_display",
    "results_option",
    "stdout_console",
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
    help="API endpoint (default: ANTHROPIC_BASE_URL, else the run's recorded endpoint, "
    "else the real API).",
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
    return Console(stderr=True)


@contextlib.contextmanager
def progress_display(quiet: bool) -> Iterator[Any]:
    """A rich progress bar fed from the ledger's counts; a no-op when quiet."""
    if quiet:
        yield None
        return
    console = _stderr_console()
    bar = RichProgress(
        TextColumn("[bold]requests"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("requests", total=None, detail="expanding")

    def update(p: Progress) -> None:
        open_batches = sum(1 for b in p.batches if not b["collected"])
        detail = (
            f"in flight {p.states.get('submitted', 0)} · queued "
            f"{p.states.get('pending', 0) + p.states.get('submitting', 0)} · failed "
            f"{p.states.get('failed', 0)} · batches {open_batches} open / {len(p.batches)}"
        )
        if not bar.live.is_started:
            bar.start()  # drawn from the first progress on: an early error prints alone
        bar.update(task, total=p.total, completed=p.ended, detail=detail)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def fmt_cost(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.4f}"


def stdout_console() -> Console:
    """The console for tables: full width on a terminal, 160 columns in a pipe or log."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


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
