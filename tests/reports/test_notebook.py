"""Runs and comparisons in Jupyter (issue 17): ``_repr_html_`` tables, parsed back, with
every data value escaped; ``responses_df`` / ``scores_df`` joining the dataset's columns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

import batchmark
from batchmark.reports._numbers import fmt_number

from .support import JUDGE, RIGHT, ROWS, isolated, make_run

HOSTILE = "<script>alert(1)</script>"
PROMPTS = [
    {"name": HOSTILE, "user": "{{ question }}"},  # answered as support's "plain"
    {"name": "terse", "system": "Answer tersely.", "user": "{{ question }}"},
]
INCLUDES = {"includes": {"target": "{{ answer }}"}}


class _Tables(HTMLParser):
    """Every table's rows as lists of cell texts; the tags seen; the text outside tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        (self._cell if self._cell is not None else self.text).append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[batchmark.Run]:
    root = tmp_path_factory.mktemp("notebook")
    with isolated(root):
        yield make_run(root, prompts=PROMPTS, scorers=[INCLUDES, JUDGE])


def test_a_run_shows_a_row_per_model_and_variant_with_counts_scores_and_cost(
    run: batchmark.Run,
) -> None:
    parsed = _parse(run._repr_html_())
    [table] = parsed.tables
    header, *rows = table
    assert header == [
        "model",
        "variant",
        "requests",
        "succeeded",
        "errored",
        "includes",
        "grader",
        "batch $",
    ]
    by_cell = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows}
    cells = batchmark.report(run).cells
    for (model, variant), right in RIGHT.items():
        shown = HOSTILE if variant == "plain" else variant
        row = by_cell[(model, shown)]
        assert (row["requests"], row["succeeded"], row["errored"]) == ("6", "6", "0")
        # includes passes exactly the questions the emulator answers right
        assert row["includes"].startswith(f"{fmt_number(len(right) / len(ROWS))} [")
        cell = cells[
            (cells.model_key == model) & (cells.variant == shown) & (cells.scorer == "includes")
        ].iloc[0]
        low, high = fmt_number(cell.ci_low), fmt_number(cell.ci_high)
        assert row["includes"].endswith(f"[{low}, {high}] n=6")
        assert row["batch $"].startswith("$")
    assert by_cell[("claude-haiku-4-5", "judge:grader")]["requests"] == "24"
    total = sum(int(r[2]) for r in rows)  # the candidates and the judge's requests
    assert total == 48
    assert f"complete · {total}/{total} requests ended" in "".join(parsed.text)


def test_an_emulated_run_and_its_comparison_are_marked(run: batchmark.Run) -> None:
    for html in (run._repr_html_(), batchmark.report(run)._repr_html_()):
        assert "<strong>EMULATED</strong>" in html
        assert "came from batchmark's emulator" in "".join(_parse(html).text)


def test_data_values_are_escaped_never_markup(run: batchmark.Run) -> None:
    for html in (run._repr_html_(), batchmark.report(run)._repr_html_()):
        parsed = _parse(html)
        assert "script" not in parsed.tags
        assert any(HOSTILE in cell for t in parsed.tables for row in t for cell in row)


def test_a_comparison_shows_its_scores_and_the_paired_differences(run: batchmark.Run) -> None:
    comparison = batchmark.report(run, baseline=HOSTILE)
    parsed = _parse(comparison._repr_html_())
    scores, diffs, cost = parsed.tables
    assert scores[0] == ["model", "variant", "includes", "grader"]
    assert diffs[0][:4] == ["model", "variant", "scorer", "Δ vs baseline [95% CI]"]
    rows = {(r[0], r[1], r[2]): r for r in diffs[1:]}
    for d in comparison.diffs.to_dict("records"):
        row = rows[(d["model_key"], d["variant"], d["scorer"])]
        assert row[3].startswith(fmt_number(d["diff"], sign=True))
        assert row[6] == str(d["n"])
    assert len(diffs) - 1 == len(comparison.diffs) == 4
    assert len(cost) - 1 == len(comparison.cost) + 1  # and the total row
    assert f"baseline variant:{HOSTILE}" in "".join(parsed.text)


def test_the_text_repr_stays_short_and_useful(run: batchmark.Run) -> None:
    assert repr(run) == f"Run({run.id!r}, {str(run.path)!r})"
    text = repr(batchmark.report(run))
    assert text.startswith(f"<Comparison of {run.id}: baseline variant:{HOSTILE}, 8 cells, ")
    assert "EMULATED" in text and "\n" not in text


def test_responses_df_joins_the_requested_dataset_columns_on_row_id(run: batchmark.Run) -> None:
    df = run.responses_df(dataset=["question", "topic"])
    assert len(df) == 24
    by_id = {r["id"]: r for r in ROWS}
    for rec in df.to_dict("records"):
        assert rec["question"] == by_id[rec["row_id"]]["question"]
        assert rec["topic"] == by_id[rec["row_id"]]["topic"]
    assert "answer" not in df.columns  # only what was asked for
    assert list(df["custom_id"]) == list(run.responses_df()["custom_id"])  # order kept


def test_scores_df_joins_every_column_and_renames_a_clash(run: batchmark.Run) -> None:
    df = run.scores_df(dataset=True)
    assert {"id", "question", "topic", "answer", "answer_dataset"} <= set(df.columns)
    expected = {r["id"]: r["answer"] for r in ROWS}
    assert all(df["answer_dataset"] == df["row_id"].map(expected))
    assert len(df) == len(run.scores_df())


def test_an_unknown_column_names_the_file_and_the_columns_there_are(run: batchmark.Run) -> None:
    with pytest.raises(batchmark.DatasetError) as err:
        run.scores_df(dataset=["question", "nope"])
    message = str(err.value)
    assert "data.jsonl: no column 'nope'" in message
    assert "(available: id, question, answer, topic)" in message


def test_a_changed_or_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    run = make_run(tmp_path, variants=("plain",), models=["claude-haiku-4-5"])
    data = tmp_path / "cfg" / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS if r["id"] != "q4"))
    with pytest.raises(batchmark.DatasetError) as err:
        run.responses_df(dataset=["question"])
    message = str(err.value)
    assert f"{data}: 1 row(s) of run {run.id} are not in the dataset any more ('q4')" in message
    assert "it changed since the run" in message and "hint: restore the dataset" in message

    data.unlink()
    with pytest.raises(batchmark.DatasetError) as err:
        run.scores_df(dataset=True)
    message = str(err.value)
    assert f"run {run.id}: its dataset cannot be read to join its columns" in message
    assert str(data) in message and "hint: restore the dataset" in message
    assert len(run.scores_df()) == 6  # without dataset= nothing is read
