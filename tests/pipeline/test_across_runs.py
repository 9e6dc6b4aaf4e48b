"""Never pay twice across runs: two runs under one results root, a batch of another run
that looks like ours, a batch that answers 404 for long, a restarted emulator.

Each test counts what the emulator received: no custom_id is paid twice, and no batch of
another run is touched.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anthropic
import pytest

import batchmark
from batchmark.emulator import parse_faults

from .support import ROWS, LiveEmulator, write_config

SMALL = {"max_requests": 4, "max_in_flight": 2}
ONE = {"max_requests": 4, "max_in_flight": 1}  # one create at a time: one lost batch
N_CELLS = len(ROWS) * 2 * 2
OTHER_ROWS = [{"id": f"o{i}", "question": f"Other {i}?", "answer": "x"} for i in range(1, 7)]


def _env(base_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key", **extra}


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "batchmark", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _runs(results: Path, eval_name: str) -> list[batchmark.Run]:
    folders = sorted(p for p in results.glob(f"{eval_name}/*") if not p.name.startswith("."))
    return [batchmark.open_run(p) for p in folders]


def _batch_ids(run: batchmark.Run) -> set[str]:
    return {b["batch_id"] for b in run.batches()}


def _statuses(run: batchmark.Run) -> Counter[str]:
    return Counter(r["status"] for r in run.responses())


# --- 1. another run's batch is never adopted, never canceled ----------------------------


def _kill_after_intent(config: Path, results: Path, live: LiveEmulator) -> batchmark.Run:
    """Run ``config`` in a subprocess killed -9 right after its first intent (``open``:
    its create was never sent)."""
    return _kill_at("before_create", config, results, live, intent="open")


def _kill_after_lost_create(
    config: Path, results: Path, live: LiveEmulator
) -> tuple[batchmark.Run, set[str]]:
    """A run killed -9 with a create that may have reached the API (``sending``), whose
    batch then vanished (canceled before anything ran, so unbilled, and deleted): on
    resume, any batch of its size is a candidate, and only its contents can tell whether
    it is this run's. Returns the run and the ids of those unbilled batches."""
    processing, live.emu.processing_seconds = live.emu.processing_seconds, 300.0
    run = _kill_at("after_create", config, results, live, intent="sending")
    live.emu.processing_seconds = processing
    lost: set[str] = set()
    with live.client() as client:
        for batch in client.messages.batches.list():
            lost.add(batch.id)
            client.messages.batches.cancel(batch.id)
            _delete_when_ended(client, batch.id, canceled=4)
    return run, lost


def _delete_when_ended(client: anthropic.Anthropic, batch_id: str, canceled: int = 0) -> None:
    """Wait for ``batch_id`` to end (``canceled`` of its requests canceled), then delete
    it behind its run's back."""
    deadline = time.time() + 30
    while client.messages.batches.retrieve(batch_id).processing_status != "ended":
        assert time.time() < deadline
        time.sleep(0.02)
    assert client.messages.batches.retrieve(batch_id).request_counts.canceled == canceled
    client.messages.batches.delete(batch_id)


def _detached_run_whose_batch_vanishes(
    live: LiveEmulator, tmp_path: Path
) -> tuple[Path, Path, batchmark.Run]:
    """A detached run (lost_after 0.05 s) whose one batch is deleted once it ended:
    ``(config, results root, run)``; its resume reports every request lost."""
    live.emu.processing_seconds = 0.2
    config = write_config(tmp_path / "cfg", batch={"lost_after_seconds": 0.05})
    results = tmp_path / "results"
    run = batchmark.run(config, results=results, detach=True)
    (batch_id,) = _batch_ids(run)
    with live.client() as client:
        _delete_when_ended(client, batch_id)
    return config, results, run


def _billable(live: LiveEmulator, unbilled: set[str]) -> Counter[str]:
    """custom_ids as sent, but for the batches in ``unbilled`` (canceled before any of
    their requests ran: a canceled request is not billed)."""
    return Counter(
        c for sent in live.emu.store.submitted() if sent.id not in unbilled for c in sent.custom_ids
    )


def _kill_at(
    crashpoint: str, config: Path, results: Path, live: LiveEmulator, *, intent: str | None = None
) -> batchmark.Run:
    """Run ``config`` in a subprocess that SIGKILLs itself at ``crashpoint``; with
    ``intent``, the ledger must hold one intent in that state and no batch."""
    proc = _cli(
        "run",
        str(config),
        "--results",
        str(results),
        "-q",
        env=_env(live.base_url, BATCHMARK_CRASHPOINT=crashpoint),
    )
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (run,) = _runs(results, "arith")
    if intent is None:
        return run
    db = sqlite3.connect(run.path / "ledger.sqlite")
    try:
        assert db.execute("SELECT status FROM intents").fetchall() == [(intent,)]
        assert db.execute("SELECT count(*) FROM batches").fetchone() == (0,)
    finally:
        db.close()
    return run


@pytest.mark.parametrize("same_root", [True, False], ids=["same root", "other root"])
def test_resume_never_adopts_nor_cancels_another_runs_look_alike_batch(
    live: LiveEmulator, tmp_path: Path, same_root: bool
) -> None:
    # Run A dies between its intent and its create; run B (another eval, same key, same
    # chunk sizes) then creates batches of the intent's size. Under one results root the
    # shared registry says they are B's; under another root only their contents can tell,
    # once they end: until then A must neither trust nor cancel them.
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    a, unbilled = _kill_after_lost_create(write_config(tmp_path / "a", batch=ONE), results, live)
    # All of B's batches at once (sizes 4, 3, 2, 1, 4, ...), so B submits and returns.
    other_batch = {**SMALL, "max_in_flight": 10}
    other_cfg = write_config(tmp_path / "b", rows=OTHER_ROWS, batch=other_batch, name="other")
    b = batchmark.run(
        other_cfg, results=results if same_root else tmp_path / "results-b", detach=True
    )
    b_ids = _batch_ids(b)
    assert 4 in {x["n_requests"] for x in b.batches()}

    a = batchmark.resume(a.id, results=results, poll_interval=0.02, wait_timeout=0.5)
    skipped: list[str] = []
    batchmark.cancel(a.id, results=results, on_skipped=skipped.extend)

    listed = {x.id: x for x in live.batch_list()}
    assert all(listed[i].processing_status == "in_progress" for i in b_ids), "B was canceled"
    adopted = {x["batch_id"] for x in a.batches() if x["adopted"]}
    if same_root:
        assert not adopted & b_ids
    else:  # adopted (its size fits the lost create), unverified: left alone
        assert adopted & b_ids and set(skipped) == adopted & b_ids

    live.emu.processing_seconds = 0.0
    live.emu.clock.advance(60.0)
    b = batchmark.resume(b.id, results=b.path.parent.parent, poll_interval=0.02)
    a = batchmark.resume(a.id, results=results, poll_interval=0.02)

    assert _statuses(b) == {"succeeded": N_CELLS}
    assert b.status.complete and a.status.complete
    # A: what it sent before the cancel ended as canceled or succeeded, exactly once each;
    # no request of A was answered from B's batches.
    a_ids = {r["custom_id"] for r in a.responses()}
    assert not {r["batch_id"] for r in a.responses()} & b_ids
    paid = Counter(c for c in _billable(live, unbilled).elements() if c in a_ids)
    assert set(paid.values()) <= {1}
    # Every look-alike A adopted turned out B's once read, and was given up untouched.
    foreign = {x["batch_id"] for x in a.batches() if x["status"] == "foreign"}
    assert adopted & b_ids <= foreign <= b_ids
    assert not any(x["adopted"] == 2 for x in a.batches())


def test_a_wrong_adoption_is_undone_and_the_intent_settled_without_loss(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Not canceled this time: A adopts B's look-alike (another results root), learns when
    # it ends that it is not its own, and then sends its own requests, once.
    live.emu.processing_seconds = 0.5
    results = tmp_path / "results"
    a, unbilled = _kill_after_lost_create(write_config(tmp_path / "a", batch=ONE), results, live)
    other_batch = {**SMALL, "max_in_flight": 10}
    other_cfg = write_config(tmp_path / "b", rows=OTHER_ROWS, batch=other_batch, name="other")
    b = batchmark.run(other_cfg, results=tmp_path / "results-b", detach=True)

    a = batchmark.resume(a.id, results=results, poll_interval=0.02)

    assert _statuses(a) == {"succeeded": N_CELLS}
    a_ids = {r["custom_id"] for r in a.responses()}
    assert Counter(c for c in _billable(live, unbilled).elements() if c in a_ids) == Counter(a_ids)
    foreign = {x["batch_id"] for x in a.batches() if x["status"] == "foreign"}
    assert foreign and foreign <= _batch_ids(b)
    b = batchmark.resume(b.id, results=tmp_path / "results-b", poll_interval=0.02)
    assert _statuses(b) == {"succeeded": N_CELLS}


# --- 2. a batch answering 404 for long is never sent again while it may exist ----------


def test_a_batch_that_answers_404_for_long_but_is_listed_is_never_sent_again(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Retrieve answers 404 for 40 polls (the emulator's list still shows the batch), far
    # longer than lost_after: the runner keeps looking, and pays once.
    live.emu.faults = parse_faults({"not_found_after_create": 40})
    config = write_config(
        tmp_path / "cfg", batch={"lost_after_seconds": 0.05, "max_poll_interval": 0.02}
    )
    run = batchmark.run(config, results=tmp_path / "results")

    assert _statuses(run) == {"succeeded": N_CELLS}
    assert Counter(live.submitted()) == Counter(r["custom_id"] for r in run.responses())
    assert len(live.batch_list()) == 1
    assert live.emu.store.get(live.batch_list()[0].id).not_found_left == 0  # the fault fired


# --- 3. two runs of one config at once pay once ------------------------------------------


def test_two_runs_of_the_same_config_at_once_pay_for_each_request_once(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.processing_seconds = 1.0
    config = write_config(tmp_path / "cfg", batch={"max_in_flight": 2})
    results = tmp_path / "results"
    procs = [
        _cli("run", str(config), "--results", str(results), "-q", env=_env(live.base_url))
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    first, second = _runs(results, "arith")
    assert Counter(live.submitted()) == Counter(r["custom_id"] for r in first.responses())
    texts = [
        sorted((r["custom_id"], r["text"]) for r in run.responses()) for run in (first, second)
    ]
    assert texts[0] == texts[1]
    assert _statuses(first) == _statuses(second) == {"succeeded": N_CELLS}


def test_a_run_takes_the_answers_of_a_detached_run_from_its_batch(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # The first run submits and exits (--detach): nobody drives it. The second reads the
    # answers from the first's batch instead of paying again; the first, resumed later,
    # sends nothing either.
    live.emu.processing_seconds = 0.3
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    first = batchmark.run(config, results=results, detach=True)
    sent = Counter(live.submitted())
    assert sum(sent.values()) == N_CELLS

    second = batchmark.run(config, results=results, poll_interval=0.02)
    first = batchmark.resume(first.id, results=results, poll_interval=0.02)

    assert Counter(live.submitted()) == sent
    assert _statuses(second) == _statuses(first) == {"succeeded": N_CELLS}
    assert all(r["cached"] for r in second.responses())


def test_a_killed_runs_unsent_claims_are_taken_over(live: LiveEmulator, tmp_path: Path) -> None:
    # Killed between its intent and its create, the first run holds claims on requests it
    # never sent: the second run must not wait for them forever.
    config = write_config(tmp_path / "cfg", batch=SMALL)
    results = tmp_path / "results"
    _kill_after_intent(config, results, live)

    second = batchmark.run(config, results=results, poll_interval=0.02)

    assert _statuses(second) == {"succeeded": N_CELLS}
    assert Counter(live.submitted()) == Counter(r["custom_id"] for r in second.responses())


def test_no_cache_runs_neither_wait_nor_make_others_wait(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    batchmark.run(config, results=results, detach=True, use_cache=False)
    run = batchmark.run(config, results=results, use_cache=False, poll_interval=0.02)
    assert _statuses(run) == {"succeeded": N_CELLS}
    assert sum(Counter(live.submitted()).values()) == 2 * N_CELLS  # asked to pay again


# --- 4. a restarted emulator ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _emulator(port: int, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchmark", "emulator", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # the base URL: serving
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.mark.parametrize("seed", [None, "5"], ids=["unseeded", "same seed"])
def test_a_restarted_emulator_loses_batches_without_resending_them(
    tmp_path: Path, seed: str | None
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    seed_args = ["--seed", seed] if seed else []
    batch = {**SMALL, "max_in_flight": 10, "lost_after_seconds": 0.2}  # submit all at once
    config = write_config(tmp_path / "cfg", batch=batch)
    results = tmp_path / "results"
    env = _env(url)
    emu = _emulator(port, "--processing-seconds", "60", *seed_args)
    try:
        proc = _cli("run", str(config), "--results", str(results), "--detach", "-q", env=env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        run_id = out.decode().strip()
        before = _batch_ids(batchmark.open_run(run_id, results))
    finally:
        _stop(emu)
    emu = _emulator(port, "--processing-seconds", "0", *seed_args)
    try:
        resume = ["resume", run_id, "--results", str(results), "--poll-interval", "0.02", "-q"]
        proc = _cli(*resume, env=env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 4, err.decode()
        assert "--resend-lost" in err.decode()
        run = batchmark.open_run(run_id, results)
        assert run.status.lost == N_CELLS
        with batchmark_client(url) as client:
            assert list(client.messages.batches.list()) == []  # nothing was re-sent

        proc = _cli(*resume, "--resend-lost", env=env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        with batchmark_client(url) as client:
            new = list(client.messages.batches.list(limit=100))
    finally:
        _stop(emu)
    run = batchmark.open_run(run_id, results)
    assert _statuses(run) == {"succeeded": N_CELLS}
    assert sum(b.request_counts.succeeded for b in new) == N_CELLS  # each once
    recorded = _batch_ids(run)
    assert {b.id for b in new} <= recorded
    # The first life's batches keep their rows (renamed if the new life reused their id).
    assert len(recorded) == len(before) + len(new)
    if seed is None:
        assert before <= recorded and not before & {b.id for b in new}


def batchmark_client(url: str):  # noqa: ANN201
    import anthropic

    return anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0)


# --- over-limit requests are refused before anything is sent -------------------------------


def test_a_request_over_max_bytes_is_refused_before_anything_is_sent(
    live: LiveEmulator, tmp_path: Path
) -> None:
    rows = [*ROWS, {"id": "huge", "question": "x" * 5000, "answer": "0"}]
    config = write_config(tmp_path / "cfg", rows=rows, batch={"max_bytes": 3000})
    with pytest.raises(batchmark.ConfigError, match="huge.*over batch.max_bytes"):
        batchmark.run(config, results=tmp_path / "results")
    assert live.submitted() == []
    assert not list((tmp_path / "results").glob("arith/*"))


def test_lost_requests_are_not_a_success_for_the_library_either(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # The batch vanishes (deleted behind the run's back once it ended): its requests end
    # lost, are not sent again, and a later resume finds nothing more to do on its own.
    config, results, run = _detached_run_whose_batch_vanishes(live, tmp_path)

    run = batchmark.resume(run.id, results=results, poll_interval=0.02)

    assert run.status.complete and run.status.lost == N_CELLS
    assert _statuses(run) == {"lost": N_CELLS}
    assert len(live.submitted()) == N_CELLS


# --- credentials in a URL are never written down -------------------------------------------


def test_credentials_in_the_base_url_reach_no_file(
    live: LiveEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx turns URL user info into Basic auth, which the emulator (like the API)
    # refuses: the run fails at its first create, after its folder and cache were made.
    import anthropic

    secret_url = live.base_url.replace("http://", "http://proxyuser:s3cr3t-t0ken@")
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    results = tmp_path / "results"
    config = write_config(tmp_path / "cfg")
    with pytest.raises(anthropic.AuthenticationError):
        batchmark.run(config, results=results, base_url=secret_url, detach=True)

    (run,) = _runs(results, "arith")
    assert run.info["base_url"].startswith("http://***@127.0.0.1:")
    files = list(results.rglob("*"))
    assert any(p.name.startswith("claims-127.0.0.1_") for p in files)
    for path in files:
        assert "s3cr3t" not in str(path)
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path
    with pytest.raises(batchmark.CredentialsError, match="--base-url"):
        batchmark.resume(run.id, results=results, poll_interval=0.02)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", secret_url)  # the same URL: used again
    with pytest.raises(anthropic.AuthenticationError):
        batchmark.resume(run.id, results=results, poll_interval=0.02)


def test_unseeded_emulators_never_repeat_a_batch_id() -> None:
    from batchmark.emulator import Emulator

    def first_batch_id(seed: int | None) -> str:
        with Emulator(seed=seed).serve() as url, batchmark_client(url) as client:
            request = {
                "custom_id": "a",
                "params": {"model": "claude-haiku-4-5", "max_tokens": 1, "messages": []},
            }
            return client.messages.batches.create(requests=[request]).id

    assert first_batch_id(None) != first_batch_id(None)
    assert first_batch_id(3) == first_batch_id(3)


def test_unseeded_emulators_still_draw_faults_reproducibly() -> None:
    # Ids are salted per process, but draws keyed by a batch id use the id a seeded
    # emulator would have made: the same faults and results order every time.
    from batchmark.emulator import Emulator

    def outcome() -> list[tuple[str, str]]:
        emu = Emulator(faults={"errored": 0.5})
        with emu.serve() as url, batchmark_client(url) as client:
            params = {
                "model": "claude-haiku-4-5",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "x"}],
            }
            batch = client.messages.batches.create(
                requests=[{"custom_id": f"r{i}", "params": params} for i in range(20)]
            )
            return [(r.custom_id, r.result.type) for r in client.messages.batches.results(batch.id)]

    first = outcome()
    assert {kind for _, kind in first} == {"succeeded", "errored"}
    assert outcome() == first


def test_a_results_stream_cut_on_every_attempt_ends_in_one_message_and_exit_3(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults({"drop_results": 1.0})
    config = write_config(tmp_path / "cfg")
    proc = _cli("run", str(config), "--results", str(tmp_path / "results"), env=_env(live.base_url))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err.decode()
    assert "Traceback" not in err.decode()
    assert "broke off" in err.decode() and "batchmark resume" in err.decode()
    assert live.emu.fault_state.fired["drop_results"] >= 8
    (run,) = _runs(tmp_path / "results", "arith")
    live.emu.faults = parse_faults(None)
    run = batchmark.resume(run.id, results=tmp_path / "results", poll_interval=0.02)
    assert _statuses(run) == {"succeeded": N_CELLS}
    assert Counter(live.submitted()) == Counter(r["custom_id"] for r in run.responses())
