"""The ``batchmark`` command: a thin skin over the library.

Each command group lives in its own module and registers itself on ``cli``.
"""

from __future__ import annotations

import sys

import click

from batchmark._errors import BatchmarkError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchmark")
def cli() -> None:
    """batchmark: LLM evaluations on Anthropic's Message Batches API."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes print one message and exit with its code."""
    try:
        rc = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except BatchmarkError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


def _register() -> None:
    """Import the command modules: each adds its commands to ``cli``."""
    import importlib

    for name in ("_ci", "_emulator", "_estimate", "_report", "_run", "_score", "_validate"):
        importlib.import_module(f"batchmark.cli.{name}")


_register()
