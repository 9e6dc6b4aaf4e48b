"""Names and ids from data and configs print as written: never as rich markup, never as
terminal control sequences (issue 13, item 6).

A dataset whose row ids hold markup (``[/]a``, ``[bold red]b``, ``[link=...]c``) and an
escape sequence (an OSC 8 hyperlink, a clear-screen), variants and a model key holding
markup, run with ``--emulate``; every command that prints them shows them literally.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from batchmark._terminal import SafeConsole, literal, visible
from batchmark.cli import cli

HYPERLINK = "\x1b]8;;https://evil.example\x07"
CLEAR = "\x1b[2J"
ROW_IDS = ["[/]a", "[bold red]b", "[link=https://x.example]c", f"{HYPERLINK}d{CLEAR}", "<i>e"]
VARIANTS = ["[red]p", "[/]v2"]
MODEL_KEY = "[link=https://m]m[/link]"
RAW = ("\x1b]8;;", "\x1b[2J", "\x07")


def write_hostile_config(folder: Path) -> Path:
    """Every row passes under the first variant and fails under the second (the echo
    responder answers the prompt): each row id is listed as regressed by ``report``."""
    rows = [{"id": row_id, "q": f"w{i}"} for i, row_id in enumerate(ROW_IDS)]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = folder / "eval.yaml"
    config.write_text(
        "name: hostile\n"
        "dataset: {path: d.jsonl, id_field: id}\n"
        "prompts:\n"
        f"  - {{name: {json.dumps(VARIANTS[0])}, user: '{{{{ q }}}}'}}\n"
        f"  - {{name: {json.dumps(VARIANTS[1])}, user: 'Q {{{{ q }}}}'}}\n"
        "models:\n"
        f"  - {{name: {json.dumps(MODEL_KEY)}, model: claude-haiku-4-5}}\n"
        "params: {max_tokens: 64}\n"
        "scorers:\n"
        "  - exact_match: {target: '{{ q }}'}\n"
    )
    return config


def assert_no_raw_controls(text: str) -> None:
    for sequence in RAW:
        assert sequence not in text, f"raw {sequence!r} reached the terminal"


def batchmark(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


@pytest.fixture
def hostile_run(tmp_path: Path) -> tuple[Path, str]:
    """The hostile config run to completion in-process; (results root, run id)."""
    config = write_hostile_config(tmp_path)
    results = tmp_path / "results"
    done = CliRunner().invoke(
        cli, ["run", str(config), "--emulate", "-q", "--results", str(results)]
    )
    assert done.exit_code == 0, done.output
    (folder,) = results.glob("hostile/*")
    return results, folder.name


def test_run_prints_markup_in_variant_and_model_names_literally(tmp_path: Path) -> None:
    config = write_hostile_config(tmp_path)

    done = batchmark("run", str(config), "--emulate", "--results", "results", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in (*VARIANTS, MODEL_KEY):
        assert name in done.stdout
    assert_no_raw_controls(done.stdout + done.stderr)


def test_report_lists_row_ids_with_markup_and_escapes_literally(
    hostile_run: tuple[Path, str],
) -> None:
    results, run_id = hostile_run

    shown = CliRunner().invoke(cli, ["report", run_id, "--results", str(results)])

    assert shown.exit_code == 0, shown.output
    for text in (*ROW_IDS[:3], "<i>e", *VARIANTS, MODEL_KEY):
        assert text in shown.stdout
    assert visible(ROW_IDS[3]) in shown.stdout  # \x1b]8;;https://evil.example\x07d\x1b[2J
    assert_no_raw_controls(shown.stdout)


def test_report_markdown_shows_escape_sequences_as_text(hostile_run: tuple[Path, str]) -> None:
    results, run_id = hostile_run

    shown = CliRunner().invoke(cli, ["report", run_id, "--results", str(results), "--format", "md"])

    assert shown.exit_code == 0, shown.output
    assert "[/]a" in shown.stdout and visible(ROW_IDS[3]) in shown.stdout
    assert_no_raw_controls(shown.stdout)


def test_report_html_escapes_ids_and_names(hostile_run: tuple[Path, str]) -> None:
    results, run_id = hostile_run

    shown = CliRunner().invoke(
        cli, ["report", run_id, "--results", str(results), "--format", "html"]
    )

    assert shown.exit_code == 0, shown.output
    assert "&lt;i&gt;e" in shown.stdout and "<i>e" not in shown.stdout
    assert "[link=https://x.example]c" in shown.stdout  # markup means nothing in HTML


def test_status_of_a_run_and_of_all_runs_exit_0(hostile_run: tuple[Path, str]) -> None:
    results, run_id = hostile_run

    one = CliRunner().invoke(cli, ["status", run_id, "--results", str(results)])
    every = CliRunner().invoke(cli, ["status", "--results", str(results)])

    assert one.exit_code == 0 and every.exit_code == 0, one.output + every.output
    assert run_id in one.stdout and run_id in every.stdout
    assert_no_raw_controls(one.stdout + every.stdout)


def test_score_prints_names_literally(hostile_run: tuple[Path, str]) -> None:
    results, run_id = hostile_run

    shown = CliRunner().invoke(cli, ["score", run_id, "--results", str(results), "-q"])

    assert shown.exit_code == 0, shown.output
    assert MODEL_KEY in shown.stdout and VARIANTS[1] in shown.stdout


def test_validate_and_estimate_print_names_literally(tmp_path: Path) -> None:
    config = write_hostile_config(tmp_path)
    text = config.read_text().replace(json.dumps(VARIANTS[1]), '"v\\e[2J\\e]8;;x\\a"')
    config.write_text(text)  # a variant name holding a clear-screen and a hyperlink

    checked = CliRunner().invoke(cli, ["validate", str(config)])
    estimated = CliRunner().invoke(
        cli, ["estimate", str(config), "--emulate", "--results", str(tmp_path / "r")]
    )

    assert checked.exit_code == 0, checked.output
    assert estimated.exit_code == 0, estimated.output
    for shown in (checked.stdout, estimated.stdout):
        assert MODEL_KEY in shown and VARIANTS[0] in shown, shown
        assert "v\\x1b[2J\\x1b]8;;x\\x07" in shown
        assert_no_raw_controls(shown)


def test_rich_alone_passes_escape_sequences_through() -> None:
    """Why ``visible`` exists: rich strips only a few control codes (BEL, not ESC)."""
    buffer = io.StringIO()
    Console(file=buffer, color_system=None).print(Text(f"{CLEAR}x"))
    assert CLEAR in buffer.getvalue()


def test_literal_and_safe_console_print_controls_as_escapes() -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=200, color_system=None)

    console.print(f"[bold]{HYPERLINK}:smile:")
    console.print(literal(f"[/]{CLEAR}", "bold red"))

    assert buffer.getvalue() == ("[bold]\\x1b]8;;https://evil.example\\x07:smile:\n[/]\\x1b[2J\n")
