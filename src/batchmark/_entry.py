"""The ``batchmark`` command's entry point: signal handlers first, then the heavy imports.

Importing the command line (anthropic, pydantic, rich, ...) takes a noticeable part of
a second. The console script (and ``python -m batchmark``) starts here, where nothing
heavy is imported (the ``batchmark`` package resolves its public names lazily):

- while the command line is imported, Ctrl-C or SIGTERM ends the process at once with
  one line (``interrupted``) and 128 + the signal: nothing has been opened or sent yet,
  and an exception raised there could be swallowed by the import machinery;
- then SIGTERM (a canceled CI job, ``kill``, a container stopping) unwinds the command
  like Ctrl-C (``Terminated``): files are closed, the run id and the command that
  continues it are printed, and the exit code is still 128 + 15.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "Terminated", "importing", "main"]

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):
    """SIGTERM arrived: the command unwinds (``finally`` blocks run) and exits 143."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n" if signum == signal.SIGINT else b"stopped (SIGTERM)\n")
    os._exit(128 + signum)


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """While a command's module is imported (commands load when run): a signal ends the
    process at once, as while the command line itself is imported (nothing is open or
    sent yet). Only under ``main``'s handlers: elsewhere (tests, a library caller) the
    handlers are left alone."""
    if signal.getsignal(signal.SIGTERM) is not _terminate:
        yield
        return
    swapped = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]
    before = {s: signal.getsignal(s) for s in swapped}
    for signum in swapped:
        signal.signal(signum, _exit_now)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def main() -> None:
    """Install the handlers, import the command line, run it.

    A signal ignored when the process started (``nohup``, a job control shell) stays
    ignored.
    """
    handled = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]
    for signum in handled:
        signal.signal(signum, _exit_now)
    from batchmark.cli import main as cli_main

    after = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _terminate}
    for signum in handled:
        signal.signal(signum, after[signum])
    cli_main()
