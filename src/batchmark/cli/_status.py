"""``batchmark status``: where runs stand, read from their ledgers.

Kept apart from ``run``/``resume`` so that it imports neither the SDK nor the config
models: it answers at once (issue 18).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from batchmark._errors import StoreError
from batchmark.cli import cli
from batchmark.cli._common import (
    complete_run_ref,
    fmt_int,
    format_option,
    note_run,
    results_option,
    stdout_console,
)
from batchmark.runs._run import Run, open_run
from batchmark.runs._store import iter_run_folders


@cli.command("status")
@click.argument("run_ref", metavar="[RUN]", required=False, shell_complete=complete_run_ref)
@results_option
@format_option(["table", "json"], "Output for people (table) or programs (json).")
def status_command(run_ref: str | None, results: Path, fmt: str) -> None:
    """Show RUN and its batches, or every run under the results root."""
    if run_ref is None:
        runs = [Run(f) for f in iter_run_folders(results)]
        rows = [_status_row_or_damage(r) for r in runs]
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"runs under {results}", title_justify="left")
        for col in ("run", "eval", "state", "requests", "done", "failed", "in flight", "queued"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["run"] + (" (emulated)" if r.get("emulated") else ""),
                r["eval"],
                f"{r['state']}, {r['waiting']}" if r.get("waiting") else r["state"],
                *(fmt_int(r[k]) for k in ("total", "done", "failed", "in_flight", "pending")),
            )
        console = stdout_console()
        console.print(table)
        for r in rows:
            if "error" in r:
                console.print(r["error"])
        return
    handle = note_run(open_run(run_ref, results), again=None)
    row = _status_row(handle)
    batches = handle.batches()
    if fmt == "json":
        row["batches"] = batches
        click.echo(json.dumps(row, indent=2))
        return
    console = stdout_console()
    emulated = ", EMULATED: answers from batchmark's emulator" if row["emulated"] else ""
    console.print(
        f"run {row['run']} ({row['eval']}{emulated}): {row['state']} — {row['done']} done, "
        f"{row['failed']} failed, {row['in_flight']} in flight, {row['pending']} queued "
        f"of {row['total']}"
    )
    if row["waiting"]:
        console.print(_waiting_line(row["waiting"], row["waiting_detail"] or {}))
    if batches:
        table = Table(title="batches", title_justify="left")
        for col in ("batch", "status", "requests", "counts", "collected", "adopted"):
            table.add_column(col)
        for b in batches:
            table.add_row(
                b["batch_id"],
                b["status"],
                str(b["n_requests"]),
                b["counts"] or "",
                "yes" if b["collected"] else "no",
                {0: "no", 1: "unverified", 2: "verified"}.get(b["adopted"], "yes"),
            )
        console.print(table)


def _waiting_line(waiting: str, detail: dict[str, Any]) -> str:
    """``waiting for queue room since 12:03:04 (a batch of 19 requests was refused; next
    try after 12:03:09): <the API's message>``."""

    def clock(ts: float | None) -> str:
        return "?" if ts is None else datetime.fromtimestamp(ts).strftime("%H:%M:%S")

    return (
        f"{waiting} since {clock(detail.get('since'))} (a batch of "
        f"{fmt_int(detail.get('n_requests'))} requests was refused; next try after "
        f"{clock(detail.get('retry_at'))}): {detail.get('message', '')}"
    )


def _status_row_or_damage(handle: Run) -> dict[str, Any]:
    """A run's row; one whose files cannot be read is listed as such, with what to do."""
    try:
        return _status_row(handle)
    except StoreError as err:
        empty = dict.fromkeys(
            ("total", "done", "failed", "in_flight", "pending", "waiting", "waiting_detail")
        )
        return {
            "run": handle.id,
            "eval": handle.folder.eval_name,
            "path": str(handle.path),
            "state": "unreadable",
            **empty,
            "error": f"run {handle.id}: {err}",
        }


def _status_row(handle: Run) -> dict[str, Any]:
    s = handle.status
    return {
        "run": handle.id,
        "eval": handle.folder.eval_name,
        "path": str(handle.path),
        "state": s.state,
        "total": s.total,
        "done": s.done,
        "failed": s.failed,
        "in_flight": s.in_flight,
        "pending": s.pending,
        "waiting": s.waiting,
        "waiting_detail": s.waiting_detail,
        "emulated": bool(handle.info.get("emulated")),
    }
