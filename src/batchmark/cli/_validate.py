"""``batchmark validate`` and ``batchmark schema``: check a config before spending money."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import orjson

from batchmark._errors import BatchmarkError
from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    base_url_option,
    echo,
    format_option,
)
from batchmark.config._schema import config_json_schema, load_config
from batchmark.runs._endpoint import Endpoint
from batchmark.runs._grid import validate_spec
from batchmark.runs._request_checks import check_models_online


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a user mistake in one message and exit with its code (also under CliRunner)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BatchmarkError as err:
            echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)

    return wrapper


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    raise AssertionError


@cli.command()
@click.argument("config", type=click.Path(path_type=Path))
@format_option(["text", "json"], "Output for people (text) or programs (json).")
@click.option(
    "--online",
    is_flag=True,
    help="Also ask the endpoint's Models API (GET /v1/models/{id}) whether each model "
    "exists; needs ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL or --base-url for another "
    "endpoint).",
)
@base_url_option
@allow_external_code_option
@_user_errors
def validate(
    config: Path, fmt: str, online: bool, base_url: str | None, allow_external_code: bool
) -> None:
    """Check CONFIG and render every request without sending anything.

    Loads the dataset, renders each prompt for each row, checks every request against
    the API's rules for its model (the model catalog: unknown or retired models,
    unknown parameters, sampling, thinking, prefill, max_tokens, cache breakpoints), and
    reports the grid's size: rows, variants, models, epochs, requests, bytes and
    batches. Exits 2 on problems, naming the file, field, YAML line and how many
    requests each one affects. Sends nothing, except with --online.
    """
    spec = load_config(config, allow_external_code=allow_external_code)
    report = validate_spec(spec)
    if online:
        endpoint = Endpoint.resolve(base_url=base_url, config=spec)
        client = endpoint.client()
        try:
            check_models_online(spec, client, endpoint.name)
        finally:
            client.close()
    for warning in report.warnings:
        echo(f"warning: {warning}", err=True)
    if fmt == "json":
        data = {"config": str(spec.path), "hash": spec.hash, **report.as_dict()}
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    models = ", ".join(m.key for m in spec.models)
    variants = ", ".join(v.name for v in spec.prompts)
    lines = [
        f"{spec.path}: OK ({report.name})",
        f"  rows      {report.rows}",
        f"  variants  {report.variants} ({variants})",
        f"  models    {report.models} ({models})",
        f"  epochs    {report.epochs}",
        f"  requests  {report.requests}",
        f"  size      {_size(report.total_bytes)} total, largest request "
        f"{_size(report.largest_request_bytes)}",
        f"  batches   {report.batches} (at most {spec.batch.max_requests} requests and "
        f"{spec.batch.max_bytes} bytes each)",
        f"  tokens    ~{report.approx_input_tokens} input (approximate), at most "
        f"{report.max_output_tokens} output",
    ]
    if report.cache_breakpoints:
        places = ", ".join(f"{v} x {m} at {where}" for v, m, where in report.cache_breakpoints)
        lines.append(f"  prompt cache: static prefix cached for {places}")
    echo("\n".join(lines))


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of standard output.",
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of eval config files.

    Point your editor at it: put `# yaml-language-server: $schema=<file>` at the top of
    a config.
    """
    text = orjson.dumps(config_json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        echo(f"wrote {output}", err=True)
