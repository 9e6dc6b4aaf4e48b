"""The ``batchmark`` command: a thin skin over the library.

Each command group lives in its own module and registers itself on ``cli``. ``main``
turns what a user can meet into one message and a documented exit code: their own
mistakes (``BatchmarkError``, exit 2, 3 or 4), the API refusing or failing (2 or 3), a
disk that is full or a file that cannot be written or is damaged (2), Ctrl-C (130) and
SIGTERM (143). A command stopped midway names its run and the command that continues it.
"""

from __future__ import annotations

import signal
import sqlite3
import sys

import anthropic
import click

from batchmark._entry import EXIT_SIGINT, EXIT_SIGTERM, Terminated
from batchmark._errors import BatchmarkError, StoreError
from batchmark._terminal import visible
from batchmark.runs._sqlite import store_error

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchmark")
def cli() -> None:
    """batchmark: LLM evaluations on Anthropic's Message Batches API."""
    from batchmark.cli._common import forget_run

    forget_run()  # a new invocation (tests run many in one process)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes print one message and exit with its code."""
    try:
        rc = cli.main(args=argv, prog_name="batchmark", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        sys.exit(_stopped("interrupted", EXIT_SIGINT))
    except Terminated:
        sys.exit(_stopped("stopped (SIGTERM)", EXIT_SIGTERM))
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except BatchmarkError as err:
        code = _error(err)
        if isinstance(err, StoreError):  # found where the run was not known: name it
            _name_the_run(err)
        sys.exit(code)
    except anthropic.APIError as err:
        sys.exit(_api_error(err))
    except (sqlite3.DatabaseError, OSError) as err:
        from batchmark.cli._common import noted_run

        noted = noted_run()
        failure = store_error(err, run_folder=noted.path if noted is not None else None)
        if failure is None:
            raise  # not the disk or a file: a bug, with its traceback
        code = _error(failure)
        _name_the_run(failure)
        sys.exit(code)
    sys.exit(rc if isinstance(rc, int) else 0)


def _error(err: BatchmarkError) -> int:
    click.echo(f"error: {visible(str(err))}", err=True)
    return err.exit_code


def _name_the_run(err: StoreError) -> None:
    """After a store failure: the run the command worked on and how to continue it,
    unless the error is about that run's own files (its message names the run)."""
    from batchmark.cli._common import noted_run, stopped_run_message

    noted = noted_run()
    if noted is not None and noted.id != err.run_id:
        click.echo(visible(stopped_run_message() or ""), err=True)


def _stopped(how: str, code: int) -> int:
    """Ctrl-C or SIGTERM: say so, and how to continue the run the command worked on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second one ends the process at once
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from batchmark.cli._common import stopped_run_message

    click.echo(how, err=True)
    message = stopped_run_message()
    if message:
        click.echo(visible(message), err=True)
    return code


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
    from batchmark.cli._common import stopped_run_message

    where = f"HTTP {status}" if status else type(err).__name__
    click.echo(f"error: the API failed ({where}): {visible(err.message)}", err=True)
    stopped = stopped_run_message()  # a command that started no run has none to resume
    click.echo(f"  {visible(stopped)}" if stopped else "  try again when it answers", err=True)
    return 3


def _register() -> None:
    """Import the command modules: each adds its commands to ``cli``."""
    import importlib

    for name in (
        "_cache",
        "_ci",
        "_doctor",
        "_emulator",
        "_estimate",
        "_report",
        "_run",
        "_score",
        "_validate",
    ):
        importlib.import_module(f"batchmark.cli.{name}")


_register()
