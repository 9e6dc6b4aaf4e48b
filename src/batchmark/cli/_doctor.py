"""``batchmark doctor``: check a run's files and recover its batch ids."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from batchmark.cli import cli
from batchmark.cli._common import complete_run_ref, format_option, results_option, stdout_console
from batchmark.runs._doctor import Diagnosis, diagnose


@cli.command("doctor")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@results_option
@click.option(
    "--base-url",
    default=None,
    help="API endpoint to list the key's batches from (default: the one the run was made "
    "against, as recorded in its run.json).",
)
@click.option(
    "--no-list",
    is_flag=True,
    help="Do not ask the API for the key's batches (check the files only).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="List at most this many of the key's batches (newest first).",
)
@format_option(["table", "json"], "Output for people (table) or programs (json).")
@click.pass_context
def doctor_command(
    ctx: click.Context,
    run_ref: str,
    results: Path,
    base_url: str | None,
    no_list: bool,
    limit: int,
    fmt: str,
) -> None:
    """Check RUN's files and recover its batch ids, sending nothing.

    Checks run.json, the config snapshot, the ledger and the response cache (SQLite
    integrity checks); salvages every batch id a damaged ledger still holds; and lists
    the API key's batches created since the run was made, with their request counts, so
    none is left orphaned. Prints what to do next. Exits 0 when every file is sound, 2
    when one is damaged.
    """
    diagnosis = diagnose(
        run_ref, results=results, base_url=base_url, list_batches=not no_list, limit=limit
    )
    if fmt == "json":
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        print_diagnosis(diagnosis)
    ctx.exit(0 if diagnosis.healthy else 2)


def print_diagnosis(diagnosis: Diagnosis) -> None:
    console = stdout_console()
    files = Table(title=f"run {diagnosis.run_id}: {diagnosis.path}", title_justify="left")
    for col in ("file", "", "path", "found"):
        files.add_column(col)
    for c in diagnosis.checks:
        mark = Text("ok", "green") if c.ok else Text("DAMAGED", "bold red")
        files.add_row(c.name, mark, c.path, c.detail)
    console.print(files)
    if diagnosis.salvaged:
        salvaged = Table(title="batch ids in the ledger", title_justify="left")
        for col in ("batch", "found in", "status", "requests", "created"):
            salvaged.add_column(col)
        for b in diagnosis.salvaged:
            n = "" if b.n_requests is None else f"{b.n_requests:,}"
            salvaged.add_row(b.batch_id, b.found_in, b.status or "", n, b.created_at or "")
        console.print(salvaged)
    else:
        console.print("no batch id found in the ledger")
    if diagnosis.key_batches is not None:
        listed = Table(title=diagnosis.key_batches_note, title_justify="left")
        for col in ("batch", "created", "status", "requests", "counts", "in this ledger"):
            listed.add_column(col)
        for k in diagnosis.key_batches:
            counts = ", ".join(f"{n} {state}" for state, n in k.counts.items() if n)
            listed.add_row(
                k.batch_id,
                k.created_at,
                k.status,
                f"{k.requests:,}",
                counts,
                "yes" if k.in_ledger else "no",
            )
        console.print(listed)
        if not diagnosis.key_batches:
            console.print("the key has no batches since the run was made")
    elif diagnosis.key_batches_note:
        console.print(diagnosis.key_batches_note)
    for step in diagnosis.next_steps:
        console.print(f"next: {step}")
