"""The exceptions batchmark raises for user mistakes.

A user mistake (a bad config, an unreadable dataset, an unknown run) is one of these;
the CLI prints its message in one or two lines and exits with ``exit_code``. Anything
else is a bug and keeps its traceback.

    BatchmarkError               exit 2: something the user can fix
    ├── ConfigError              the config file: names the file and the field
    │   ├── RenderError          a template failed for one row: variant, row id, variable
    │   └── UnsafeConfig         a config asks to run code from outside its repository
    ├── DatasetError             the dataset: names the file, the row and the field
    ├── RunNotFound              a RUN argument that names no run folder
    ├── CredentialsError         no API key and no --emulate
    ├── BudgetExceeded           the estimated maximum cost is over --max-cost
    ├── BaselineError            a baseline that cannot be found, read or saved
    ├── CompareError             a comparison that cannot be made as asked
    ├── StoreError               a ledger, cache or results folder cannot be read or written
    ├── RunIncomplete            exit 3: the run stopped before every request ended
    │   ├── ResultsStreamError   a batch's results stream broke off on every attempt
    │   └── BatchNotFound        the API answers 404 for a batch (transient, or gone)
    └── RequestsLost             exit 4: requests ended with no answer (batch lost, line
                                 missing) and were not sent again
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
    "RenderError",
    "RequestsLost",
    "ResultsStreamError",
    "RunIncomplete",
    "RunNotFound",
    "StoreError",
    "UnsafeConfig",
]


class BatchmarkError(Exception):
    """Base class of every error a user can fix; ``str(err)`` is the whole message."""

    exit_code = 2


class ConfigError(BatchmarkError):
    """A config file is malformed or inconsistent.

    ``errors`` lists every problem found (validation reports them all at once).
    """

    many = "problems"  # the heading of a list: "<file>: 3 problems:"

    def __init__(self, file: str | None, errors: list[str] | str, hint: str | None = None):
        self.file = file
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        self.hint = hint
        head = f"{file}: " if file else ""
        if len(self.errors) == 1:
            msg = head + self.errors[0]
        else:
            problems = "\n".join(f"  - {e}" for e in self.errors)
            msg = f"{head}{len(self.errors)} {self.many}:\n{problems}"
        if hint:
            msg += f"\n  hint: {hint}"
        super().__init__(msg)


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

    def __init__(self, batch_id: str, message: str | None = None):
        self.batch_id = batch_id
        super().__init__(message or f"batch {batch_id} not found (HTTP 404)")


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
    (disk full, read-only, damaged file); the message names the file and what to do."""
