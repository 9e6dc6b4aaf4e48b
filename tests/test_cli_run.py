"""``batchmark run``, ``resume``, ``status``: exit codes and messages, as users see them.

User mistakes go through the real entry point (``python -m batchmark``, a subprocess),
which turns them into one message and exit code 2; reading commands use click's
``CliRunner`` in-process. Nothing here needs the real API: runs use ``--emulate`` or a
live emulator on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from batchmark.cli import cli
from batchmark.emulator import Emulator

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
VARIANTS = ("plain", "fewshot")


def batchmark(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess (the test's environment, plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=60,
    )


def run_folders(results: Path) -> list[Path]:
    """Everything under ``results/<eval>/``: finished and half-made run folders alike."""
    return [p for p in results.glob("*/*") if p.parent.name != ".cache"]


def write_config(folder: Path, body: str, rows: str = '{"id": "r1", "q": "hi"}\n') -> Path:
    (folder / "d.jsonl").write_text(rows)
    config = folder / "eval.yaml"
    config.write_text(body)
    return config


VALID = """\
name: t
dataset: {path: d.jsonl, id_field: id}
prompts: [{name: p, user: "{{ q }}"}]
models: [claude-haiku-4-5]
"""


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def finished_run(results: Path) -> str:
    """The quickstart run to completion against the bundled emulator; its run id."""
    done = CliRunner().invoke(
        cli, ["run", QUICKSTART, "--emulate", "--results", str(results), "--poll-interval", "0.02"]
    )
    assert done.exit_code == 0, done.output
    (folder,) = run_folders(results)
    return folder.name


@pytest.fixture
def live_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A slow emulator on loopback (batches stay in progress); the env pointing at it."""
    with Emulator(processing_seconds=600).serve() as url:
        env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


# --- run --------------------------------------------------------------------------------


def test_run_emulate_exits_0_and_prints_a_row_per_model_and_variant(results: Path) -> None:
    done = batchmark("run", QUICKSTART, "--emulate", "--results", str(results))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for model in MODELS:
        for variant in VARIANTS:
            assert any(model in line and f" {variant} " in line for line in lines), done.stdout
    assert "cost (batch)" in done.stdout
    assert "at batch prices (standard API:" in done.stdout
    assert f"results: {results / 'quickstart'}" in done.stdout


def test_a_config_that_is_not_ascii_runs_and_reports_under_an_ascii_locale(
    tmp_path: Path, results: Path
) -> None:
    """The snapshot is the run's one source of settings: it is written as read (UTF-8),
    whatever the locale's encoding (here ASCII: C locale, no UTF-8 mode)."""
    config = write_config(tmp_path, VALID.replace('"{{ q }}"', '"Réponds : {{ q }}"'))
    ascii_locale = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}

    made = batchmark(
        "run",
        str(config),
        "--emulate",
        "--results",
        str(results),
        "--poll-interval",
        "0.02",
        env=ascii_locale,
    )
    assert made.returncode == 0, made.stderr
    (folder,) = run_folders(results)
    report = batchmark("report", folder.name, "--results", str(results), env=ascii_locale)

    assert (folder / "config.yaml").read_bytes() == config.read_bytes()
    assert report.returncode == 0, report.stderr


def test_run_without_api_key_exits_2_naming_anthropic_api_key(results: Path) -> None:
    done = batchmark("run", QUICKSTART, "--results", str(results))
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr and "--emulate" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_folders(results) == []


def test_run_without_api_key_prints_only_the_one_line_error(results: Path) -> None:
    done = batchmark("run", QUICKSTART, "--results", str(results))
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: no API key")


def test_run_with_malformed_yaml_exits_2_naming_the_file_and_line(
    tmp_path: Path, results: Path
) -> None:
    config = write_config(tmp_path, VALID + "params: {max_tokens: 5\n")
    done = batchmark("run", str(config), "--emulate", "--results", str(results))
    assert done.returncode == 2
    assert f"error: {config}: invalid YAML at line" in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


def test_run_with_an_unknown_field_exits_2_naming_the_field(tmp_path: Path, results: Path) -> None:
    config = write_config(tmp_path, VALID + "colour: blue\n")
    done = batchmark("run", str(config), "--emulate", "--results", str(results))
    assert done.returncode == 2
    assert f"error: {config}: colour (line 5): unknown field" in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


def test_run_with_a_missing_dataset_exits_2_naming_the_field_and_file(
    tmp_path: Path, results: Path
) -> None:
    config = write_config(tmp_path, VALID.replace("d.jsonl", "nope.jsonl"))
    done = batchmark("run", str(config), "--emulate", "--results", str(results))
    assert done.returncode == 2
    assert f"error: {config}: dataset.path (line 2): file not found" in done.stderr
    assert str(tmp_path / "nope.jsonl") in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


def test_run_with_a_missing_template_variable_exits_2_naming_variant_row_and_variable(
    tmp_path: Path, results: Path
) -> None:
    config = write_config(tmp_path, VALID.replace("{{ q }}", "{{ q }} {{ context }}"))
    done = batchmark("run", str(config), "--emulate", "--results", str(results))
    assert done.returncode == 2
    assert f"error: {config}: prompt variant 'p', row 'r1'" in done.stderr
    assert "prompts[0].user line 1: undefined variable 'context'" in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


def test_run_detach_with_emulate_is_refused_with_exit_2(results: Path) -> None:
    done = batchmark("run", QUICKSTART, "--emulate", "--detach", "--results", str(results))
    assert done.returncode == 2
    assert "--detach cannot be combined with --emulate" in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


@pytest.mark.parametrize("command", ["run", "estimate", "ci"])
def test_emulate_with_a_base_url_is_refused_with_exit_2(command: str, results: Path) -> None:
    flags = ["--emulate", "--base-url", "http://127.0.0.1:9", "--results", str(results)]
    done = batchmark(command, QUICKSTART, *flags)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --emulate cannot be combined with --base-url")
    assert "hint: to use an emulator at a URL, start `batchmark emulator`" in done.stderr
    assert "Traceback" not in done.stderr and run_folders(results) == []


def test_run_detach_prints_the_run_id_and_status_shows_its_batches(
    live_emulator: dict[str, str], results: Path
) -> None:
    done = batchmark("run", QUICKSTART, "--detach", "-q", "--results", str(results))
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert [p.name for p in run_folders(results)] == [run_id]
    shown = CliRunner().invoke(cli, ["status", run_id, "--results", str(results)])
    assert shown.exit_code == 0, shown.output
    assert f"run {run_id} (quickstart)" in shown.stdout and "64 in flight" in shown.stdout
    assert "msgbatch_" in shown.stdout and "in_progress" in shown.stdout


# --- resume and status ------------------------------------------------------------------


def test_resume_of_an_unknown_run_exits_2_saying_no_run(results: Path) -> None:
    done = batchmark("resume", "nope", "--results", str(results))
    assert done.returncode == 2
    assert "no run 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_status_lists_every_run_in_a_table(finished_run: str, results: Path) -> None:
    shown = CliRunner().invoke(cli, ["status", "--results", str(results)])
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.stdout.splitlines() if finished_run in line]
    assert "quickstart" in row and "complete" in row and "128" in row  # 64 + 64 judge


def test_status_json_lists_every_run_for_programs(finished_run: str, results: Path) -> None:
    shown = CliRunner().invoke(cli, ["status", "--results", str(results), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    (run,) = json.loads(shown.stdout)
    assert (run["run"], run["eval"], run["state"]) == (finished_run, "quickstart", "complete")
    # 64 candidates (16 rows x 2 variants x 2 models) and one judge request for each
    assert (run["total"], run["done"], run["failed"]) == (128, 128, 0)


def test_status_json_of_one_run_includes_its_batches(finished_run: str, results: Path) -> None:
    args = ["status", finished_run, "--results", str(results), "--format", "json"]
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    run = json.loads(shown.stdout)
    assert run["state"] == "complete"
    assert [b["status"] for b in run["batches"]] == ["ended", "ended"]  # candidates, judge
    assert run["emulated"] is True


def test_status_marks_an_emulated_run(finished_run: str, results: Path) -> None:
    """Issue 17: an emulated run looked real in `status`."""
    listed = CliRunner().invoke(cli, ["status", "--results", str(results)])
    assert listed.exit_code == 0 and "(emulated)" in listed.stdout, listed.output
    one = CliRunner().invoke(cli, ["status", finished_run, "--results", str(results)])
    assert one.exit_code == 0 and "EMULATED: answers from batchmark's emulator" in one.stdout


# --- help -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [cli.get_command(click.Context(cli), n) for n in cli.list_commands(click.Context(cli))],
    ids=lambda c: c.name,
)
def test_commands_have_help(command: click.Command) -> None:
    assert command.help, f"{command.name} is missing its help"
    shown = CliRunner().invoke(cli, [command.name or "", "--help"])
    assert shown.exit_code == 0 and "Usage:" in shown.output


def test_an_unreachable_api_exits_3_quickly_with_the_run_kept(results: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    done = batchmark("run", QUICKSTART, "--results", str(results), env=env)

    assert done.returncode == 3, done.stderr
    assert "the API failed" in done.stderr and "batchmark resume" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(list(results.glob("quickstart/*/ledger.sqlite"))) == 1


def test_an_unreachable_api_during_validate_online_says_nothing_of_a_run_to_resume() -> None:
    """validate starts no run: the API failure's hint must not send the user to
    `batchmark resume RUN` (it did: the same text as a failed run's)."""
    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    done = batchmark("validate", QUICKSTART, "--online", env=env)

    assert done.returncode == 3, done.stderr
    assert "the API failed" in done.stderr and "try again" in done.stderr
    assert "resume" not in done.stderr and "Traceback" not in done.stderr
