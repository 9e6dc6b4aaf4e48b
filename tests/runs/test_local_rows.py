"""Local JSONL and CSV files are streamed without ``datasets`` (issue 18: a lean run);
the rows must come out exactly as ``datasets`` gives them. ``datasets`` itself is the
independent check here, on generated files and on the edge cases."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batchmark._errors import DatasetError
from batchmark.config._schema import DatasetConfig
from batchmark.runs._datasets import load_table, row_content_id
from batchmark.runs._local_rows import LocalRows

KEYS = st.sampled_from(["a", "b", "c", "id"])
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    # 64-bit integers: past them, where Arrow cannot type a column datasets' fallback
    # parser overflows (-2**64 came back as 0); test_numbers_are_promoted_exactly checks
    # such an integer where Arrow types it (it becomes a float).
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    # Floats with few digits: datasets' fallback parser keeps as few as four significant
    # digits (1.192092896e-07 came back as 1.192e-07; see _same), orjson every one.
    st.integers(min_value=-(10**6), max_value=10**6).map(lambda i: i / 4),
    st.text(max_size=5),
)
VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, min_size=1, max_size=3)
    ),
    max_leaves=6,
)
ROWS = st.lists(st.dictionaries(KEYS, VALUE, min_size=1, max_size=4), min_size=1, max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equal, with numbers compared by value to 1e-5 relative: where Arrow cannot type a
    column (lists and numbers in it, objects with different keys), datasets falls back
    to a parser that keeps about six significant digits (6.103515625e-05 comes back as
    6.10352e-05) and leaves 0 and 0.0 side by side, and Arrow itself is not correctly
    rounded (1.0000000000000012e+16 reads as 1e+16); orjson keeps every digit.
    test_numbers_are_promoted_exactly checks exact values and types where Arrow types."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return not isinstance(b, bool) and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_CONFLICT = object()


def _shape(value: Any) -> Any:
    """A value's type shape as Arrow infers it (numbers are one kind)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        item = None
        for v in value:
            item = _merge(item, _shape(v))
        return ("list", item)
    return ("dict", tuple(sorted((k, _shape(v)) for k, v in value.items())))


def _merge(a: Any, b: Any) -> Any:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "list":
        return ("list", _merge(a[1], b[1]))
    return _CONFLICT


def _typable(rows: list[dict[str, Any]]) -> bool:
    """Whether Arrow types every column (else datasets takes a fallback parser that turns
    "0" into 0 and rounds floats: not a reference to compare with)."""
    columns: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            columns[key] = _merge(columns.get(key), _shape(value))
            if _conflicted(columns[key]):
                return False
    return True


def _conflicted(shape: Any) -> bool:
    if shape is _CONFLICT:
        return True
    if isinstance(shape, tuple) and shape[0] == "list":
        return _conflicted(shape[1])
    if isinstance(shape, tuple) and shape[0] == "dict":
        return any(_conflicted(sub) for _, sub in shape[1])
    return False


def _by_datasets(path: Path, kind: str) -> tuple[list[str], list[dict[str, Any]]] | None:
    try:
        table = load_table(DatasetConfig(path=str(path), format=kind))
    except DatasetError:
        return None
    return list(table.column_names), table.to_list()


@settings(
    max_examples=8,  # each example converts a file with datasets (~1 s)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rows=ROWS)
def test_jsonl_rows_are_what_datasets_gives(rows: list[dict[str, Any]], tmp_path_factory) -> None:
    assume(_typable(rows))
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    expected = _by_datasets(path, "jsonl")
    if expected is None:
        return  # a file Arrow cannot type (e.g. an object and a list in one place)
    local = LocalRows(str(path), "jsonl")
    # The same columns; their order is first seen here, Arrow's own for columns first seen
    # empty (it matters nowhere: row ids hash sorted keys, templates read by name).
    assert sorted(local.columns) == sorted(expected[0])
    got = list(local.rows())
    assert len(got) == local.total == len(expected[1])
    assert all(_same(g, e) for g, e in zip(got, expected[1], strict=True)), (got, expected[1])


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3\n",  # a short row: ""
        'a,b\n"x\ny",2\n,\n',  # a quoted cell over two lines; empty cells
        "a,b\n1,2\n\n3,4\n",  # a blank line
        "id,q\n007,hi\n",  # ids stay strings
        'a,b\n"1,5",x\n',  # a quoted comma
        "q,a\n  \nx,1\n \t\r\n",  # lines of spaces and tabs are blank lines
        "q\n  \nx\n   ",  # one column, and a last line without its newline
        'q,a\n"  "\nx,1\n',  # quoted spaces are a cell
        'q,a\n"x\n  \ny",1\n',  # and so is a line of spaces in a quoted cell
        'q,a\n"a" ,b\n"c"d,e\n',  # text after a closing quote joins the cell
    ],
)
def test_csv_rows_are_what_datasets_gives(text: str, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    expected = _by_datasets(path, "csv")
    assert expected is not None
    local = LocalRows(str(path), "csv")
    assert (local.columns, list(local.rows())) == expected


def test_numbers_are_promoted_exactly(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    text = '{"a": 1, "n": {"x": 2}, "l": [1, 2]}\n{"a": 0.1, "n": {"x": 2.5}, "l": [3.25]}\n'
    path.write_text(text + '{"a": null, "s": "x", "b": -18446744073709551616}\n')
    expected = _by_datasets(path, "jsonl")
    rows = list(LocalRows(str(path), "jsonl").rows())
    assert expected is not None and rows == expected[1]
    assert [type(r["a"]) for r in rows[:2]] == [float, float]  # 1 -> 1.0, as Arrow
    assert rows[0]["n"] == {"x": 2.0} and rows[0]["l"] == [1.0, 2.0]
    assert rows[2]["b"] == -18446744073709551616.0 and type(rows[2]["b"]) is float


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Excel writes one; datasets refused such a file (`Field "\ufeffid" does not exist`)."""
    path = tmp_path / "data.csv"
    path.write_text("\ufeffid,q\n007,hi\n", encoding="utf-8")
    local = LocalRows(str(path), "csv")
    assert (local.columns, list(local.rows())) == (["id", "q"], [{"id": "007", "q": "hi"}])


def test_text_above_a_csv_header_is_an_error_naming_the_line(tmp_path: Path) -> None:
    """Issue 18: "junk before the header reported clearly" (datasets read the junk line
    as a one-column header and the real header as a row)."""
    path = tmp_path / "data.csv"
    path.write_text("Results of 2026\nid,question\nq1,hi\n")
    with pytest.raises(DatasetError, match="line 2 has 2 cells, the header .line 1. has 1"):
        LocalRows(str(path), "csv")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.jsonl", '{"a": 1}\n{"a": \n', "line 2 is not JSON"),
        ("list.jsonl", "[1, 2]\n", "line 1 is a JSON list, not an object"),
        ("latin.jsonl", b'{"a": "caf\xe9"}\n', "line 1 is not valid UTF-8"),
        ("latin.csv", b"a\ncaf\xe9\n", "line 2 is not valid UTF-8"),
        ("empty.csv", "", "has no rows"),
    ],
)
def test_bad_files_name_the_file_and_line(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DatasetError, match=message) as err:
        LocalRows(str(path), name.rsplit(".", 1)[1])
    assert str(path) in str(err.value)


def test_reading_a_local_file_imports_no_arrow(tmp_path: Path) -> None:
    """The point of it: a run on a local JSONL never imports datasets, pyarrow or pandas."""
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": i, "q": f"x{i}"}) + "\n" for i in range(50)))
    code = (
        "import sys, json\n"
        "from batchmark.runs._local_rows import LocalRows\n"
        f"rows = list(LocalRows({str(path)!r}, 'jsonl').rows())\n"
        "print(json.dumps([len(rows), [m for m in ('datasets', 'pyarrow', 'pandas') "
        "if m in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [50, []]


def test_a_value_nested_too_deep_is_an_error_naming_the_line(tmp_path: Path) -> None:
    """A list in a list ... 300 deep passed the reader and failed as a traceback where the
    row's id is computed (orjson writes 254 levels at most); 1,000 deep as a Python
    RecursionError while the file was scanned (datasets refused both, naming Arrow)."""
    for depth in (300, 1000):
        path = tmp_path / f"deep{depth}.jsonl"
        path.write_text('{"q": 1}\n{"q": ' + "[" * depth + "]" * depth + "}\n")
        with pytest.raises(DatasetError, match="line 2 nests values deeper than 200 levels"):
            LocalRows(str(path), "jsonl")
    path = tmp_path / "fine.jsonl"
    path.write_text('{"q": ' + "[" * 150 + "]" * 150 + "}\n")
    (row,) = LocalRows(str(path), "jsonl").rows()
    row_content_id(row)  # its id can be computed


def test_a_jsonl_with_a_byte_order_mark_is_read_as_datasets_read_it(tmp_path: Path) -> None:
    """Notepad saves UTF-8 with one; datasets read such a file, orjson refuses the mark."""
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "q": "hi"}\n{"id": "b", "q": "yo"}\n')
    expected = _by_datasets(path, "jsonl")
    local = LocalRows(str(path), "jsonl")
    assert (
        expected
        == (local.columns, list(local.rows()))
        == (
            ["id", "q"],
            [{"id": "a", "q": "hi"}, {"id": "b", "q": "yo"}],
        )
    )


def test_nan_and_infinity_in_jsonl_are_read_as_datasets_read_them(tmp_path: Path) -> None:
    """Python's json.dumps writes NaN and Infinity for such floats; datasets read them (and
    the rows' ids came from them), orjson refuses them. A number too large for a float
    stays an error (datasets refused it too)."""
    path = tmp_path / "data.jsonl"
    path.write_text('{"x": NaN}\n{"x": Infinity}\n{"x": -Infinity}\n{"x": 1}\n')
    expected = _by_datasets(path, "jsonl")
    assert expected is not None
    rows = list(LocalRows(str(path), "jsonl").rows())
    assert [repr(r["x"]) for r in rows] == [repr(r["x"]) for r in expected[1]]
    assert [repr(r["x"]) for r in rows] == ["nan", "inf", "-inf", "1.0"]
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"x": 1e400}\n')
    with pytest.raises(DatasetError, match="line 1 is not JSON"):
        LocalRows(str(huge), "jsonl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('q,a\n"one\ntwo",1\n\n"a\nb\nc",2,3\n', "line 5 has 3 cells"),  # where it starts
        ("q,a\n  \nx,1,2\n", "line 3 has 3 cells"),  # blank lines count
        ('q,a\nx,1\n"open,2\nmore\n', "line 3: a quoted cell is never closed"),
        ('q,a\nx,1\n"open,2', "line 3: a quoted cell is never closed"),
    ],
)
def test_csv_errors_name_the_line_a_record_starts_on(
    tmp_path: Path, text: str, message: str
) -> None:
    """A record spans lines when a quoted cell holds newlines: the error names the line it
    starts on (it named its last line, and csv's own errors named no line)."""
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        LocalRows(str(path), "csv")
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("name", "before", "after"),
    [
        ("data.csv", "q,a\nx,1\ny,2\n", "q,a\nx,1,3\ny,2\n"),  # a row grew a cell
        ("data.csv", "q,a\nx,1\ny,2\n", "q,a\nx,1\n"),  # rows went away
        ("data.jsonl", '{"q": 1}\n{"q": 2}\n', '{"q": 1}\n{"q": 2, "new": 3}\n'),
    ],
)
def test_a_file_changed_between_the_two_passes_is_an_error(
    tmp_path: Path, name: str, before: str, after: str
) -> None:
    """The first pass learns the columns and the number of rows, the second yields rows:
    a file rewritten in between raised ValueError from zip (a CSV row grew a cell), or
    gave fewer rows than counted, or dropped a column, without a word."""
    path = tmp_path / name
    path.write_text(before)
    local = LocalRows(str(path), name.rsplit(".", 1)[1])
    path.write_text(after)
    with pytest.raises(DatasetError, match="changed while batchmark read it") as err:
        list(local.rows())
    assert str(path) in str(err.value)


@pytest.mark.parametrize("header", ["q,,a", ",q", "q,,"])
def test_a_csv_header_cell_without_a_name_is_an_error_naming_it(
    tmp_path: Path, header: str
) -> None:
    """datasets refused such a file ('Field "" does not exist'); the stream took the
    column as named "" (one) or said 'duplicate CSV column names: ' naming none (two)."""
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\n1,2,3\n")
    column = header.split(",").index("") + 1
    with pytest.raises(DatasetError, match=f"column {column} of the header .line 1. has no name"):
        LocalRows(str(path), "csv")


def test_a_csv_cell_larger_than_csvs_default_limit_is_read(tmp_path: Path) -> None:
    """A long document in a cell: csv refuses fields over 131,072 characters by default
    ('field larger than field limit'), datasets (pandas) read them."""
    path = tmp_path / "data.csv"
    document = "word " * 60_000  # 300,000 characters
    path.write_text(f'id,doc\nd1,"{document}"\n')
    rows = list(LocalRows(str(path), "csv").rows())
    assert rows == [{"id": "d1", "doc": document}]


def test_a_file_changed_since_its_scan_is_scanned_again(tmp_path: Path) -> None:
    """The first pass over a file is kept for the run's next reads; an edited file is not
    served from it."""
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n')
    assert LocalRows(str(path), "jsonl").columns == ["a"]
    assert LocalRows(str(path), "jsonl").total == 1  # served from the first scan
    path.write_text('{"b": 1}\n{"b": 2.5}\n')
    again = LocalRows(str(path), "jsonl")
    assert (again.columns, again.total, list(again.rows())) == (
        ["b"],
        2,
        [{"b": 1.0}, {"b": 2.5}],
    )
