"""Failures a user can meet end in one message naming the problem and the next command,
with a documented exit code and nothing lost (issue 13, "Every failure a clear message").

Each test drives the real command line in a subprocess (``python -m batchmark``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchmark.cli import cli
from batchmark.emulator import Emulator

CONFIG = """\
name: t
dataset: {{path: {data}, id_field: id}}
prompts: [{{name: p, user: "{{{{ q }}}}"}}]
models: [claude-haiku-4-5]
params: {{max_tokens: 16}}
"""


def batchmark(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (the test's environment, plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=timeout,
    )


def write_config(folder: Path, data: str, content: bytes) -> Path:
    (folder / data).write_bytes(content)
    config = folder / "eval.yaml"
    config.write_text(CONFIG.format(data=data))
    return config


def assert_one_message(done: subprocess.CompletedProcess[str], code: int) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")


# --- a dataset that is not UTF-8 --------------------------------------------------------

LATIN1_JSONL = '{"id": "r1", "q": "ok"}\n{"id": "r2", "q": "café"}\n'.encode("latin-1")
LATIN1_CSV = "id,q\nr1,ok\nr2,café\n".encode("latin-1")


@pytest.mark.parametrize(
    ("data", "content", "where"),
    [
        ("d.jsonl", LATIN1_JSONL, "line 2 is not valid UTF-8 (byte 0xe9 at offset 46"),
        ("d.csv", LATIN1_CSV, "line 3 is not valid UTF-8 (byte 0xe9 at offset 17"),
    ],
    ids=["jsonl", "csv"],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_latin1_dataset_names_the_file_line_and_byte_and_says_to_re_encode(
    tmp_path: Path, data: str, content: bytes, where: str, command: str
) -> None:
    config = write_config(tmp_path, data, content)
    extra = ["--emulate", "--results", str(tmp_path / "results")] if command == "run" else []

    done = batchmark(command, str(config), *extra)

    assert_one_message(done, 2)
    assert f"{tmp_path / data}: {where}" in done.stderr
    assert "re-encode it as UTF-8" in done.stderr and "iconv -f latin1 -t utf-8" in done.stderr
    assert not list(tmp_path.glob("results/t/*"))  # nothing half-made is left


# --- the emulator's port is taken -------------------------------------------------------


def test_emulator_on_a_port_in_use_exits_2_saying_how_to_pick_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = batchmark("emulator", "--port", str(port), timeout=60)

    assert_one_message(done, 2)
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is already in use" in done.stderr
    assert "--port 0" in done.stderr
    assert done.stdout == ""  # no base URL: nothing is served


# --- --base-url of an existing run ------------------------------------------------------


@pytest.mark.parametrize("command", ["resume", "score", "cancel"])
def test_help_of_commands_on_a_run_says_the_recorded_endpoint_wins(command: str) -> None:
    shown = CliRunner().invoke(cli, [command, "--help"], terminal_width=400)

    assert shown.exit_code == 0
    assert "default: the one the run was made against" in shown.output
    assert "default: ANTHROPIC_BASE_URL" not in shown.output


def test_resume_goes_to_the_recorded_endpoint_even_if_anthropic_base_url_changed(
    tmp_path: Path,
) -> None:
    """What the help says: the endpoint recorded at `run` wins over ANTHROPIC_BASE_URL."""
    config = write_config(tmp_path, "d.jsonl", b'{"id": "r1", "q": "hi"}\n')
    results = str(tmp_path / "results")
    with Emulator(processing_seconds=0.3).serve() as recorded:
        env = {"ANTHROPIC_BASE_URL": recorded, "ANTHROPIC_API_KEY": "test"}
        made = CliRunner().invoke(
            cli, ["run", str(config), "--detach", "--results", results], env=env
        )
        assert made.exit_code == 0, made.output
        run_id = made.stdout.strip()

        elsewhere = {**env, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}  # nothing listens
        resumed = CliRunner().invoke(
            cli,
            ["resume", run_id, "--results", results, "-q", "--poll-interval", "0.05"],
            env=elsewhere,
        )

    assert resumed.exit_code == 0, resumed.output
    assert (
        json.loads((tmp_path / "results" / "t" / run_id / "run.json").read_text())["base_url"]
        == recorded
    )
