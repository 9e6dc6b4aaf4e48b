"""``batchmark run``, ``resume``, ``status`` and ``cancel``: parse, call, format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from batchmark._config import load_config
from batchmark._driver import cancel, resume, run
from batchmark._errors import RunIncomplete
from batchmark._run import Run, open_run
from batchmark._store import iter_run_folders
from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    base_url_option,
    fmt_cost,
    fmt_int,
    format_option,
    max_cost_option,
    poll_option,
    progress_display,
    results_option,
    stdout_console,
)


def print_summary(handle: Run, console: Console | None = None) -> None:
    """The end-of-run table: one row per model x variant."""
    console = console or stdout_console()
    cells = handle.summary()
    table = Table(title=f"run {handle.id}", title_justify="left")
    table.add_column("model")
    table.add_column("variant")
    for col in ("requests", "ok", "errored", "cached", "input tok", "output tok", "cache w/r"):
        table.add_column(col, justify="right")
    table.add_column("cost (batch)", justify="right")
    total_cost: float | None = 0.0
    standard: float | None = 0.0
    reused = sum(c["cached"] for c in cells)
    reused_cost = sum(c["reused_cost_usd"] or 0.0 for c in cells)
    for c in cells:
        table.add_row(
            c["model"],
            c["variant"],
            fmt_int(c["requests"]),
            fmt_int(c["succeeded"]),
            fmt_int(c["errored"]),
            fmt_int(c["cached"]),
            fmt_int(c["input_tokens"]),
            fmt_int(c["output_tokens"]),
            f"{fmt_int(c['cache_write_tokens'])}/{fmt_int(c['cache_read_tokens'])}",
            fmt_cost(c["cost_usd"]),
        )
        if c["cost_usd"] is None or total_cost is None or standard is None:
            total_cost = standard = None
        else:
            total_cost += c["cost_usd"]
            standard += c["cost_standard_usd"]
    console.print(table)
    if total_cost is not None and standard is not None:
        console.print(
            f"cost {fmt_cost(total_cost)} at batch prices "
            f"(standard API: {fmt_cost(standard)}, saved {fmt_cost(standard - total_cost)})"
        )
    else:
        console.print("cost: n/a for models without a price (add them under `pricing:`)")
    if reused:
        console.print(
            f"{reused:,} responses reused from the cache (worth {fmt_cost(reused_cost)}, "
            "not paid again; --no-cache sends them anyway)"
        )
    console.print(f"results: {handle.path}")


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@results_option
@click.option("--emulate", is_flag=True, help="Run offline against the bundled emulator.")
@base_url_option
@click.option("--no-cache", is_flag=True, help="Ignore the response cache: send every request.")
@click.option("--detach", is_flag=True, help="Submit the batches, print the run id and exit.")
@max_cost_option
@poll_option
@allow_external_code_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run_command(
    config: Path,
    results: Path,
    emulate: bool,
    base_url: str | None,
    no_cache: bool,
    detach: bool,
    max_cost: float | None,
    poll_interval: float | None,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Expand CONFIG into batch requests, submit them and collect every result."""
    spec = load_config(config, allow_external_code=allow_external_code)
    with progress_display(quiet) as update:
        handle = run(
            spec,
            results=results,
            emulate=emulate,
            base_url=base_url,
            use_cache=not no_cache,
            detach=detach,
            on_progress=update,
            poll_interval=poll_interval,
            on_created=None if quiet else _announce,
            max_cost=max_cost,
        )
    if detach:
        click.echo(handle.id)
        return
    _finish(handle)


def _announce(handle: Run) -> None:
    status = handle.status
    cached = f", {status.done} from the cache" if status.done else ""
    click.echo(f"run {handle.id}: {status.total:,} requests{cached} -> {handle.path}", err=True)


def _finish(handle: Run) -> None:
    status = handle.status
    if not status.complete:
        raise RunIncomplete(
            f"run {handle.id}: {status.pending + status.in_flight} requests not ended yet; "
            f"`batchmark resume {handle.id}` continues it"
        )
    print_summary(handle)
    from batchmark.cli._score import print_scores

    print_scores(handle)


@cli.command("resume")
@click.argument("run_ref", metavar="RUN")
@results_option
@base_url_option
@poll_option
@click.option(
    "--wait-timeout",
    type=float,
    default=None,
    help="Stop waiting after this many seconds (exit 3; resume again later).",
)
@allow_external_code_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def resume_command(
    run_ref: str,
    results: Path,
    base_url: str | None,
    poll_interval: float | None,
    wait_timeout: float | None,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Finish RUN (a run id or folder) without submitting anything twice."""
    handle = open_run(run_ref, results, allow_external_code=allow_external_code)
    with progress_display(quiet) as update:
        handle = resume(
            handle,
            results=results,
            base_url=base_url,
            on_progress=update,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
        )
    _finish(handle)


@cli.command("status")
@click.argument("run_ref", metavar="[RUN]", required=False)
@results_option
@format_option(["table", "json"], "Output for people (table) or programs (json).")
def status_command(run_ref: str | None, results: Path, fmt: str) -> None:
    """Show RUN and its batches, or every run under the results root."""
    import json

    if run_ref is None:
        runs = [Run(f) for f in iter_run_folders(results)]
        rows = [_status_row(r) for r in runs]
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"runs under {results}", title_justify="left")
        for col in ("run", "eval", "state", "requests", "done", "failed", "in flight", "queued"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["run"],
                r["eval"],
                r["state"],
                *(str(r[k]) for k in ("total", "done", "failed", "in_flight", "pending")),
            )
        stdout_console().print(table)
        return
    handle = open_run(run_ref, results)
    row = _status_row(handle)
    batches = handle.batches()
    if fmt == "json":
        row["batches"] = batches
        click.echo(json.dumps(row, indent=2))
        return
    console = stdout_console()
    console.print(
        f"run {row['run']} ({row['eval']}): {row['state']} — {row['done']} done, "
        f"{row['failed']} failed, {row['in_flight']} in flight, {row['pending']} queued "
        f"of {row['total']}"
    )
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
                "yes" if b["adopted"] else "no",
            )
        console.print(table)


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
    }


@cli.command("cancel")
@click.argument("run_ref", metavar="RUN")
@results_option
@base_url_option
def cancel_command(run_ref: str, results: Path, base_url: str | None) -> None:
    """Cancel RUN's in-flight batches and stop it from submitting more."""
    ids = cancel(run_ref, results=results, base_url=base_url)
    for batch_id in ids:
        click.echo(f"canceling {batch_id}")
    click.echo(
        f"canceled {len(ids)} batch(es); `batchmark resume {run_ref}` collects what finished"
    )
