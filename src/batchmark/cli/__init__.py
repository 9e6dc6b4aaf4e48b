"""The ``batchmark`` command: a thin skin over the library.

Each command group lives in its own module and registers itself on ``cli``.
"""

from __future__ import annotations

import sys

import anthropic
import click

from batchmark._errors import BatchmarkError
from batchmark._terminal import visible

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
        click.echo(f"error: {visible(str(err))}", err=True)
        sys.exit(err.exit_code)
    except anthropic.APIError as err:
        sys.exit(_api_error(err))
    sys.exit(rc if isinstance(rc, int) else 0)


def _api_error(err: anthropic.APIError) -> int:
    """The API refused or failed: one message and an exit code, never a traceback.

    Authentication and permission problems are the user's to fix (exit 2); anything else
    (the API down, repeated 5xx) leaves the run resumable (exit 3).
    """
    status = getattr(err, "status_code", None)
    if isinstance(err, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        click.echo(
            f"error: the API refused the credentials ({status}): {visible(err.message)}", err=True
        )
        click.echo("  hint: check ANTHROPIC_API_KEY (and --base-url, ANTHROPIC_BASE_URL)", err=True)
        return 2
    where = f"HTTP {status}" if status else type(err).__name__
    click.echo(f"error: the API failed ({where}): {visible(err.message)}", err=True)
    click.echo(
        "  nothing is lost: `batchmark resume RUN` (the id printed above) continues", err=True
    )
    return 3


def _register() -> None:
    """Import the command modules: each adds its commands to ``cli``."""
    import importlib

    for name in ("_ci", "_emulator", "_estimate", "_report", "_run", "_score", "_validate"):
        importlib.import_module(f"batchmark.cli.{name}")


_register()
