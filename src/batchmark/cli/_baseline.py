"""``batchmark baseline save | list``: baselines under ``RESULTS/baselines/``.

Apart from ``ci`` so that listing baselines imports neither the SDK nor the config
models (issue 18).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from batchmark.ci._baseline import list_baselines, save_baseline
from batchmark.cli import cli
from batchmark.cli._common import complete_run_ref, echo, results_option, stdout_console
from batchmark.runs._run import open_run


@cli.group("baseline")
def baseline_group() -> None:
    """Save and list baselines (results/baselines/NAME.json, meant to be committed)."""


@baseline_group.command("save")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@click.argument("name")
@results_option
def baseline_save_command(run_ref: str, name: str, results: Path) -> None:
    """Save RUN's summary and per-item scores as baseline NAME."""
    path = save_baseline(open_run(run_ref, results), name, results=results)
    echo(f"saved baseline {name!r}: {path}")


@baseline_group.command("list")
@results_option
def baseline_list_command(results: Path) -> None:
    """The baselines under RESULTS/baselines/."""
    table = Table(title=f"baselines under {results / 'baselines'}", title_justify="left")
    for col in ("name", "eval", "run", "saved", "scores"):
        table.add_column(col)
    for b in list_baselines(results):
        table.add_row(
            b.name, b.eval, b.run_id, str(b.data.get("created_at", "")), str(len(b.data["scores"]))
        )
    stdout_console().print(table)
