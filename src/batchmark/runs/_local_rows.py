"""Local JSONL and CSV files, streamed with the standard library (issue 18: a lean run).

``datasets`` converts a file to an Arrow table first, and importing it (with pyarrow and
pandas) costs about 50 MB and a second before any row is read. A local JSONL or CSV file
streams fine without it; the rows come out as ``datasets`` gives them (checked against
it on generated files by tests/runs/test_local_rows.py):

- JSONL: one object per line, blank lines skipped, a UTF-8 byte order mark dropped; the
  columns are every key of any row, in the order first seen, ``None`` where a row lacks
  one. Where every value found at a place (a column, a key of an object in it, the items
  of a list in it) is a number and one is a float (or an integer outside 64 bits), the
  integers there become floats, as Arrow's type inference makes them; anything else is
  kept as written.
- CSV: a header line naming every column, then rows; every cell a string; blank lines
  (and lines of spaces and tabs) skipped; text after a closing quote joins the cell; a
  row with fewer cells than the header is filled with ``""``, one with more is an error
  naming the line it starts on (text above the header shows up this way), as is a quoted
  cell never closed. A UTF-8 byte order mark is dropped.

Two passes over the file: the first learns the columns, the numeric places and the row
count (for ``limit``/``sample``), the second yields rows. Memory does not grow with the
file. Parquet, JSON arrays and Hub datasets still go through ``datasets``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from batchmark._errors import DatasetError

__all__ = ["LocalRows"]

_INT64 = (-(2**63), 2**63 - 1)
_ITEMS = "[]"  # the path step of a list's items
# Lists and objects nested deeper in a row are refused: orjson writes 254 levels at most
# (a row's id is its canonical JSON) and Python recurses a thousand (datasets refused
# anything past about 63 levels).
MAX_DEPTH = 200
_BOM = b"\xef\xbb\xbf"
# csv refuses a cell over 131,072 characters by default; a document in a cell is longer
# (datasets read it). A batch holds 256 MB at most: no cell can be sent that is larger.
_CELL_LIMIT = 2**31 - 1


class _TooDeep(Exception):
    pass


class _Numbers:
    """Which places (paths) hold only numbers, and which of those hold a float."""

    def __init__(self) -> None:
        self.other: set[tuple[str, ...]] = set()
        self.floats: set[tuple[str, ...]] = set()

    def learn(self, value: Any, path: tuple[str, ...]) -> None:
        if value is None:
            return
        if len(path) > MAX_DEPTH:
            raise _TooDeep
        if isinstance(value, bool | str):
            self.other.add(path)
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                self.floats.add(path)
        elif isinstance(value, float):
            self.floats.add(path)
        elif isinstance(value, dict):
            self.other.add(path)
            for key, item in value.items():
                self.learn(item, (*path, str(key)))
        elif isinstance(value, list):
            self.other.add(path)
            for item in value:
                self.learn(item, (*path, _ITEMS))

    def promoted(self) -> set[tuple[str, ...]]:
        """The places whose integers become floats."""
        return self.floats - self.other


def _promote(value: Any, path: tuple[str, ...], places: set[tuple[str, ...]]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if path in places else value
    if isinstance(value, dict):
        return {k: _promote(v, (*path, str(k)), places) for k, v in value.items()}
    if isinstance(value, list):
        return [_promote(v, (*path, _ITEMS), places) for v in value]
    return value


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: refused, as orjson and datasets refuse it
        raise ValueError(text)
    return value


def _with_constants(line: bytes) -> Any:
    """A line orjson refused, read by ``json`` if its only fault is ``NaN``, ``Infinity``
    or ``-Infinity`` (Python's ``json.dumps`` writes them; datasets read them); else
    ``None``."""
    if b"NaN" not in line and b"Infinity" not in line:
        return None
    try:
        return json.loads(line, parse_float=_finite)
    except (ValueError, RecursionError):
        return None


class _Lines:
    """A text file's lines for ``csv.reader``, skipping blank ones between records and
    noting the line the current record starts on (``boundary``: the next line starts
    one; the reader of the records sets it after each)."""

    def __init__(self) -> None:
        self.number = 0
        self.start = 1
        self.boundary = True
        self.record: list[str] = []  # the current record's lines

    def lines(self, fh: Iterable[str]) -> Iterator[str]:
        for line in fh:
            self.number += 1
            if self.boundary:
                if not line.strip(" \t\r\n"):
                    continue
                self.start, self.boundary, self.record = self.number, False, []
            self.record.append(line)
            yield line

    def unclosed(self) -> bool:
        """Whether the last record ends inside a quoted cell (csv, not strict, reads to the
        end of the file as that cell's text)."""
        if sum(line.count('"') for line in self.record) % 2 == 0:
            return False
        try:
            for _ in csv.reader(self.record, strict=True):
                pass
        except csv.Error as err:
            return "unexpected end of data" in str(err)
        return False


# A run reads its dataset up to three times (the first row for the request checks and
# the scorers' variables, then every row to expand, then to score): the first pass over
# an unchanged file is done once. Keyed by path, inode, size and change times.
_SCANNED: dict[tuple[Any, ...], tuple[tuple[str, ...], int, frozenset]] = {}


def _file_key(path: str, kind: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # the scan names the problem
    return (os.path.realpath(path), kind, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class LocalRows:
    """A local JSONL or CSV file: its columns, its number of rows, and its rows."""

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.columns: list[str] = []
        self.total = 0
        self._promoted: set[tuple[str, ...]] = set()
        key = _file_key(path, kind)
        known = _SCANNED.get(key) if key is not None else None
        if known is not None:  # the same file, unchanged, scanned before in this process
            columns, self.total, promoted = known
            self.columns, self._promoted = list(columns), set(promoted)
            return
        if kind == "jsonl":
            self._scan_jsonl()
        else:
            self._scan_csv()
        if key is not None:
            _SCANNED.clear()  # one file's scan kept: a run reads one dataset
            _SCANNED[key] = (tuple(self.columns), self.total, frozenset(self._promoted))

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, in file order, with every column."""
        count = 0
        for row in self._jsonl_rows() if self.kind == "jsonl" else self._csv_rows():
            count += 1
            if count > self.total:
                raise self._changed(f"{count} rows now, {self.total} before")
            yield row
        if count < self.total:
            raise self._changed(f"{count} rows now, {self.total} before")

    def _changed(self, what: str) -> DatasetError:
        """The file differs from what the first pass learned (rewritten meanwhile)."""
        return DatasetError(
            f"{self.path}: the file changed while batchmark read it ({what})",
            hint="run the command again once the file is written",
        )

    # --- JSONL -------------------------------------------------------------------------

    def _objects(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, object)`` of every non-blank line."""
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if number == 1 and line.startswith(_BOM):
                    line = line[len(_BOM) :]  # Notepad writes one; datasets read past it
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as err:
                    value = _with_constants(line)  # NaN or Infinity, which orjson refuses
                    if value is None:
                        from batchmark.runs._datasets import check_utf8

                        check_utf8(self.path, "jsonl")  # names the line and byte if not UTF-8
                        raise DatasetError(
                            f"{self.path}: cannot read it as jsonl: line {number} is not "
                            f"JSON ({err})"
                        ) from None
                if not isinstance(value, dict):
                    raise DatasetError(
                        f"{self.path}: cannot read it as jsonl: line {number} is a JSON "
                        f"{type(value).__name__}, not an object (one object per line)"
                    )
                yield number, value

    def _scan_jsonl(self) -> None:
        seen: dict[str, None] = {}
        numbers = _Numbers()
        for number, record in self._objects():
            self.total += 1
            for key, value in record.items():
                seen.setdefault(key)
                try:
                    numbers.learn(value, (key,))
                except _TooDeep:
                    raise DatasetError(
                        f"{self.path}: cannot read it as jsonl: line {number} nests values "
                        f"deeper than {MAX_DEPTH} levels (lists and objects in {key!r})"
                    ) from None
        self.columns = list(seen)
        self._promoted = numbers.promoted()

    def _jsonl_rows(self) -> Iterator[dict[str, Any]]:
        columns, places = self.columns, self._promoted
        known = set(columns)
        for number, record in self._objects():
            if not known.issuperset(record):
                new = ", ".join(repr(k) for k in record if k not in known)
                raise self._changed(f"line {number} has a new column: {new}")
            row = {c: record.get(c) for c in columns}
            if places:
                row = {c: _promote(v, (c,), places) for c, v in row.items()}
            yield row

    # --- CSV ---------------------------------------------------------------------------

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """``(line number, cells)`` of the header, then of every record after it; the
        number is the physical line a record starts on (a quoted cell may span several).

        A line of nothing but spaces and tabs between records is blank and skipped, as
        datasets (pandas) skipped it; inside a quoted cell it is part of the cell."""
        at = _Lines()
        if csv.field_size_limit() < _CELL_LIMIT:
            csv.field_size_limit(_CELL_LIMIT)  # a process-wide setting; only ever raised
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as fh:
                # Not strict: text after a closing quote joins the cell ('"a" ,b' reads
                # 'a ', as datasets read it); an unclosed quote is checked at the end.
                for cells in csv.reader(at.lines(fh)):
                    yield at.start, cells
                    at.boundary = True
            if at.unclosed():
                raise DatasetError(
                    f"{self.path}: cannot read it as csv: line {at.start}: a quoted cell is "
                    "never closed",
                    hint='a cell that starts with " ends with " (a " inside it is written "")',
                )
        except UnicodeDecodeError:
            from batchmark.runs._datasets import check_utf8

            check_utf8(self.path, "csv")
            raise
        except csv.Error as err:
            raise DatasetError(
                f"{self.path}: cannot read it as csv: line {at.start}: {err}"
            ) from None

    def _scan_csv(self) -> None:
        records = self._records()
        first = next(records, None)
        if first is None or not any(cell.strip() for cell in first[1]):
            raise DatasetError(f"{self.path}: the dataset file has no rows")
        header_line, header = first
        if "" in header:
            raise DatasetError(
                f"{self.path}: column {header.index('') + 1} of the header (line "
                f"{header_line}) has no name",
                hint="name every column (pandas' to_csv writes an unnamed index column "
                "unless given index=False)",
            )
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise DatasetError(f"{self.path}: duplicate CSV column names: {', '.join(dupes)}")
        self.columns = header
        for line, cells in records:
            if len(cells) > len(header):
                raise DatasetError(
                    f"{self.path}: cannot read it as csv: line {line} has {len(cells)} "
                    f"cells, the header (line {header_line}) has {len(header)}",
                    hint="quote cells that hold commas; text above the header line "
                    "(a title, a note) must be removed",
                )
            self.total += 1

    def _csv_rows(self) -> Iterator[dict[str, Any]]:
        columns = self.columns
        width = len(columns)
        records = self._records()
        next(records, None)  # the header
        for line, cells in records:
            if len(cells) > width:
                raise self._changed(f"line {line} has {len(cells)} cells, the header {width}")
            if len(cells) < width:
                cells = [*cells, *([""] * (width - len(cells)))]
            yield dict(zip(columns, cells, strict=True))
