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
from typing import Any

import click

from batchmark._entry import EXIT_SIGINT, EXIT_SIGTERM, Terminated, importing
from batchmark._errors import BatchmarkError, StoreError
from batchmark._terminal import visible
from batchmark.cli import _complete  # noqa: F401  (registers bash's completion class)
from batchmark.runs._sqlite import store_error

__all__ = ["cli", "main"]

# Each command and the module that defines it, with its one-line help: ``--help`` lists
# them without importing any (the SDK, pydantic and pandas take seconds to import), and
# a command imports only its own module. tests/test_cli_help.py keeps the lines equal to
# the commands' docstrings.
COMMANDS: dict[str, tuple[str, str]] = {
    "baseline": (
        "_baseline",
        "Save and list baselines (results/baselines/NAME.json, meant to be committed).",
    ),
    "cache": ("_cache", "The response cache: what it holds, and removing entries."),
    "cancel": ("_run", "Cancel RUN's in-flight batches and stop it from submitting more."),
    "ci": ("_ci", "Run CONFIG, compare it with a baseline and apply its `ci.gates`."),
    "compare": ("_report", "Compare RUNs cell by cell, paired on the items they share."),
    "doctor": ("_doctor", "Check RUN's files and recover its batch ids, sending nothing."),
    "emulator": ("_emulator", "Serve a local emulator of the Messages and Message Batches API."),
    "estimate": ("_estimate", "Estimate what running CONFIG would send and cost, sending nothing."),
    "report": (
        "_report",
        "Scores with 95% CIs, differences against a baseline, and cost for one RUN.",
    ),
    "resume": ("_run", "Finish RUN (a run id or folder) without submitting anything twice."),
    "run": ("_run", "Expand CONFIG into batch requests, submit them and collect every result."),
    "schema": ("_validate", "Print the JSON Schema of eval config files."),
    "score": ("_score", "Score RUN again from its stored responses, without regenerating them."),
    "status": ("_status", "Show RUN and its batches, or every run under the results root."),
    "validate": ("_validate", "Check CONFIG and render every request without sending anything."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run (or its help asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            with importing():  # a signal meanwhile ends the process at once
                importlib.import_module(f"batchmark.cli.{COMMANDS[cmd_name][0]}")  # registers it
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as err:
            # click suggests only among the commands loaded so far (lazily: none)
            name = click.utils.make_str(args[0])
            if name.startswith("-") or "Did you mean" in err.message:
                raise
            import difflib

            close = sorted(difflib.get_close_matches(name, self.list_commands(ctx)))
            if not close:
                raise
            if len(close) == 1:
                hint = f" Did you mean {close[0]!r}?"
            else:
                hint = f" (Did you mean one of: {', '.join(repr(c) for c in close)}?)"
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS``: nothing is imported to print it."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            shown = loaded or click.Command(name, help=COMMANDS[name][1])
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    except Exception as err:
        if _is_api_error(err):
            sys.exit(_api_error(err))
        if not isinstance(err, sqlite3.DatabaseError | OSError):
            raise  # a bug, with its traceback
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


def _is_api_error(err: BaseException) -> bool:
    """Whether the SDK raised ``err`` (the SDK is imported only by commands that use it)."""
    anthropic = sys.modules.get("anthropic")
    return anthropic is not None and isinstance(err, anthropic.APIError)


def _api_error(err: Any) -> int:
    """The API refused or failed: one message and an exit code, never a traceback.

    Authentication and permission problems are the user's to fix (exit 2); anything else
    (the API down, repeated 5xx) leaves the run resumable (exit 3).
    """
    import anthropic

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
