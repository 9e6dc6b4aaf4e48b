"""A run's settings come from its config snapshot alone; run.json holds its facts.

``resume`` and ``score`` load the snapshot whole; ``cancel``, ``doctor`` and the cost
table read its settings (``Run.settings``) without its dataset or templates, so they
still work once those have moved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import batchmark
from batchmark.runs._doctor import diagnose

from .support import LiveEmulator, write_config

FACTS = {
    "run_id",
    "eval",
    "created_at",
    "config_path",
    "config_hash",
    "base_url",
    "endpoint",
    "emulated",
    "use_cache",
    "ended_at",
}


def test_run_json_holds_the_runs_facts_and_none_of_its_settings(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", api_version="2023-06-01", batch={"max_requests": 5})
    run = batchmark.run(config, results=tmp_path / "results")

    assert set(run.info) == FACTS
    assert run.info["endpoint"] == live.base_url.removeprefix("http://").replace(":", "_")
    settings = run.settings()
    assert settings.api_version == "2023-06-01"
    assert settings.batch.max_requests == 5


def test_cancel_reads_the_snapshot_even_after_the_dataset_and_config_moved(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, detach=True)
    shutil.rmtree(tmp_path / "cfg")  # the dataset and the config file are gone
    info = run.info
    info["settings"] = {"bogus": True}  # what older versions kept here is not read
    run.folder.write_info(info)

    canceled = batchmark.cancel(run.id, results=results)

    assert canceled and len(canceled) == len(live.batch_list())
    assert run.status.state == "canceled"


def test_the_cost_table_prices_models_as_the_snapshot_says(
    live: LiveEmulator, tmp_path: Path
) -> None:
    pricing = {"claude-haiku-4-5": {"input": 100.0, "output": 100.0}}
    run = batchmark.run(
        write_config(tmp_path / "cfg", pricing=pricing), results=tmp_path / "results"
    )
    shutil.rmtree(tmp_path / "cfg")

    for cell in run.summary(fresh=True):
        tokens = cell["input_tokens"] + cell["output_tokens"]
        if cell["model"] == "claude-haiku-4-5":
            assert cell["cost_usd"] == pytest.approx(0.5 * tokens * 100.0 / 1e6)
        else:
            assert cell["cost_usd"] < 0.5 * tokens * 100.0 / 1e6


def test_doctor_reports_a_snapshot_whose_settings_cannot_be_read(
    live: LiveEmulator, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results)
    (run.path / "config.yaml").write_text("batch: {max_requests: 0}\n")

    found = diagnose(run.id, results=results)

    (check,) = [c for c in found.checks if c.name == "config.yaml"]
    assert not check.ok and "batch.max_requests" in check.detail
    assert any("run's own files are damaged" in step for step in found.next_steps)
    assert found.key_batches is not None  # the key's batches are listed all the same
    assert json.dumps(found.as_dict())


def test_an_emulated_run_is_canceled_without_reaching_any_endpoint(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # A run killed mid-way under --emulate leaves batches only its stopped emulator knew
    # (here made on the live emulator, which ANTHROPIC_BASE_URL names: it must hear nothing).
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, detach=True)
    info = run.info
    info.update(emulated=True, endpoint="emulator", base_url=None)
    run.folder.write_info(info)
    sent = len(live.batch_list())

    assert batchmark.cancel(run.id, results=results) == []

    assert run.status.state == "canceled"
    assert len(live.batch_list()) == sent
    assert all(b.processing_status != "canceling" for b in live.batch_list())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_a_run_whose_snapshot_is_gone_is_still_canceled_and_reported_without_a_traceback(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # run.json once held the settings cancel needs: a folder that lost its config.yaml
    # (or whose snapshot no longer parses) must not keep its batches from being canceled.
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, detach=True)
    snapshot = run.path / "config.yaml"
    snapshot.unlink()

    report = _cli("report", run.id, "--results", str(results))
    canceled = _cli("cancel", run.id, "--results", str(results))

    assert report.returncode == 2, report.stderr
    assert report.stderr.startswith(f"error: {snapshot}: ") and "Traceback" not in report.stderr
    assert "`batchmark doctor " in report.stderr
    assert canceled.returncode == 0, canceled.stderr
    assert "Traceback" not in canceled.stderr
    assert run.status.state == "canceled"
    batches = live.batch_list()
    assert batches and all(b.request_counts.canceled for b in batches)  # asked, and done
