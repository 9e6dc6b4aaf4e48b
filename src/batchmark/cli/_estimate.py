"""``batchmark estimate``: what a config would send and cost, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.table import Table

from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    base_url_option,
    fmt_int,
    format_option,
    results_option,
    stdout_console,
)
from batchmark.cli._validate import _size, _user_errors
from batchmark.config._pricing import fmt_usd
from batchmark.config._schema import load_config
from batchmark.runs._endpoint import Endpoint
from batchmark.runs._estimate import Estimate, EstimateRow, estimate


@cli.command("estimate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@results_option
@base_url_option
@click.option(
    "--emulate",
    is_flag=True,
    help="Estimate a run with --emulate: the emulator's cache and past emulated runs.",
)
@click.option("--no-cache", is_flag=True, help="Estimate a run with --no-cache: no cache hits.")
@click.option(
    "--count-tokens/--no-count-tokens",
    default=True,
    show_default=True,
    help="Count input tokens with the API's count_tokens (only when ANTHROPIC_API_KEY or "
    "a base URL is set; otherwise, and with --no-count-tokens, a local approximation).",
)
@format_option(["table", "json"], "Output for people (table) or programs (json).")
@allow_external_code_option
@_user_errors
def estimate_command(
    config: Path,
    results: Path,
    base_url: str | None,
    emulate: bool,
    no_cache: bool,
    count_tokens: bool,
    fmt: str,
    allow_external_code: bool,
) -> None:
    """Estimate what running CONFIG would send and cost, sending nothing.

    Requests, bytes, batches, response-cache hits, input tokens, expected output
    (past runs' mean, else max_tokens) and cost at batch prices, per model x variant
    and for the judges. The maximum cost (output at max_tokens, no prompt-cache reads)
    is what `batchmark run --max-cost` checks.
    """
    spec = load_config(config, allow_external_code=allow_external_code)
    endpoint = Endpoint.resolve(emulate=emulate, base_url=base_url, config=spec, strict=False)
    client = endpoint.token_counter() if count_tokens else None
    try:
        est = estimate(
            spec,
            results=results,
            client=client,
            endpoint=endpoint.name,
            use_cache=not no_cache,
        )
    finally:
        if client is not None:
            client.close()
    if fmt == "json":
        click.echo(orjson.dumps(est.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    print_estimate(est)


def _source(r: EstimateRow) -> str:
    return f"{r.observed:,} past" if r.observed else "max_tokens"


def _row(table: Table, r: EstimateRow, source: str | None = None) -> None:
    table.add_row(
        r.model,
        r.variant,
        fmt_int(r.requests),
        fmt_int(r.cached),
        fmt_int(r.input_tokens),
        f"{fmt_int(r.cache_write_tokens)}/{fmt_int(r.cache_read_tokens)}",
        fmt_int(r.output_tokens),
        _source(r) if source is None else source,
        fmt_int(r.output_tokens_max),
        fmt_usd(r.cost_usd),
        fmt_usd(r.cost_max_usd),
    )


def _batches(n: int) -> str:
    return f"{n:,} batch" if n == 1 else f"{n:,} batches"


def print_estimate(est: Estimate) -> None:
    """The estimate as a table per model x variant, then the totals and notes."""
    console = stdout_console()
    table = Table(title=f"estimate {est.name} ({est.endpoint})", title_justify="left")
    table.add_column("model")
    table.add_column("variant")
    for col in ("requests", "cached", "input tok", "cache w/r", "output tok"):
        table.add_column(col, justify="right")
    table.add_column("output from")
    for col in ("max output", "cost", "max cost"):
        table.add_column(col, justify="right")
    for r in est.rows:
        _row(table, r)
    table.add_section()
    _row(table, est.total, source="")
    console.print(table)
    console.print(
        f"{est.requests:,} requests ({_size(est.bytes)}), {est.cached:,} from the response "
        f"cache; {_batches(est.batches)} to send"
    )
    if est.judge_requests:
        console.print(
            f"judges: {est.judge_requests:,} requests, {est.judge_cached:,} from the cache; "
            f"~{_batches(est.judge_batches)} to send"
        )
    console.print(
        f"cost at batch prices: expected {fmt_usd(est.cost_usd)}, at most "
        f"{fmt_usd(est.cost_max_usd)} (the figure --max-cost checks)"
    )
    for note in est.notes:
        console.print(f"note: {note}", highlight=False)
