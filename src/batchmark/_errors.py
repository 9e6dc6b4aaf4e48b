"""The exceptions batchmark raises for user mistakes: one tree, all in this module.

A user mistake (a bad config, an unreadable dataset, an unknown run) is one of these;
the CLI prints its message in one or two lines and exits with the class's
``exit_code``. Anything else is a bug and keeps its traceback. Code that handles an
error catches it by class, never by its message.

Every error carries ``hint``, what to do next, shown as the message's last line
(``  hint: ...``). It is given where the error is raised (``DatasetError(msg,
hint=...)``), where the file, row or run it names is known; no class has a default
hint (``hint`` is None): a message without one names its next step itself.

    BatchmarkError               exit 2  something the user can fix
    ├── ConfigError              exit 2  the config file: names the file and the field
    │   ├── RenderError          exit 2  a template failed for one row: variant, row id
    │   └── UnsafeConfig         exit 2  a config asks to run code from outside its repository
    ├── DatasetError             exit 2  the dataset: names the file, the row and the field
    ├── RunNotFound              exit 2  a RUN argument that names no run folder
    ├── RunBusy                  exit 2  another process is driving the run
    ├── RunStateError            exit 2  the run is not in a state the command can act on
    ├── UsageError               exit 2  options that cannot go together
    ├── CredentialsError         exit 2  no API key and no --emulate
    ├── BudgetExceeded           exit 2  the estimated maximum cost is over --max-cost
    ├── BaselineError            exit 2  a baseline that cannot be found, read or saved
    ├── CompareError             exit 2  a comparison that cannot be made as asked
    ├── StoreError               exit 2  a ledger, cache or results folder cannot be read
    │                                    or written
    ├── EmulatorError            exit 2  the emulator cannot start (a port in use)
    ├── QueueTooSmall            exit 2  one batch is larger than the API's whole queue of
    │                                    batch requests
    ├── RunIncomplete            exit 3  the run stopped before every request ended
    │   ├── ResultsStreamError   exit 3  a batch's results stream broke off on every attempt
    │   └── BatchNotFound        exit 3  the API answers 404 for a batch (transient, or gone)
    └── RequestsLost             exit 4  requests ended with no answer (batch lost, line
                                         missing) and were not sent again

tests/test_errors.py checks that this tree is the classes' own.
"""

from __future__ import annotations

__all__ = [
    "BaselineError",
    "BatchNotFound",
    "BatchmarkError",
    "BudgetExceeded",
    "CompareError",
    "ConfigError",
    "CredentialsError",
    "DatasetError",
    "EmulatorError",
    "QueueTooSmall",
    "RenderError",
    "RequestsLost",
    "ResultsStreamError",
    "RunIncomplete",
    "RunBusy",
    "RunNotFound",
    "RunStateError",
    "StoreError",
    "UnsafeConfig",
    "UsageError",
]


class BatchmarkError(Exception):
    """Base class of every error a user can fix; ``str(err)`` is the whole message,
    ``hint`` (when given) its last line."""

    exit_code = 2
    """The CLI's exit status for this error."""
    hint: str | None = None
    """What to do next; None when the message says it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))


class ConfigError(BatchmarkError):
    """A config file is malformed or inconsistent.

    ``errors`` lists every problem found (validation reports them all at once).
    """

    many = "problems"  # the heading of a list: "<file>: 3 problems:"

    def __init__(self, file: str | None, errors: list[str] | str, hint: str | None = None):
        self.file = file
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        head = f"{file}: " if file else ""
        if len(self.errors) == 1:
            msg = head + self.errors[0]
        else:
            problems = "\n".join(f"  - {e}" for e in self.errors)
            msg = f"{head}{len(self.errors)} {self.many}:\n{problems}"
        super().__init__(msg, hint=hint)


class RenderError(ConfigError):
    """A prompt template could not be rendered for one dataset row."""

    def __init__(
        self, file: str | None, variant: str, row_id: str, detail: str, hint: str | None = None
    ):
        self.variant = variant
        self.row_id = row_id
        super().__init__(file, f"prompt variant {variant!r}, row {row_id!r}: {detail}", hint)


class DatasetError(BatchmarkError):
    """A dataset cannot be read, or one of its rows is unusable."""


class RunNotFound(BatchmarkError):
    """A RUN argument names neither a run id under the results root nor a run folder."""


class RunBusy(BatchmarkError):
    """Another batchmark process holds the run folder's lock (it is driving the run)."""


class RunStateError(BatchmarkError):
    """The run is not in a state the command can act on (scoring a run with requests in
    flight; resuming a run whose in-process emulator stopped with it)."""


class UsageError(BatchmarkError):
    """Options that cannot go together (``--detach`` with ``--emulate``)."""


class CredentialsError(BatchmarkError):
    """No API key and no emulator: nothing can be sent."""


class BudgetExceeded(BatchmarkError):
    """The estimated maximum cost of a run is over its budget (``--max-cost``)."""


class BaselineError(BatchmarkError):
    """A baseline that cannot be found, read or saved."""


class CompareError(BatchmarkError):
    """The comparison cannot be made as asked (unknown baseline, missing cluster field)."""


class RunIncomplete(BatchmarkError):
    """The run stopped with requests still in flight or unsent; resume it later."""

    exit_code = 3


class BatchNotFound(RunIncomplete):
    """The backend answered 404 for a batch id (SDK issue #1432: transient right after a
    create; or the batch was deleted, or the endpoint is another one)."""

    def __init__(self, batch_id: str, message: str | None = None, *, hint: str | None = None):
        self.batch_id = batch_id
        super().__init__(message or f"batch {batch_id} not found (HTTP 404)", hint=hint)


class ResultsStreamError(RunIncomplete):
    """A results stream broke off midway (connection dropped, truncated line)."""


class RequestsLost(BatchmarkError):
    """Requests ended without an answer and were deliberately not sent again.

    A batch that cannot be found is never re-sent automatically (it may still be
    running and billed); ``batchmark resume RUN --resend-lost`` sends its requests again
    once the user knows it is gone.
    """

    exit_code = 4


class UnsafeConfig(ConfigError):
    """A config asks to run code from outside its repository (``--allow-external-code``).

    ``errors`` lists each hook refused (``scorers[0].python (line 6): `os:system`: ...``).
    """

    many = "hooks name code from outside the repository"


class StoreError(BatchmarkError):
    """A ledger, the response cache or a results folder cannot be read or written
    (disk full, read-only, damaged file); the message names the file and what to do.

    ``run_id`` is the run whose file failed, when the file is a run's (None for the
    shared response cache or the results folder)."""

    def __init__(self, message: str, *, hint: str | None = None, run_id: str | None = None):
        self.run_id = run_id
        super().__init__(message, hint=hint)


class QueueTooSmall(BatchmarkError):
    """The API refused a batch for its queue of batch requests while the queue held
    nothing: the batch can never fit (``batch.max_requests`` is above the organization's
    queue limit). Nothing was sent twice; what was answered is kept."""


class EmulatorError(BatchmarkError):
    """The emulator cannot start: its port is in use, its host is not an address of
    this machine, or its server did not come up."""
