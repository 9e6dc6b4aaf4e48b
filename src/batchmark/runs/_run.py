"""``Run``: the handle on a run folder that notebooks and the CLI read from.

``.status``, ``.requests()``, ``.responses()``, ``.responses_df()``, ``.summary()``,
``.scores()``, ``.scores_df()``, ``.score_summary()``, ``.score_specs()``. Creating and
driving runs is ``_driver``'s job; this module only reads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchmark._errors import StoreError
from batchmark.runs._ledger import Ledger
from batchmark.runs._states import WAIT_TEXT
from batchmark.runs._store import RunFolder, resolve_run

if TYPE_CHECKING:
    import pandas as pd

    from batchmark.config._schema import EvalSpec, RunSettings
    from batchmark.runs._dataset_join import DatasetColumns

# The config models, the SDK's message types (``_responses``) and pandas are imported by
# the methods that use them: ``status`` reads a run without them (issue 18).

__all__ = ["DEFAULT_RESULTS", "Run", "RunStatus", "command_ref", "open_run"]

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Where a run stands, from its ledger."""

    state: str  # expanding | submitted | running | complete | canceled
    total: int
    done: int
    failed: int
    pending: int
    in_flight: int
    batches: int
    open_batches: int
    lost: int = 0
    """Failed requests whose batch could not be found (not re-sent; see ``resume``)."""
    waiting: str | None = None
    """Why requests are held back, while the run is not complete: "waiting for queue
    room" after the API refused a create because its queue of batch requests was full
    (the run polls its batches meanwhile and submits again once there is room)."""
    waiting_detail: dict[str, Any] | None = None
    """The refusal behind ``waiting``: ``since`` (when the wait began, epoch seconds),
    ``n_requests`` (the batch refused), ``message`` (the API's), ``retry_at``."""

    @property
    def complete(self) -> bool:
        return self.done + self.failed == self.total


class Run:
    """A run folder and its ledger, read-only unless driven by ``run``/``resume``."""

    def __init__(self, folder: RunFolder, *, allow_external_code: bool = False) -> None:
        self.folder = folder
        self.allow_external_code = allow_external_code
        """Whether ``spec()`` lets the snapshot's ``python:`` hooks name code from
        outside the config's repository (``load_config(..., allow_external_code=)``)."""

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {str(self.path)!r})"

    def _repr_html_(self) -> str:
        """The run's state and, per model x variant, its counts, scores with their 95%
        intervals and cost, as an HTML table (Jupyter); an emulated run is marked."""
        # The one upward import (tests/test_layout.py): the tables are the reports'.
        from batchmark.reports._notebook import run_html

        return run_html(self)

    @property
    def id(self) -> str:
        return self.folder.id

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def info(self) -> dict[str, Any]:
        """run.json: the run's facts (ids, its endpoint, times, the config's hash)."""
        return self.folder.read_info()

    def spec(self) -> EvalSpec:
        """The config snapshot this run was made from: the one source of its settings.

        Relative paths in it resolve against the original config file's folder, as they
        did when the run was made.
        """
        from batchmark.config._schema import load_config

        return load_config(
            self.info["config_path"],
            text=self._snapshot(),
            allow_external_code=self.allow_external_code,
        )

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[Ledger]:
        """The run's ledger, read-only, closed when the block ends."""
        ledger = Ledger(self.folder.ledger_path, readonly=True)
        try:
            yield ledger
        finally:
            ledger.close()

    def settings(self) -> RunSettings:
        """The snapshot's ``api_version``, ``batch`` and ``pricing``, read without loading
        the config whole: its dataset, templates and hooks need not exist any more."""
        from batchmark.config._load import load_settings

        return load_settings(self.info["config_path"], text=self._snapshot())

    def _snapshot(self) -> str:
        """The config snapshot's text; a ``StoreError`` naming the file (and ``doctor``)
        when it is missing or unreadable."""
        path = self.path / "config.yaml"
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            why = "missing" if isinstance(err, FileNotFoundError) else f"unreadable ({err})"
            raise StoreError(
                f"{path}: the run's config snapshot is {why}; the run's settings are read from it",
                hint=f"`batchmark doctor {command_ref(self.path)}` checks the run's files",
            ) from None

    @property
    def status(self) -> RunStatus:
        with self._ledger() as ledger:
            states = ledger.state_counts()
            batches = ledger.batches()
            lost = ledger.lost_requests() if states.get("failed") else 0
            wait = ledger.queue_wait()
        total = sum(states.values())
        done, failed = states.get("done", 0), states.get("failed", 0)
        info = self.info
        if info.get("canceled"):
            state = "canceled"
        elif done + failed == total and total:
            state = "complete"
        else:
            state = "running" if batches else "submitted"
        if state in ("canceled", "complete"):
            wait = None
        return RunStatus(
            state=state,
            total=total,
            done=done,
            failed=failed,
            pending=states.get("pending", 0)
            + states.get("submitting", 0)
            + states.get("waiting", 0),
            in_flight=states.get("submitted", 0),
            batches=len(batches),
            open_batches=sum(1 for b in batches if not b["collected"]),
            lost=lost,
            waiting=WAIT_TEXT.get(wait["kind"]) if wait else None,
            waiting_detail=wait,
        )

    def failures_by_error(self) -> dict[str, int]:
        """Failed requests by the error type of their last response."""
        with self._ledger() as ledger:
            counts: dict[str, int] = {}
            for data in ledger.failed_errors():
                kind = orjson.loads(data).get("error_type") or "unknown"
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def batches(self) -> list[dict[str, Any]]:
        with self._ledger() as ledger:
            return ledger.batches()

    def requests(self) -> Iterator[dict[str, Any]]:
        """Every expanded request: ids, cell coordinates, state and the API params."""
        with self._ledger() as ledger:
            for record in ledger.iter_requests("candidate"):
                record["params"] = orjson.loads(record["params"])
                yield record

    def answered_requests(self) -> Iterator[dict[str, Any]]:
        """Every request (ids, cell, state, params) with its final response's ``status``
        and stored ``data`` (the compact message, or ``{error_type, error_message}``),
        both ``None`` until it has ended; one pass over the ledger, in grid order."""
        with self._ledger() as ledger:
            for row in ledger.iter_answered("candidate"):
                yield {
                    "custom_id": row[0],
                    "variant": row[1],
                    "model_key": row[2],
                    "row_id": row[3],
                    "epoch": row[4],
                    "state": row[5],
                    "params": orjson.loads(row[6]),
                    "status": row[7],
                    "data": None if row[8] is None else orjson.loads(row[8]),
                }

    def responses(self) -> Iterator[dict[str, Any]]:
        """The final response of every ended request (its last attempt), in grid order."""
        from batchmark.runs._responses import final_responses

        with self._ledger() as ledger:
            yield from final_responses(ledger)

    def responses_df(self, *, dataset: DatasetColumns = False) -> pd.DataFrame:
        """``responses()`` as a DataFrame, usage as token columns.

        ``dataset=True`` joins every column of the run's dataset on ``row_id``;
        ``dataset=["question", ...]`` only those (a name the frame already has gets the
        suffix ``_dataset``). The dataset is the one the run's config snapshot names, read
        as it is now: a ``DatasetError`` if it cannot be read or lost some of the run's rows.
        """
        import pandas as pd

        from batchmark.runs._dataset_join import join_dataset

        rows = []
        for r in self.responses():
            usage = r.pop("usage", None) or {}
            r.pop("cache_creation", None)
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            ):
                r[key] = usage.get(key, 0)
            rows.append(r)
        return join_dataset(pd.DataFrame(rows), dataset, self.spec, self.id)

    def summary(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Counts, tokens and cost per model x variant (computed from the responses).

        Judge requests appear as their own rows (variant ``judge:<name>``). Once the run
        has ended this is read from ``summary.json`` (a million responses take seconds
        to add up), as long as the ledger's request states are still those the file
        was written from; ``fresh=True`` always recomputes.
        """
        from batchmark.runs._responses import summary_cells

        with self._ledger() as ledger:
            if not fresh:
                stored = self._stored_summary(ledger)
                if stored is not None:
                    return stored["cells"]
            settings = self.settings()
            return summary_cells(ledger, settings.pricing, settings.model_catalog())

    def _stored_summary(self, ledger: Ledger) -> dict[str, Any] | None:
        """``summary.json`` if it still describes the ledger (same states), else None."""
        try:
            stored = orjson.loads(self.folder.summary_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(stored, dict) or stored.get("states") != ledger.state_counts():
            return None
        return stored

    def judge_agreement(self) -> dict[str, dict[str, Any]]:
        """Per judge with a ``human_label_field``: ``{n, accuracy, kappa}``."""
        from batchmark.runs._scoring import judge_agreement

        with self._ledger() as ledger:
            return judge_agreement(ledger)

    def scores(self) -> Iterator[dict[str, Any]]:
        """One record per (item, scorer): score, passed, invalid, explanation, answer."""
        from batchmark.runs._scoring import iter_scores

        with self._ledger() as ledger:
            yield from iter_scores(ledger)

    def scores_df(
        self, columns: Sequence[str] | None = None, *, dataset: DatasetColumns = False
    ) -> pd.DataFrame:
        """:meth:`scores` as a DataFrame; only ``columns`` when given. Columns without
        text (``SCORE_VALUE_COLUMNS``, what a comparison reads) are read lean, and then
        ``model_key``, ``variant``, ``scorer`` and ``row_id`` are categoricals.
        ``dataset`` joins the dataset's columns on ``row_id`` as in ``responses_df``."""
        import pandas as pd

        from batchmark.runs._dataset_join import join_dataset
        from batchmark.runs._scoring import SCORE_VALUE_COLUMNS, score_value_columns

        if columns is not None and not dataset and set(columns) <= set(SCORE_VALUE_COLUMNS):
            with self._ledger() as ledger:
                data = score_value_columns(ledger)
            frame = {}
            for c in columns:  # names as categories: one string each, not an array of copies
                values = data.pop(c)
                if c in _NAME_COLUMNS:
                    codes, names = pd.factorize(pd.Index(values, dtype=object), sort=False)
                    frame[c] = pd.Categorical.from_codes(codes, pd.Index(names, dtype=object))
                else:
                    frame[c] = values
            return pd.DataFrame(frame, columns=list(columns))
        scores = pd.DataFrame(list(self.scores()), columns=list(columns) if columns else None)
        return join_dataset(scores, dataset, self.spec, self.id)

    def score_specs(self) -> dict[str, list[str]]:
        """Per scorer with stored scores: the spec hashes of the scorer configs that made
        them (``[]`` for scores stored before spec hashes were)."""
        from batchmark.runs._scoring import stored_spec_hashes

        with self._ledger() as ledger:
            return stored_spec_hashes(ledger)

    def score_summary(self) -> list[dict[str, Any]]:
        """Per model x variant x scorer: n, mean score, pass rate, invalid verdicts."""
        from batchmark.runs._scoring import scores_summary

        with self._ledger() as ledger:
            return scores_summary(ledger)


_NAME_COLUMNS = frozenset({"model_key", "variant", "scorer", "row_id"})


def open_run(
    ref: str | os.PathLike[str],
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    *,
    allow_external_code: bool = False,
) -> Run:
    """A run by id (under ``results``) or by folder path.

    ``allow_external_code`` lets its config snapshot (``Run.spec()``, which ``resume``
    and ``score`` read) name code from outside the config's repository.
    """
    return Run(resolve_run(ref, Path(results)), allow_external_code=allow_external_code)


def command_ref(folder: str | os.PathLike[str]) -> str:
    """How a command line names the run in ``folder``: its id when it lies under
    ``./results`` (the default ``--results``), else the folder's path."""
    path = Path(folder)
    try:
        default = path.parent.parent.resolve() == DEFAULT_RESULTS.resolve()
    except OSError:
        default = False
    return path.name if default else str(path)
