from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import batchmark.cli._validate  # noqa: F401  (registers the commands on ``cli``)
from batchmark.cli import cli

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


def write_config(tmp_path: Path, user: str = "{{ q }}", extra: str = "") -> Path:
    (tmp_path / "d.jsonl").write_text('{"id": "r1", "q": "hi"}\n')
    config = tmp_path / "eval.yaml"
    config.write_text(
        "name: t\ndataset: {path: d.jsonl, id_field: id}\n"
        f'prompts: [{{name: p, user: "{user}"}}]\nmodels: [m]\n{extra}'
    )
    return config


def test_validate_reports_the_grid_and_exits_0() -> None:
    result = CliRunner().invoke(cli, ["validate", QUICKSTART])
    assert result.exit_code == 0, result.output
    assert "OK (quickstart)" in result.stdout
    assert "requests  64" in result.stdout and "batches   1" in result.stdout


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=str)
def test_every_shipped_config_passes_the_api_rules(config: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def test_validate_json_output_is_machine_readable() -> None:
    result = CliRunner().invoke(cli, ["validate", QUICKSTART, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["name"], data["rows"], data["requests"]) == ("quickstart", 16, 64)
    assert len(data["hash"]) == 64


def test_validate_bad_config_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="epochs: 0\ncolour: blue\n")
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}: 2 problems:")
    assert "epochs (line 5)" in result.stderr and "colour (line 6): unknown field" in result.stderr
    assert "Traceback" not in result.output


def test_validate_missing_template_variable_exits_2_naming_row_and_variable(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(cli, ["validate", str(write_config(tmp_path, "{{ nope }}"))])
    assert result.exit_code == 2
    assert "prompt variant 'p', row 'r1'" in result.stderr
    assert "undefined variable 'nope'" in result.stderr


def test_validate_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_schema_prints_the_config_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "batchmark eval config"
    assert {"name", "dataset", "prompts", "models"} <= set(schema["required"])


def test_schema_writes_a_file_with_output(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    result = CliRunner().invoke(cli, ["schema", "-o", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text())["title"] == "batchmark eval config"


@pytest.mark.parametrize("name", ["validate", "schema"])
def test_commands_have_help(name: str) -> None:
    assert cli.get_command(click.Context(cli), name).help
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_validate_says_where_the_cache_breakpoint_went(tmp_path: Path) -> None:
    long = "Rules. " * 800
    config = write_config(tmp_path, extra="prompt_cache: auto\n")
    config.write_text(
        config.read_text()
        .replace("models: [m]", "models: [claude-sonnet-4-6]")
        .replace("{name: p,", f'{{name: p, system: "{long.strip()}",')
    )
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "prompt cache: static prefix cached for p x claude-sonnet-4-6 at system" in result.stdout


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("params: {max_tokens: 100000000000000000000000}\n", "params.max_tokens (line 5)"),
        (
            "params: {metadata: {user_id: -100000000000000000000000}}\n",
            "params.metadata.user_id (line 5)",
        ),
        (
            "scorers:\n  - judge: {rubric: r, params: {max_tokens: 100000000000000000000000}}\n",
            "scorers[0].judge.params.max_tokens (line 6)",
        ),
    ],
)
def test_a_number_too_large_for_json_is_a_config_error_not_a_traceback(
    tmp_path: Path, extra: str, where: str
) -> None:
    result = CliRunner().invoke(cli, ["validate", str(write_config(tmp_path, extra=extra))])
    assert result.exit_code == 2, result.output
    assert where in result.stderr and "does not fit in 64 bits" in result.stderr
    assert "Traceback" not in result.output
