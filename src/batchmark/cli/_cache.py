"""``batchmark cache stats | clear | prune``: the response caches under a results root."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from batchmark.cli import cli
from batchmark.cli._common import echo, fmt_int, format_option, results_option, stdout_console
from batchmark.runs._cache_admin import Removal, cache_stats, remove_entries

eval_option = click.option(
    "--eval",
    "eval_name",
    default=None,
    metavar="NAME",
    help="Only the entries the runs of eval NAME (under the results root) asked for.",
)
older_option = click.option(
    "--older-than",
    "older_than",
    type=float,
    default=None,
    metavar="DAYS",
    help="Only entries written more than DAYS days ago.",
)
endpoint_option = click.option(
    "--endpoint",
    default=None,
    metavar="NAME",
    help="Only the cache of this endpoint (`batchmark cache stats` names them).",
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Count what would be removed; remove nothing."
)


@cli.group("cache")
def cache_group() -> None:
    """The response cache: what it holds, and removing entries.

    A request whose exact content was answered before is served from the cache and not
    paid again. Removing an entry means the next run that needs it sends it again.
    """


def _day(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


@cache_group.command("stats")
@results_option
@eval_option
@format_option(["table", "json"], "Output for people (table) or programs (json).")
def stats_command(results: Path, eval_name: str | None, fmt: str) -> None:
    """What each endpoint's response cache holds, and which evals' runs asked for it."""
    files = cache_stats(results, eval_name=eval_name)
    if fmt == "json":
        rows = [{**asdict(f), "path": str(f.path)} for f in files]
        click.echo(json.dumps(rows, indent=2))
        return
    if not files:
        echo(f"no response cache under {results} yet")
        return
    console = stdout_console()
    for f in files:
        table = Table(
            title=f"response cache {f.path} (endpoint {f.endpoint})", title_justify="left"
        )
        table.add_column("entries of")
        for col in ("runs", "entries", "MB"):
            table.add_column(col, justify="right")
        for share in f.evals:
            table.add_row(
                f"eval {share.eval}", fmt_int(share.runs), fmt_int(share.entries), _mb(share.bytes)
            )
        if eval_name is None:
            table.add_row("no run under this root", "", fmt_int(f.unreferenced), "")
            table.add_row("all", "", fmt_int(f.entries), _mb(f.bytes))
        console.print(table)
        line = f"written {_day(f.oldest)} .. {_day(f.newest)} UTC; file {_mb(f.file_bytes)} MB"
        if f.staged:
            line += f"; {fmt_int(f.staged)} answers staged by a stopped run (merged on next use)"
        console.print(line)


def _report(removals: list[Removal], dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for r in removals:
        echo(
            f"{r.path}: {verb} {fmt_int(r.removed)} entries ({_mb(r.removed_bytes)} MB of answers)"
        )
        if r.kept_live:
            echo(
                f"  kept {fmt_int(r.kept_live)} written since a run in flight started "
                f"({', '.join(r.live_runs)}); run again once it ends"
            )
    if not removals:
        echo("no response cache here: nothing to remove")


@cache_group.command("clear")
@results_option
@eval_option
@older_option
@endpoint_option
@dry_run_option
def clear_command(
    results: Path,
    eval_name: str | None,
    older_than: float | None,
    endpoint: str | None,
    dry_run: bool,
) -> None:
    """Remove cache entries: all of them, or those of one eval, older than DAYS, or of
    one endpoint. The next run that needs one sends its request again."""
    removals = remove_entries(
        results,
        eval_name=eval_name,
        older_than_days=older_than,
        endpoint=endpoint,
        dry_run=dry_run,
    )
    _report(removals, dry_run)


@cache_group.command("prune")
@results_option
@older_option
@endpoint_option
@dry_run_option
def prune_command(
    results: Path,
    older_than: float | None,
    endpoint: str | None,
    dry_run: bool,
) -> None:
    """Remove the entries no run under the results root asks for (their run folders were
    deleted, or the cache came from elsewhere); with --older-than, only old ones. To
    remove one eval's entries: `batchmark cache clear --eval NAME`."""
    removals = remove_entries(
        results,
        older_than_days=older_than,
        unreferenced=True,
        endpoint=endpoint,
        dry_run=dry_run,
    )
    _report(removals, dry_run)
