"""Rendering the comparison: Markdown, CSV, JSON, the terminal table, and the CLI.

The numbers are tested in tests/reports/test_compare.py; here a fixed synthetic comparison (with
stable ids) checks what each format shows, and real runs check the commands end to end.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

import batchmark
import batchmark.cli._report  # noqa: F401  (registers report and compare)
from batchmark.cli import cli, main
from batchmark.reports._compare import (
    COST_COLUMNS,
    Comparison,
    compare_scores,
    report,
)
from batchmark.reports._render import csv_frame, terminal_text, to_csv, to_json, to_markdown

from .support import isolated, make_run


def synthetic(new: str = "new", row: str = "q") -> Comparison:
    """Variant ``new`` against ``old`` on model ``m``: +0.75 on 8 items, significant."""
    rows = []
    for variant, passed in (("old", [0] * 8), (new, [1] * 6 + [0] * 2)):
        for i, p in enumerate(passed):
            rows.append(
                {
                    "run": "run-1",
                    "custom_id": f"{variant}-q{i}",
                    "variant": variant,
                    "model_key": "m",
                    "row_id": f"{row}{i}",
                    "epoch": 0,
                    "scorer": "exact",
                    "score": float(p),
                    "passed": bool(p),
                    "invalid": False,
                }
            )
    tables = compare_scores(pd.DataFrame(rows))
    cost = pd.DataFrame(
        [
            ["run-1", "m", "old", 8, 8, 0, 0, 800, 80, 0, 0, 0.0008, 0.0016, 0.0008, 0.0],
            ["run-1", "m", new, 8, 8, 0, 0, 900, 90, 0, 0, 0.0009, 0.0018, 0.0009, 0.0],
        ],
        columns=COST_COLUMNS,
    )
    return Comparison(
        cells=tables.cells,
        diffs=tables.diffs,
        items=tables.items,
        cost=cost,
        baseline=tables.baseline,
        runs=("run-1",),
    )


TERMINAL = """\
scores (epochs reduced by mean · 95% CI)
┏━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ model ┃ variant ┃                    exact ┃
┡━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ m     │ old     │ 0.000 [0.000, 0.324] n=8 │
│ m     │ new     │ 0.750 [0.409, 0.929] n=8 │
└───────┴─────────┴──────────────────────────┘
baseline variant:old; Δ = candidate − baseline on shared items; ▲/▼: the 95% CI excludes 0; MDE:
smallest difference detectable (power 0.8, α 0.05); +/-: items improved / regressed
differences vs baseline
┏━━━━━━━┳━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━┳━━━━━━┳━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━━━┓
┃ model ┃ variant ┃ scorer ┃  Δ vs baseline [95% CI] ┃ sig ┃ corr ┃ n ┃   MDE ┃   +/- ┃ McNemar p ┃
┡━━━━━━━╇━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━╇━━━━━━╇━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━┩
│ m     │ new     │ exact  │ +0.750 [+0.189, +1.000] │   ▲ │    – │ 8 │ 0.588 │ +6/-0 │     0.031 │
└───────┴─────────┴────────┴─────────────────────────┴─────┴──────┴───┴───────┴───────┴───────────┘
changed items
┏━━━━━━━┳━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ model ┃ variant ┃ scorer ┃ regressed (pass → fail) ┃ improved (fail → pass) ┃
┡━━━━━━━╇━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━┩
│ m     │ new     │ exact  │                         │ q0, q1, q2, q3, q4, q5 │
└───────┴─────────┴────────┴─────────────────────────┴────────────────────────┘
tokens and cost
┏━━━━━━━┳━━━━━━━━━┳━━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┓
┃ model ┃ variant ┃ reqs ┃ in tok ┃ out tok ┃ cache w/r ┃ batch $ ┃   std $ ┃ saved $ ┃
┡━━━━━━━╇━━━━━━━━━╇━━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━┩
│ m     │ old     │    8 │    800 │      80 │       0/0 │ $0.0008 │ $0.0016 │ $0.0008 │
│ m     │ new     │    8 │    900 │      90 │       0/0 │ $0.0009 │ $0.0018 │ $0.0009 │
│ total │         │   16 │  1,700 │     170 │       0/0 │ $0.0017 │ $0.0034 │ $0.0017 │
└───────┴─────────┴──────┴────────┴─────────┴───────────┴─────────┴─────────┴─────────┘
"""


def test_terminal_table_at_a_fixed_width() -> None:
    text = terminal_text(synthetic(), width=100)
    assert "\n".join(line.rstrip() for line in text.splitlines()) + "\n" == TERMINAL


def test_markdown_marks_significant_differences() -> None:
    md = to_markdown(synthetic())
    assert "### Scores (epochs reduced by mean · 95% CI)" in md
    # 6 of 8 pass: Wilson [0.409, 0.929] (it was 0.750 [0.429, 1.071], past 1); the
    # paired difference of pass/fail items, Bonett-Price with f=6, g=0, n=8: centre
    # 7/10 - 1/10 = 0.6, half 1.96 * sqrt((0.8 - 0.36) / 10) = 0.411 -> [0.189, 1.000];
    # MDE 2.80 * that SE, 0.2098 (larger than sd(d)/sqrt(8) = 0.164): 0.588.
    assert "| m | new | 0.750 [0.409, 0.929] n=8 |" in md
    assert (
        "| m | new | exact | **+0.750 [+0.189, +1.000]** | ▲ | – | 8 | 0.588 | +6/-0 | 0.031 |"
        in md
    )
    assert "| m | new | exact |  | q0, q1, q2, q3, q4, q5 |" in md
    assert "| total |  | 16 | 1,700 | 170 | 0/0 | $0.0017 | $0.0034 | $0.0017 |" in md


def test_csv_has_one_row_per_cell_with_its_comparison() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(synthetic()))))
    assert [r["variant"] for r in rows] == ["old", "new"]
    old, new = rows
    assert old["diff"] == "" and old["significant"] == ""
    assert (new["baseline_variant"], new["n_shared"], new["significant"]) == ("old", "8", "True")
    assert float(new["diff"]) == 0.75 and float(new["p_value"]) == pytest.approx(2 / 64)
    assert list(rows[0]) == list(csv_frame(synthetic()).columns)


def test_json_is_stable_data_with_nulls() -> None:
    data = json.loads(to_json(synthetic()))
    assert set(data) == {"runs", "baseline", "reducer", "k", "cluster_field", "cells"} | {
        "diffs",
        "items",
        "cost",
        "notes",
    }
    assert data["baseline"] == "variant:old" and data["reducer"] == "mean"
    (diff,) = data["diffs"]
    assert diff["significant"] is True and diff["corr"] is None  # the baseline is constant
    assert diff["improved"] == 6 and isinstance(diff["n"], int)
    assert [i["row_id"] for i in data["items"]] == [f"q{i}" for i in range(6)]


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    root = tmp_path_factory.mktemp("render")
    with isolated(root):
        first = make_run(root)
        second = make_run(root)
        yield root / "results", [first.id, second.id]


def test_report_json_is_the_library_result(two_runs: tuple[Path, list[str]]) -> None:
    results, (run_id, _) = two_runs
    got = CliRunner().invoke(cli, ["report", run_id, "--results", str(results), "--format", "json"])
    assert got.exit_code == 0, got.output
    expected = to_json(report(batchmark.open_run(run_id, results)))
    assert got.output == expected


def test_report_table_and_output_file(two_runs: tuple[Path, list[str]], tmp_path: Path) -> None:
    results, (run_id, _) = two_runs
    got = CliRunner().invoke(cli, ["report", run_id, "--results", str(results)])
    assert got.exit_code == 0, got.output
    assert "differences vs baseline" in got.output and "claude-haiku-4-5" in got.output
    out = tmp_path / "report.md"
    args = ["report", run_id, "--results", str(results), "--format", "md", "-o", str(out)]
    got = CliRunner().invoke(cli, args)
    assert got.exit_code == 0
    assert out.read_text().startswith("### Scores")


def test_compare_pairs_runs_against_a_chosen_baseline(
    two_runs: tuple[Path, list[str]],
) -> None:
    results, (first, second) = two_runs
    args = ["compare", first, second, "--results", str(results), "--format", "csv"]
    got = CliRunner().invoke(cli, [*args, "--baseline", second])
    assert got.exit_code == 0, got.output
    rows = list(csv.DictReader(io.StringIO(got.output)))
    compared = [r for r in rows if r["diff"]]
    assert {r["run"] for r in compared} == {first}
    assert {r["baseline_run"] for r in compared} == {second}
    assert {float(r["diff"]) for r in compared} == {0.0}  # the same answers twice


def test_an_unknown_baseline_is_one_message_and_exit_2(
    two_runs: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    results, (first, second) = two_runs
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", first, second, "--results", str(results), "--baseline", "nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: baseline 'nope' is not a run, variant or model")
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["report", "compare"])
def test_commands_and_options_have_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command.help
    for param in command.params:
        if param.param_type_name == "option":
            assert param.help, f"{name} {param.name} has no help"


def test_html_marks_a_significant_difference_and_keeps_the_axis_within_0_1() -> None:
    from batchmark.reports._render import render

    html = render(synthetic(), "html")
    assert 'class="up significant"' in html  # 6 of 8 improved: +0.750 [+0.189, +1.000]
    # Wilson intervals stay inside [0, 1]: the chart's axis ends at 1 (it ran to 1.25).
    assert ">1.25<" not in html and ">1.00<" in html


@pytest.mark.parametrize(
    "value",
    [
        "</script><script>alert(1)</script>",
        "<!-- <script>",
        "a & b > c",
        "line\u2028separator\u2029paragraph",
        {"</SCRIPT >": ["\ud800", 1.5, None]},  # a lone surrogate too
    ],
)
def test_script_json_cannot_end_its_script_and_reads_back_the_same(value: object) -> None:
    from batchmark.reports._html import script_json

    data = script_json(value).decode()
    assert not set("<>&\u2028\u2029") & set(data)
    assert json.loads(data) == value


def test_a_report_file_is_replaced_whole_or_left_as_it_was(tmp_path: Path) -> None:
    from batchmark.runs._store import atomic_writer

    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.html"
    out.write_text("old report")
    with pytest.raises(RuntimeError), atomic_writer(out) as fh:
        fh.write(b"<!DOCTYPE html>half of a new one")
        raise RuntimeError("the writer failed halfway")
    assert out.read_text() == "old report" and sorted(folder.iterdir()) == [out]
    with atomic_writer(out) as fh:
        fh.write(b"new report")
    assert out.read_text() == "new report" and sorted(folder.iterdir()) == [out]


@pytest.mark.parametrize("fmt", ["json", "table", "html"])
def test_report_killed_while_writing_leaves_the_old_file(
    two_runs: tuple[Path, list[str]], tmp_path: Path, fmt: str
) -> None:
    """Only the HTML report was written atomically: ``-o`` of the table, markdown, CSV
    and JSON wrote the file in place, so a report killed midway left half of one."""
    import os
    import subprocess
    import sys

    results, (run_id, _) = two_runs
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "report.out"
    out.write_text("old report")
    env = {**os.environ, "BATCHMARK_CRASHPOINT": "mid_write"}
    env["PYTHONPATH"] = str(Path(batchmark.__file__).parents[1])
    cmd = [sys.executable, "-m", "batchmark", "report", run_id, "--results", str(results)]
    done = subprocess.run([*cmd, "--format", fmt, "-o", str(out)], env=env, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    assert out.read_text() == "old report"
    # the next report removes the killed writer's temporary file
    got = CliRunner().invoke(cli, [*cmd[3:], "--format", fmt, "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert sorted(out.parent.iterdir()) == [out] and out.read_text() != "old report"


def test_report_into_a_missing_folder_is_a_clear_error(
    two_runs: tuple[Path, list[str]], tmp_path: Path
) -> None:
    results, (run_id, _) = two_runs
    for fmt in ("html", "json"):
        out = tmp_path / "no such folder" / f"report.{fmt}"
        args = ["report", run_id, "--results", str(results), "--format", fmt, "-o", str(out)]
        got = CliRunner().invoke(cli, args)
        assert got.exit_code == 2 and isinstance(got.exception, SystemExit), got.output
        assert f"cannot write {out}" in got.output and "no such folder" in got.output
        assert not (tmp_path / "no such folder").exists()


def test_markdown_shows_markup_in_names_as_text() -> None:
    """A variant or row id holding ``<!--`` hid the rest of a Markdown report on GitHub
    (a PR comment, a job summary: HTML in Markdown is rendered), ``<b>`` made bold."""
    comp = synthetic(new="new<!--", row="<b>q</b>&")
    text = to_markdown(comp)
    assert "<" not in text
    assert "| m | new&lt;!-- |" in text and "&lt;b>q&lt;/b>&amp;0" in text
