"""``batchmark emulator``: serve the local Messages + Message Batches API emulator."""

from __future__ import annotations

import click

from batchmark.cli import cli
from batchmark.emulator import Emulator


@cli.command("emulator")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; loopback unless you pass another host explicitly.",
)
@click.option(
    "--port", default=0, show_default=True, type=int, help="Port to listen on; 0 picks a free one."
)
@click.option(
    "--responder",
    "responder",
    default="echo",
    show_default=True,
    metavar="SPEC",
    help="echo, scripted:RULES.yaml|.jsonl, python:MODULE:FUNC, or a YAML file mapping "
    "model globs to specs.",
)
@click.option(
    "--faults",
    default=None,
    metavar="SPEC",
    help="Faults to inject, e.g. 'http_429=0.1,errored=0.05,endpoints=create+results', "
    "or a YAML file of them.",
)
@click.option(
    "--processing-seconds",
    default=0.0,
    show_default=True,
    type=float,
    help="How long each batch stays in_progress.",
)
@click.option(
    "--seed",
    default=None,
    type=int,
    help="Seed of ids, faults and result order (default: draws as with seed 0, ids unique "
    "to this process).",
)
@click.option(
    "--batch-ttl-seconds",
    default=86400.0,
    show_default=True,
    type=float,
    help="Seconds until an unfinished batch expires (24 h on the real service).",
)
@click.option(
    "--queue-limit",
    default=None,
    type=click.IntRange(min=1),
    metavar="N",
    help="Refuse (429 rate_limit_error) a batch create that would bring the requests of "
    "unfinished batches above N, as the real API does when the organization's queue of "
    "batch requests is full (default: no limit).",
)
def emulator_command(
    host: str,
    port: int,
    responder: str,
    faults: str | None,
    processing_seconds: float,
    seed: int | None,
    batch_ttl_seconds: float,
    queue_limit: int | None,
) -> None:
    """Serve a local emulator of the Messages and Message Batches API.

    Prints the base URL on the first line of stdout (use it as ANTHROPIC_BASE_URL), then
    serves until interrupted (SIGINT or SIGTERM).
    """
    emu = Emulator(
        responder=responder,
        faults=faults,
        processing_seconds=processing_seconds,
        seed=seed,
        batch_ttl_seconds=batch_ttl_seconds,
        queue_limit=queue_limit,
    )
    emu.run(host=host, port=port, ready=_announce)


def _announce(base_url: str) -> None:
    click.echo(base_url)
    click.get_text_stream("stdout").flush()
    click.echo(f"emulator serving at {base_url} (Ctrl+C to stop)", err=True)
