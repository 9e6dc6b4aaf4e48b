"""The dataset's columns beside a run's responses or scores: ``Run.responses_df(dataset=...)``.

The dataset is the one the run's config snapshot names (``config.yaml`` in the run folder,
its paths relative to the original config's folder, as ``score`` and ``report`` read it),
read as it is now and joined on ``row_id``. Only the requested columns of the run's rows
are kept, whatever the dataset's width (rows stream through in chunks).

A dataset that cannot be read, or no longer has some of the run's rows (edited, moved,
re-sampled), is a ``DatasetError`` naming the file and what to do, never a frame with
silently empty columns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from batchmark._errors import BatchmarkError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

    from batchmark.config._schema import EvalSpec

__all__ = ["DatasetColumns", "join_dataset"]

DatasetColumns = bool | Sequence[str]
"""``True``: every column of the dataset; a list: those columns; ``False``: none."""

SUFFIX = "_dataset"
"""Appended to a dataset column whose name the frame already has (``answer``)."""

_MAX_LISTED = 5


def join_dataset(
    frame: pd.DataFrame,
    dataset: DatasetColumns,
    spec: Callable[[], EvalSpec],
    run_id: str,
) -> pd.DataFrame:
    """``frame`` (with a ``row_id`` column) and the requested dataset columns, joined on
    ``row_id`` in ``frame``'s order; ``spec`` loads the run's config snapshot."""
    if isinstance(dataset, str):
        raise TypeError("dataset= takes True or a list of column names, not a string")
    if dataset is False or "row_id" not in frame.columns:
        return frame  # nothing asked, or nothing to join to (no responses yet)
    if not isinstance(dataset, bool) and not list(dataset):
        return frame
    wanted = None if dataset is True else list(dict.fromkeys(dataset))
    row_ids = set(frame["row_id"])
    columns = _read_columns(spec, run_id, wanted, row_ids)
    return frame.merge(columns, on="row_id", how="left", suffixes=("", SUFFIX))


def _read_columns(
    spec: Callable[[], EvalSpec], run_id: str, wanted: list[str] | None, row_ids: Collection[Any]
) -> pd.DataFrame:
    import pandas as pd

    from batchmark.runs._datasets import iter_rows

    where = "the dataset"
    try:
        loaded = spec()
        where = loaded.dataset.path or f"hub dataset {loaded.dataset.hub}"
        kept: dict[str, dict[str, Any]] = {}
        names: list[str] = []
        for row in iter_rows(loaded):
            if not names:
                names = list(row.data)
                missing = [c for c in wanted or () if c not in row.data]
                if missing:
                    raise DatasetError(
                        f"{where}: no column {', '.join(map(repr, missing))} in the dataset "
                        f"of run {run_id} (available: {', '.join(names)})",
                        hint="name columns of the dataset in dataset=[...]",
                    )
            if row.id in row_ids:
                kept[row.id] = {c: row.data.get(c) for c in (wanted or names)}
    except DatasetError:
        raise
    except BatchmarkError as err:
        raise DatasetError(
            f"run {run_id}: its dataset cannot be read to join its columns: {err}",
            hint=_HINT,
        ) from None
    absent = [i for i in row_ids if i not in kept]
    if absent:
        shown = ", ".join(map(repr, sorted(absent)[:_MAX_LISTED]))
        more = f" and {len(absent) - _MAX_LISTED} more" if len(absent) > _MAX_LISTED else ""
        raise DatasetError(
            f"{where}: {len(absent)} row(s) of run {run_id} are not in the dataset any more "
            f"({shown}{more}): it changed since the run",
            hint=_HINT,
        )
    columns = [c for c in (wanted or names) if c != "row_id"]
    out = pd.DataFrame.from_dict(kept, orient="index", columns=columns)
    return out.rename_axis("row_id").reset_index()


_HINT = (
    "restore the dataset the run was made from (the path in the run folder's config.yaml, "
    "relative to the original config's folder), or leave out dataset="
)
