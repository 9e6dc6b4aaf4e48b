"""Failures a user can meet end in one message naming the problem and the next command,
with a documented exit code and nothing lost (issue 13, "Every failure a clear message").

Each test drives the real command line in a subprocess (``python -m batchmark``).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
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


# --- read-only folders, full disks, damaged files ---------------------------------------

QUICKSTART = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")


@functools.cache
def _can_unshare() -> bool:
    """Root and ``unshare``: a private mount namespace for a read-only or a tiny disk."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(
    not (sys.platform == "linux" and _can_unshare()), reason="needs root and unshare -m"
)


def in_namespace(setup: str, *args: str, env: dict[str, str] | None = None):
    """``batchmark ARGS`` in a private mount namespace prepared by the shell ``setup``
    (its mounts vanish with the process)."""
    command = [sys.executable, "-m", "batchmark", *args]
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=180,
    )


def readonly(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``batchmark ARGS`` with ``folder`` read-only: a read-only bind mount as root (root
    writes through file modes), file modes otherwise."""
    if os.geteuid() == 0:
        if not _can_unshare():
            pytest.skip("root without unshare -m: no way to make a folder read-only")
        bind = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
        return in_namespace(bind, *args)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    try:
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        return batchmark(*args)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@pytest.fixture
def emulated_run(tmp_path: Path) -> tuple[Path, Path]:
    """The quickstart run with --emulate: (results root, run folder)."""
    results = tmp_path / "results"
    done = CliRunner().invoke(
        cli, ["run", QUICKSTART, "--emulate", "-q", "--results", str(results)]
    )
    assert done.exit_code == 0, done.output
    (folder,) = results.glob("quickstart/*")
    return results, folder


@pytest.mark.parametrize("index", ["no WAL index left", "WAL index left"])
def test_status_and_report_read_a_read_only_results_folder(
    emulated_run: tuple[Path, Path], index: str
) -> None:
    results, folder = emulated_run
    shm = folder / "ledger.sqlite-shm"
    if index == "no WAL index left":  # as a cleanly closed or copied ledger
        wal = folder / "ledger.sqlite-wal"
        assert not wal.exists() or wal.stat().st_size == 0
        wal.unlink(missing_ok=True)
        shm.unlink(missing_ok=True)
    else:
        CliRunner().invoke(cli, ["status", folder.name, "--results", str(results)])
        assert shm.exists()  # a reader leaves it

    every = readonly(results, "status", "--results", str(results))
    one = readonly(results, "status", folder.name, "--results", str(results))
    report = readonly(results, "report", folder.name, "--results", str(results))

    for done in (every, one, report):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert "complete" in every.stdout and folder.name in every.stdout
    assert "128 done" in one.stdout
    assert "exact_match" in report.stdout and "tokens and cost" in report.stdout


def test_writing_into_a_read_only_results_folder_says_check_permissions(
    emulated_run: tuple[Path, Path],
) -> None:
    results, folder = emulated_run

    scored = readonly(results, "score", folder.name, "--results", str(results), "-q")
    made = readonly(results, "run", QUICKSTART, "--emulate", "-q", "--results", str(results))

    for done in (scored, made):
        assert_one_message(done, 2)
        assert "cannot be written" in done.stderr and "check permissions" in done.stderr
    assert f"{folder}/.lock" in scored.stderr
    assert f"{results}/quickstart/." in made.stderr  # the run's folder being made
    assert "run the command again (the run was not created: nothing was sent)" in made.stderr


@needs_unshare
def test_a_full_disk_names_the_file_and_resume_then_finishes_sending_nothing_twice(
    tmp_path: Path,
) -> None:
    """A detached run is resumed on a disk with too little room (a 1 MB tmpfs): one
    message naming the file and the resume; with room again, resume finishes it."""
    emulator = Emulator(seed=5)
    with emulator.serve() as url:
        env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test"}
        source = tmp_path / "source"
        made = batchmark("run", QUICKSTART, "--detach", "--results", str(source), env=env)
        assert made.returncode == 0, made.stderr
        run_id = made.stdout.strip()
        disk = tmp_path / "disk"
        disk.mkdir()
        out = tmp_path / "out"
        out.mkdir()
        results = disk / "results"
        resume = f"{sys.executable} -m batchmark resume {run_id} --results {results} -q"
        script = (
            f"mount -t tmpfs -o size=1m tmpfs {disk} && cp -a {source} {results} && "
            f"{{ dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null; "
            f"truncate -s -300K {disk}/filler; }} && "
            f"{{ {resume} >{out}/full.out 2>{out}/full.err; echo $? >{out}/full.rc; }} && "
            f"rm {disk}/filler && "
            f"{{ {resume} >{out}/room.out 2>{out}/room.err; echo $? >{out}/room.rc; }}"
        )
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", script],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

    full_err = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "2", full_err
    assert full_err.startswith("error: ") and "Traceback" not in full_err
    assert "the disk is full" in full_err or "a disk error" in full_err
    assert f"free space or check permissions, then `batchmark resume {results}/quickstart/" in (
        full_err.replace("\n", " ")
    )
    assert (out / "room.rc").read_text().strip() == "0", (out / "room.err").read_text()
    sent = Counter(emulator.submitted_custom_ids())
    assert len(sent) == 128 and max(sent.values()) == 1  # 64 answers + 64 judges, once each


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "junk":
        path.write_bytes(b"this is not a database" * 200 + data[4400:])
    else:  # truncated to half
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["junk", "half"])
def test_a_damaged_ledger_names_the_file_and_batchmark_doctor(
    emulated_run: tuple[Path, Path], how: str
) -> None:
    results, folder = emulated_run
    _damage(folder / "ledger.sqlite", how)

    shown = [
        batchmark(command, folder.name, "--results", str(results))
        for command in ("report", "resume")
    ]
    if how == "junk":
        shown.append(batchmark("status", folder.name, "--results", str(results)))

    for done in shown:
        assert_one_message(done, 2)
        assert "damaged" in done.stderr
        assert f"`batchmark doctor {folder}`" in done.stderr
    listing = batchmark("status", "--results", str(results))
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    if how == "junk":
        assert "unreadable" in listing.stdout and "batchmark doctor" in listing.stdout


def test_a_damaged_response_cache_names_the_file_and_no_cache(
    emulated_run: tuple[Path, Path],
) -> None:
    results, _ = emulated_run
    (cache,) = (results / ".cache").glob("responses-*.sqlite")
    _damage(cache, "junk")
    args = ["run", QUICKSTART, "--emulate", "-q", "--results", str(results)]

    blocked = batchmark(*args)
    without = batchmark(*args, "--no-cache")

    assert_one_message(blocked, 2)
    assert f"{cache}: the response cache is damaged" in blocked.stderr
    assert "--no-cache" in blocked.stderr and f"`mv {cache} {cache}.bad`" in blocked.stderr
    assert without.returncode == 0, without.stderr


def test_a_damaged_past_run_does_not_block_estimate_or_a_budgeted_run(
    emulated_run: tuple[Path, Path],
) -> None:
    """Past runs only inform the estimate of output lengths: a damaged one is skipped."""
    results, folder = emulated_run
    _damage(folder / "ledger.sqlite", "junk")

    estimated = batchmark("estimate", QUICKSTART, "--emulate", "--results", str(results))
    budgeted = batchmark(
        "run", QUICKSTART, "--emulate", "-q", "--max-cost", "5", "--results", str(results)
    )

    assert estimated.returncode == 0, estimated.stderr
    assert budgeted.returncode == 0, budgeted.stderr
