"""``batchmark run``, ``resume``, ``status`` and ``cancel``: parse, call, format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from batchmark._errors import RequestsLost, RunIncomplete
from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    base_url_option,
    complete_run_ref,
    echo,
    fmt_int,
    max_cost_option,
    note_run,
    poll_option,
    progress_display,
    results_option,
    run_base_url_option,
    stdout_console,
)
from batchmark.config._pricing import fmt_usd
from batchmark.config._schema import load_config
from batchmark.runs._driver import cancel, resume, run
from batchmark.runs._run import Run, open_run


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
            fmt_usd(c["cost_usd"]),
        )
        if c["cost_usd"] is None or total_cost is None or standard is None:
            total_cost = standard = None
        else:
            total_cost += c["cost_usd"]
            standard += c["cost_standard_usd"]
    console.print(table)
    if total_cost is not None and standard is not None:
        console.print(
            f"cost {fmt_usd(total_cost)} at batch prices "
            f"(standard API: {fmt_usd(standard)}, saved {fmt_usd(standard - total_cost)})"
        )
    else:
        console.print("cost: n/a for models without a price (add them under `pricing:`)")
    if reused:
        console.print(
            f"{reused:,} responses reused from the cache (worth {fmt_usd(reused_cost)}, "
            "not paid again; --no-cache sends them anyway)"
        )
    console.print(f"results: {handle.path}")


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@results_option
@click.option("--emulate", is_flag=True, help="Run offline against the bundled emulator.")
@base_url_option
@click.option("--no-cache", is_flag=True, help="Ignore the response cache: send every request.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Send again what the response cache holds from before this run and replace it "
    "with the new answers (--no-cache neither reads nor writes the cache).",
)
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
    refresh: bool,
    detach: bool,
    max_cost: float | None,
    poll_interval: float | None,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Expand CONFIG into batch requests, submit them and collect every result."""
    if no_cache and refresh:
        raise click.UsageError(
            "--no-cache and --refresh: choose one (--refresh sends again and stores the new "
            "answers; --no-cache sends again and stores nothing)"
        )
    spec = load_config(config, allow_external_code=allow_external_code)
    with progress_display(quiet) as update:
        handle = run(
            spec,
            results=results,
            emulate=emulate,
            base_url=base_url,
            use_cache=not no_cache,
            refresh=refresh,
            detach=detach,
            on_progress=update,
            poll_interval=poll_interval,
            on_created=_noted_quietly if quiet else _announce,
            max_cost=max_cost,
        )
    if detach:
        click.echo(handle.id)
        return
    _finish(handle)


def _noted_quietly(handle: Run) -> None:
    note_run(handle)


def _announce(handle: Run) -> None:
    note_run(handle)
    status = handle.status
    cached = f", {status.done} from the cache" if status.done else ""
    echo(f"run {handle.id}: {status.total:,} requests{cached} -> {handle.path}", err=True)


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
    _check_losses(handle, status)


def _check_losses(handle: Run, status: Any) -> None:
    """Exit 4 when requests ended without an answer that nobody will send again by
    themselves (a lost batch); say what failed and why otherwise."""
    if status.lost:
        raise RequestsLost(
            f"run {handle.id}: {status.lost} request(s) lost: their batch answered 404 and "
            "was missing from the batch list, so they were not sent again (the batch may "
            "still run and be billed)",
            hint=f"`batchmark resume {handle.id}` looks for it again; "
            f"`batchmark resume {handle.id} --resend-lost` sends them again",
        )
    too_large = handle.failures_by_error().get("request_too_large", 0)
    if too_large:
        click.echo(
            f"warning: {too_large} request(s) over the batch size limit were not sent "
            "(batch.max_bytes); see `batchmark validate`",
            err=True,
        )


@cli.command("resume")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@results_option
@run_base_url_option
@poll_option
@click.option(
    "--wait-timeout",
    type=float,
    default=None,
    help="Stop waiting after this many seconds (exit 3; resume again later).",
)
@click.option(
    "--resend-lost",
    is_flag=True,
    help="Send again the requests of batches that stayed 404 and missing from the batch "
    "list (reported lost); they may have been billed already.",
)
@allow_external_code_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def resume_command(
    run_ref: str,
    results: Path,
    base_url: str | None,
    poll_interval: float | None,
    wait_timeout: float | None,
    resend_lost: bool,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Finish RUN (a run id or folder) without submitting anything twice."""
    handle = note_run(open_run(run_ref, results, allow_external_code=allow_external_code))
    with progress_display(quiet) as update:
        handle = resume(
            handle,
            results=results,
            base_url=base_url,
            on_progress=update,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
            resend_lost=resend_lost,
        )
    _finish(handle)


@cli.command("cancel")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@results_option
@run_base_url_option
def cancel_command(run_ref: str, results: Path, base_url: str | None) -> None:
    """Cancel RUN's in-flight batches and stop it from submitting more."""

    def skipped(ids: list[str]) -> None:
        for batch_id in ids:
            echo(
                f"not canceling {batch_id}: adopted after a lost create and not yet proved "
                "this run's (it may be another run's); its results are checked when it ends",
                err=True,
            )

    handle = note_run(open_run(run_ref, results), again="batchmark cancel {run}")
    ids = cancel(handle, results=results, base_url=base_url, on_skipped=skipped)
    for batch_id in ids:
        echo(f"canceling {batch_id}")
    echo(f"canceled {len(ids)} batch(es); `batchmark resume {run_ref}` collects what finished")
