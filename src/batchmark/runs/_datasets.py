"""Datasets: load the rows of an eval with Hugging Face ``datasets`` and stream them.

Local files are read with ``datasets.load_dataset`` ("json", "csv", "parquet"), which
converts them to a memory-mapped Arrow table in the ``datasets`` cache
(``HF_DATASETS_CACHE``, else ``HF_HOME``/datasets, else ``~/.cache/huggingface``); rows
are then streamed from it in chunks, so memory does not grow with the dataset.

- JSONL: one object per line. JSON: a list of objects (a single top-level object is one
  row). CSV: a header line, then rows; every cell is read as a string (ids like ``007``
  stay intact, empty cells are ``""``). Parquet: as typed.
- Row selection: ``limit`` keeps the first N rows, then ``sample`` keeps N of those
  chosen by ``random.Random(seed).sample`` over row positions; kept rows stay in file
  order.
- Row ids: the ``id_field`` column (ints and integral floats become e.g. ``"7"``), else
  the first 12 hex digits of the sha256 of the row's canonical JSON (sorted keys, fields
  whose value is null left out, so a column added elsewhere in the file does not change
  the id). Ids must be unique and non-empty.
- Field mapping: ``fields: {question: q}`` adds variable ``question`` with column ``q``'s
  value; every column stays available under its own name.

Row numbers in messages count data rows from 1 (``Row.index`` counts from 0).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from batchmark._errors import DatasetError
from batchmark.runs._local_rows import LocalRows

if TYPE_CHECKING:
    import datasets

    from batchmark.config._schema import DatasetConfig, EvalSpec

__all__ = ["Row", "check_utf8", "iter_rows", "load_table", "row_content_id"]

_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Row:
    """One dataset row, ready for templates."""

    id: str
    """The row id (``id_field`` or a content hash); part of custom_ids."""
    index: int
    """Position of the row in the file, from 0."""
    data: dict[str, Any]
    """Every column, plus the mapped template variables of ``dataset.fields``."""


def row_content_id(record: dict[str, Any]) -> str:
    """The id of a row without ``id_field``: sha256 of its canonical JSON, 12 hex digits."""
    clean = {k: v for k, v in record.items() if v is not None}
    blob = orjson.dumps(clean, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()[:12]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence ``datasets``' progress bars and logs while loading; restore them after."""
    import datasets
    import datasets.utils.logging as hf_logging

    bars = not datasets.are_progress_bars_disabled()
    level = hf_logging.get_verbosity()
    datasets.disable_progress_bars()
    hf_logging.set_verbosity(logging.CRITICAL)
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _root_cause(err: BaseException) -> str:
    messages = []
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and "An error occurred while generating the dataset" not in text:
            messages.append(f"{text}")
        current = current.__cause__ or current.__context__
    return messages[-1] if messages else type(err).__name__


def load_table(config: DatasetConfig) -> datasets.Dataset:
    """Load the whole dataset as a (memory-mapped) ``datasets.Dataset``.

    Raises ``DatasetError`` naming the file (or Hub name) and the reason.
    """
    import datasets

    cache_dir = _cache_dir()
    with _quiet_datasets():
        if config.hub is not None:
            try:
                return datasets.load_dataset(
                    config.hub, config.subset, split=config.split, cache_dir=cache_dir
                )
            except Exception as err:
                raise DatasetError(
                    f"could not load hub dataset {config.hub}: {_root_cause(err)}; this "
                    "machine may be offline — download it and point dataset.path at a "
                    "local file"
                ) from None
        path = config.path
        assert path is not None
        kind = config.resolved_format
        kwargs: dict[str, Any] = {}
        if kind == "csv":
            kwargs = {"features": _csv_features(path), "na_filter": False}
        builder = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}.get(
            kind or ""
        )
        if builder is None:
            raise DatasetError(f"{path}: unknown dataset format {kind!r}")
        try:
            return datasets.load_dataset(
                builder, data_files=path, split="train", cache_dir=cache_dir, **kwargs
            )
        except (Exception, StopIteration) as err:
            if isinstance(err, StopIteration) or "at least one example" in _root_cause(err):
                raise DatasetError(f"{path}: the dataset file has no rows") from None
            check_utf8(path, kind)
            raise DatasetError(f"{path}: cannot read it as {kind}: {_root_cause(err)}") from None


def _cache_dir() -> str | None:
    """``HF_DATASETS_CACHE`` or ``HF_HOME``/datasets as set now (``datasets`` reads them
    only when imported), else ``datasets``' default."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return os.environ["HF_DATASETS_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "datasets")
    return None


def _csv_features(path: str) -> datasets.Features:
    import datasets

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        if isinstance(err, UnicodeDecodeError):
            check_utf8(path, "csv")
        raise DatasetError(f"{path}: cannot read the CSV header: {err}") from None
    if not header:
        raise DatasetError(f"{path}: the dataset file has no rows")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise DatasetError(f"{path}: duplicate CSV column names: {', '.join(dupes)}")
    return datasets.Features({name: datasets.Value("string") for name in header})


def check_utf8(path: str, kind: str | None) -> None:
    """Raise ``DatasetError`` at the first byte of a text dataset that is not UTF-8.

    Called once reading failed (a clean file is never read twice): ``datasets`` loads a
    Latin-1 JSONL without complaint and fails deep inside pyarrow when a row is read.
    """
    if kind not in ("jsonl", "json", "csv"):
        return
    offset = 0
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DatasetError(
                        f"{path}: line {number} is not valid UTF-8 (byte "
                        f"0x{line[err.start]:02x} at offset {offset + err.start} of the "
                        "file); dataset files are read as UTF-8",
                        hint="re-encode it as UTF-8, e.g. for a Latin-1 file: "
                        f"`iconv -f latin1 -t utf-8 {path} > {path}.utf8`, then point "
                        "dataset.path at the new file",
                    ) from None
                offset += len(line)
    except OSError:
        return


def _release_arrow_memory() -> None:
    """Give back to the OS what pyarrow's allocator kept from converting the file.

    The first load of a file converts it to Arrow; pyarrow's memory pool then holds on
    to the freed buffers (~50 MB for a 250,000-row JSONL), for the rest of the run.
    """
    import pyarrow

    pyarrow.default_memory_pool().release_unused()


def _id_of(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text or None


def iter_rows(spec: EvalSpec) -> Iterator[Row]:
    """Stream the spec's rows: selected, id'd, checked and mapped.

    Raises ``DatasetError`` for an unreadable or empty dataset, a missing id on some row,
    duplicate ids, or a ``fields`` mapping naming a missing column.
    """
    config = spec.dataset
    where = config.path or f"hub dataset {config.hub}"
    local: LocalRows | None = None
    if config.path is not None and config.resolved_format in ("jsonl", "csv"):
        local = LocalRows(config.path, config.resolved_format)  # no pyarrow (issue 18)
        total, columns = local.total, local.columns
    else:
        table = load_table(config)
        _release_arrow_memory()
        total, columns = len(table), list(table.column_names)
    if total == 0:
        raise DatasetError(f"{where}: the dataset has no rows")
    available = ", ".join(columns)
    if config.id_field is not None and config.id_field not in columns:
        raise DatasetError(
            f"{where}: dataset.id_field {config.id_field!r} is not a column "
            f"(available: {available})"
        )
    for variable, column in config.fields.items():
        if column not in columns:
            raise DatasetError(
                f"{where}: dataset.fields.{variable} names column {column!r}, which does "
                f"not exist (available: {available})"
            )

    kept = min(total, config.limit) if config.limit else total
    if config.sample is not None and config.sample < kept:
        positions: list[int] | range = sorted(
            random.Random(config.seed).sample(range(kept), config.sample)
        )
    else:
        positions = range(kept)
    if local is not None:
        records = _select(local.rows(), positions)
    else:
        if len(positions) < total:
            table = table.select(positions)
        records = _table_records(table, config, columns, positions)

    seen: dict[str, int] = {}
    mapping = list(config.fields.items())
    id_field = config.id_field
    for index, record in records:
        if id_field is not None:
            row_id = _id_of(record[id_field])
            if row_id is None:
                raise DatasetError(
                    f"{where}: row {index + 1}: id field {id_field!r} is missing or empty"
                )
        else:
            row_id = row_content_id(record)
        first = seen.setdefault(row_id, index)
        if first != index:
            what = "identical rows" if id_field is None else f"duplicate {id_field!r}"
            raise DatasetError(
                f"{where}: duplicate row id {row_id!r} ({what}) in rows {first + 1} "
                f"and {index + 1}",
            )
        for variable, column in mapping:
            record[variable] = record[column]
        yield Row(row_id, index, record)


def _select(
    rows: Iterator[dict[str, Any]], positions: list[int] | range
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(position, row)`` of the rows at ``positions`` (ascending), streamed."""
    wanted = iter(positions)
    target = next(wanted, None)
    for index, row in enumerate(rows):
        if target is None:
            return
        if index == target:
            yield index, row
            target = next(wanted, None)


def _table_records(
    table: datasets.Dataset,
    config: DatasetConfig,
    columns: list[str],
    positions: list[int] | range,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(position, row)`` of a (selected) ``datasets`` table, ``_CHUNK`` rows at a time."""
    offset = 0
    for chunk in _chunks(table, config):
        n = len(chunk[columns[0]]) if columns else 0
        for j in range(n):
            yield positions[offset + j], {c: chunk[c][j] for c in columns}
        offset += n


def _chunks(table: datasets.Dataset, config: DatasetConfig) -> Iterator[dict[str, list]]:
    """The table's rows, ``_CHUNK`` at a time; a text file that is not UTF-8 (found only
    when its strings are decoded) is a ``DatasetError`` naming the line."""
    batches = table.iter(batch_size=_CHUNK)
    while True:
        try:
            chunk = next(batches)
        except StopIteration:
            return
        except UnicodeDecodeError as err:
            if config.path is not None:
                check_utf8(config.path, config.resolved_format)
            where = config.path or f"hub dataset {config.hub}"
            raise DatasetError(f"{where}: a row is not valid text: {err}") from None
        yield chunk
