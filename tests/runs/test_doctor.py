"""``batchmark doctor RUN``: a run's files checked, a damaged ledger's batch ids salvaged,
the API key's batches listed, the next step printed (issue 13: no batch orphaned)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark
from batchmark.cli import cli
from batchmark.emulator import Emulator
from batchmark.runs._doctor import diagnose

from ..pipeline.support import LiveEmulator, write_config

BATCH = {"max_requests": 8}  # 24 requests in a few batches


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveEmulator]:
    """An emulator on loopback; ANTHROPIC_BASE_URL and a test key point the SDK at it."""
    emu = Emulator(processing_seconds=0.0, seed=7)
    with emu.serve() as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield LiveEmulator(emu, base_url)


@pytest.fixture
def live_run(live: LiveEmulator, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A finished run against the live emulator: (results root, run folder)."""
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg", batch=BATCH), results=results)
    assert run.status.complete
    yield results, run.path


def doctor(results: Path, folder: Path, *args: str):
    return CliRunner().invoke(
        cli, ["doctor", folder.name, "--results", str(results), *args], terminal_width=250
    )


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "junk":  # the header and the first pages overwritten
        path.write_bytes(b"garbage!" * 1000 + data[8000:])
    else:
        path.write_bytes(data[: len(data) // 2])


def test_a_sound_run_is_healthy_and_its_batches_are_the_keys(
    live: LiveEmulator, live_run: tuple[Path, Path]
) -> None:
    results, folder = live_run

    shown = doctor(results, folder)
    found = diagnose(folder, results=results)

    assert shown.exit_code == 0, shown.output
    assert [c.name for c in found.checks] == ["run.json", "config.yaml", "ledger", "cache"]
    assert all(c.ok for c in found.checks)
    ids = {b.id for b in live.batch_list()}
    assert {b.batch_id for b in found.salvaged} == ids
    assert found.key_batches is not None
    assert {b.batch_id for b in found.key_batches} == ids
    assert all(b.in_ledger for b in found.key_batches)
    assert sum(b.requests for b in found.key_batches) == 24
    assert "nothing to repair" in shown.output


@pytest.mark.parametrize("how", ["junk", "half"])
def test_a_damaged_ledger_gives_back_every_batch_id_and_says_what_to_do(
    live: LiveEmulator, live_run: tuple[Path, Path], how: str
) -> None:
    results, folder = live_run
    ledger = folder / "ledger.sqlite"
    damage(ledger, how)

    shown = doctor(results, folder)
    found = diagnose(folder, results=results)

    assert shown.exit_code == 2, shown.output
    assert not next(c for c in found.checks if c.name == "ledger").ok
    assert "DAMAGED" in shown.output
    ids = {b.id for b in live.batch_list()}
    assert {b.batch_id for b in found.salvaged} == ids  # none orphaned
    assert found.key_batches is not None and {b.batch_id for b in found.key_batches} == ids
    for batch_id in ids:
        assert batch_id in shown.output
    assert any(f"`mv {ledger} {ledger}.bad`" in step for step in found.next_steps)
    assert "next: the ledger cannot be trusted" in shown.output


def test_a_ledger_without_its_header_is_scanned_for_batch_ids(
    live: LiveEmulator, live_run: tuple[Path, Path]
) -> None:
    results, folder = live_run
    damage(folder / "ledger.sqlite", "junk")

    found = diagnose(folder, results=results, list_batches=False)

    assert {b.found_in for b in found.salvaged} == {"bytes"}  # SQLite cannot open it
    assert {b.batch_id for b in found.salvaged} == {b.id for b in live.batch_list()}
    assert found.key_batches is None


def test_a_damaged_cache_is_reported_with_no_cache(live_run: tuple[Path, Path]) -> None:
    results, folder = live_run
    (cache,) = (results / ".cache").glob("responses-*.sqlite")
    damage(cache, "junk")

    shown = doctor(results, folder, "--no-list")

    assert shown.exit_code == 2
    assert "cache" in shown.output and "DAMAGED" in shown.output
    assert "--no-cache" in shown.output


def test_json_output_for_programs(live_run: tuple[Path, Path]) -> None:
    results, folder = live_run

    shown = doctor(results, folder, "--format", "json")

    data = json.loads(shown.stdout)
    assert data["healthy"] is True and data["run_id"] == folder.name
    assert len(data["salvaged_batches"]) == len(data["key_batches"]) >= 2


def test_without_an_api_key_the_files_are_still_checked(
    live_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    results, folder = live_run
    monkeypatch.delenv("ANTHROPIC_API_KEY")

    shown = doctor(results, folder)

    assert shown.exit_code == 0, shown.output
    assert "not listed: no API key" in shown.output


def test_an_emulated_run_has_no_batches_left_to_list(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, emulate=True)

    found = diagnose(run.path, results=results)

    assert found.healthy and found.key_batches is None
    assert "in-process emulator" in found.key_batches_note
