"""``batchmark emulator`` as a real subprocess: base URL on line 1, then it serves."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from batchmark.cli import cli

from .support import sdk_client, small_requests


def test_cli_prints_its_base_url_first_then_serves():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from batchmark.cli import main; main()", "emulator"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--processing-seconds", "0", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with sdk_client(base_url) as client:
            batch = client.messages.batches.create(requests=small_requests(2))
            assert client.messages.batches.retrieve(batch.id).request_counts.succeeded == 2
    finally:
        process.terminate()
        process.communicate(timeout=15)


def test_cli_emulator_command_has_help_for_every_option():
    command = cli.get_command(click.Context(cli), "emulator")
    assert command.help
    assert all(param.help for param in command.params if hasattr(param, "help"))
