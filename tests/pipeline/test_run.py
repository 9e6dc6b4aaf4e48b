"""End-to-end runs: config -> ledger -> batches on the emulator -> responses."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

import batchmark
from batchmark.emulator import parse_faults

from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS) * 2 * 2  # rows x variants x models


def test_run_returns_a_response_for_every_cell(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    run = batchmark.run(config, results=tmp_path / "results")

    responses = list(run.responses())
    assert len(responses) == N_CELLS
    assert {r["status"] for r in responses} == {"succeeded"}
    assert run.status.complete and run.status.state == "complete"
    # The echo responder answers with the user's message: the join on custom_id is right.
    for r in responses:
        row = next(x for x in ROWS if x["id"] == r["row_id"])
        assert row["question"] in r["text"]
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0


def test_run_writes_responses_and_summary_files(live: LiveEmulator, tmp_path: Path) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    lines = (run.path / "responses.jsonl").read_text().splitlines()
    assert len(lines) == N_CELLS
    assert {json.loads(line)["custom_id"] for line in lines} == {
        r["custom_id"] for r in run.requests()
    }
    summary = json.loads((run.path / "summary.json").read_text())
    assert sum(c["requests"] for c in summary["cells"]) == N_CELLS
    assert (run.path / "config.yaml").read_text() == (tmp_path / "cfg" / "eval.yaml").read_text()
    assert run.path.parent.name == "arith"


def test_summary_costs_are_computed_from_usage(live: LiveEmulator, tmp_path: Path) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    assert len(run.summary()) == 4  # 2 models x 2 variants
    for cell in run.summary():
        assert cell["input_tokens"] > 0 and cell["output_tokens"] > 0
        price_in, price_out = (1, 5) if cell["model"] == "claude-haiku-4-5" else (3, 15)
        expected = 0.5 * (cell["input_tokens"] * price_in + cell["output_tokens"] * price_out) / 1e6
        assert cell["cost_usd"] == pytest.approx(expected)
        assert cell["cost_standard_usd"] == pytest.approx(2 * expected)


def test_summary_of_an_ended_run_is_read_back_only_while_it_still_holds(
    live: LiveEmulator, tmp_path: Path
) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")
    assert run.summary() == run.summary(fresh=True)

    path = run.path / "summary.json"
    stored = orjson.loads(path.read_bytes())
    stored["cells"][0]["requests"] = 999  # proves where the figure comes from
    path.write_bytes(orjson.dumps(stored))
    assert run.summary()[0]["requests"] == 999

    stored["states"] = {"done": 1}  # no longer what the ledger holds: recomputed
    path.write_bytes(orjson.dumps(stored))
    assert run.summary() == run.summary(fresh=True)
    assert run.summary()[0]["requests"] != 999
    path.write_text("not json")
    assert run.summary() == run.summary(fresh=True)


def test_responses_df_has_one_row_per_request(live: LiveEmulator, tmp_path: Path) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    df = run.responses_df()
    assert len(df) == N_CELLS
    assert {"custom_id", "variant", "model_key", "row_id", "text", "input_tokens"} <= set(df)


def test_rerun_of_unchanged_config_submits_nothing(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    first = batchmark.run(config, results=tmp_path / "results")
    batches_before = len(live.batch_list())

    second = batchmark.run(config, results=tmp_path / "results")

    assert len(live.batch_list()) == batches_before
    texts = [r["text"] for r in second.responses()]
    assert len(texts) == N_CELLS and texts == [r["text"] for r in first.responses()]
    assert [r["cached"] for r in second.responses()] == [True] * N_CELLS
    first_cost = {(c["model"], c["variant"]): c["cost_usd"] for c in first.summary()}
    assert len(second.summary()) == len(first_cost) == 4  # 2 models x 2 variants
    for cell in second.summary():
        assert cell["cost_usd"] == 0
        assert cell["reused_cost_usd"] == pytest.approx(first_cost[cell["model"], cell["variant"]])


def test_editing_one_variant_resubmits_only_its_cells(live: LiveEmulator, tmp_path: Path) -> None:
    batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")
    sent_before = len(live.submitted())

    edited = write_config(
        tmp_path / "cfg",
        prompts=[
            {"name": "plain", "user": "{{ question }}"},
            {"name": "terse", "system": "Answer with ONE number.", "user": "Q: {{ question }}"},
        ],
    )
    run = batchmark.run(edited, results=tmp_path / "results")

    resent = live.submitted()[sent_before:]
    assert len(resent) == len(ROWS) * 2
    variants = {r["custom_id"]: r["variant"] for r in run.requests()}
    assert {variants[c] for c in resent} == {"terse"}


def test_emulated_responses_are_never_reused_against_another_endpoint(
    live: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", emulator={"responder": "echo"})
    batchmark.run(config, results=tmp_path / "results", emulate=True)

    run = batchmark.run(config, results=tmp_path / "results")

    assert len(live.submitted()) == N_CELLS
    assert not any(r["cached"] for r in run.responses())


def test_no_cache_submits_everything_again(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    batchmark.run(config, results=tmp_path / "results")
    batchmark.run(config, results=tmp_path / "results", use_cache=False)

    assert Counter(Counter(live.submitted()).values()) == Counter({2: N_CELLS})


def test_chunking_respects_max_requests(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", batch={"max_requests": 5, "max_in_flight": 2})
    run = batchmark.run(config, results=tmp_path / "results")

    sizes = sorted(b.request_counts.succeeded for b in live.batch_list())
    # Batches created together differ in size: caps 5, 4, 5, 4, ... (see _packing).
    assert sizes == sorted([5, 4, 5, 4, 5, 1]) and sum(sizes) == N_CELLS
    assert run.status.complete


def test_chunking_respects_max_bytes(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", batch={"max_bytes": 1500})
    run = batchmark.run(config, results=tmp_path / "results")

    by_batch: dict[str, list] = {}
    for r in run.requests():
        by_batch.setdefault(r["batch_id"], []).append(
            {"custom_id": r["custom_id"], "params": r["params"]}
        )
    bodies = [orjson.dumps({"requests": reqs}) for reqs in by_batch.values()]
    assert len(bodies) == len(live.batch_list()) > 1
    assert max(len(b) for b in bodies) <= 1500
    assert run.status.done == N_CELLS


def test_retryable_errors_are_resubmitted_with_the_same_custom_ids(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults({"errored": 0.4})
    config = write_config(tmp_path / "cfg", batch={"max_attempts": 6})
    run = batchmark.run(config, results=tmp_path / "results")

    responses = list(run.responses())
    assert {r["status"] for r in responses} == {"succeeded"}
    retried = [r for r in responses if r["attempts"] > 1]
    assert retried, "with 40% errored some requests need a second attempt"
    counts = Counter(live.submitted())
    assert set(counts) == {r["custom_id"] for r in responses}
    assert all(counts[r["custom_id"]] == r["attempts"] for r in responses)
    # every attempt but the last of each request was an injected error
    assert live.emu.fault_state.fired == {"errored": sum(r["attempts"] - 1 for r in responses)}


def test_invalid_request_errors_are_final(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults({"errored_fatal": 1.0})
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    responses = list(run.responses())
    assert {r["status"] for r in responses} == {"errored"}
    assert {r["error_type"] for r in responses} == {"invalid_request_error"}
    assert {r["attempts"] for r in responses} == {1}
    assert run.status.failed == N_CELLS
    assert live.emu.fault_state.fired == {"errored_fatal": N_CELLS}


def test_requests_failing_every_attempt_end_as_explicit_failures(
    live: LiveEmulator, tmp_path: Path
) -> None:
    live.emu.faults = parse_faults({"errored": 1.0})
    config = write_config(tmp_path / "cfg", batch={"max_attempts": 2})
    run = batchmark.run(config, results=tmp_path / "results")

    responses = list(run.responses())
    assert len(responses) == N_CELLS
    assert {(r["status"], r["attempts"]) for r in responses} == {("errored", 2)}
    assert sum(c["errored"] for c in run.summary()) == N_CELLS
    assert live.emu.fault_state.fired == {"errored": 2 * N_CELLS}


def test_expired_requests_are_retried(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults({"expired": 0.3})
    config = write_config(tmp_path / "cfg", batch={"max_attempts": 10})
    run = batchmark.run(config, results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert any(r["attempts"] > 1 for r in run.responses())
    expired = sum(r["attempts"] - 1 for r in run.responses())
    assert live.emu.fault_state.fired == {"expired": expired}


def test_a_results_stream_cut_midway_is_collected_again(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults({"drop_results": 0.5})
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    assert run.status.done == N_CELLS
    assert Counter(live.submitted()) == Counter({r["custom_id"]: 1 for r in run.requests()})
    assert live.emu.fault_state.fired["drop_results"] >= 1


def test_http_errors_are_recovered_by_sdk_retries(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults(
        {"http_429": 0.2, "http_529": 0.2, "http_500": 0.2, "retry_after_ms": 10}
    )
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    assert run.status.done == N_CELLS
    fired = live.emu.fault_state.fired
    assert set(fired) == {"http_429", "http_529", "http_500"}, fired


def test_transient_404_after_create_is_waited_out(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.faults = parse_faults({"not_found_after_create": 2})
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")

    assert run.status.done == N_CELLS
    # each batch answered 404 twice, and none was written off and sent again
    batches = len(live.batch_list())
    assert live.emu.fault_state.fired == {"not_found_after_create": 2 * batches}
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})


def test_detach_then_resume_finishes_the_run(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.processing_seconds = 0.3
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, detach=True)
    assert run.status.in_flight == N_CELLS
    assert not (run.path / "responses.jsonl").exists()

    resumed = batchmark.resume(run.id, results=results)

    assert resumed.status.complete
    assert len(list(resumed.responses())) == N_CELLS
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})


def test_cancel_ends_in_flight_requests_as_canceled(live: LiveEmulator, tmp_path: Path) -> None:
    live.emu.processing_seconds = 30.0
    results = tmp_path / "results"
    run = batchmark.run(write_config(tmp_path / "cfg"), results=results, detach=True)

    canceled = batchmark.cancel(run.id, results=results)
    assert len(canceled) == len(live.batch_list())
    resumed = batchmark.resume(run.path, results=results)

    assert resumed.status.state == "canceled"
    assert resumed.status.complete
    responses = list(resumed.responses())
    assert len(responses) == N_CELLS
    statuses = Counter(r["status"] for r in responses)
    # 30 s batches: requests that finished before the cancel keep their answer, most do not
    assert set(statuses) <= {"canceled", "succeeded"} and statuses["canceled"] > N_CELLS // 2
    server = live.batch_list()
    assert sum(b.request_counts.canceled for b in server) == statuses["canceled"]
    assert sum(b.request_counts.succeeded for b in server) == statuses["succeeded"]
    assert Counter(Counter(live.submitted()).values()) == Counter({1: N_CELLS})  # none resent


def test_run_without_key_and_without_emulate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(batchmark.CredentialsError, match="ANTHROPIC_API_KEY"):
        batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_emulate_runs_offline_with_the_configs_responder(tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", emulator={"responder": "echo"})
    run = batchmark.run(config, results=tmp_path / "results", emulate=True)

    assert run.status.done == N_CELLS


def test_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(batchmark.RunNotFound, match="no run 'nope'"):
        batchmark.resume("nope", results=tmp_path / "results")


def test_a_render_error_leaves_no_run_folder(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", prompts=[{"name": "bad", "user": "{{ nope }}"}])
    with pytest.raises(batchmark.RenderError, match="nope"):
        batchmark.run(config, results=tmp_path / "results")

    assert list((tmp_path / "results").glob("arith/*")) == []
    assert live.batch_list() == []


def test_a_run_over_its_budget_sends_nothing(live: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    with pytest.raises(batchmark.BudgetExceeded, match=r"over the budget of \$0\.0001"):
        batchmark.run(config, results=tmp_path / "results", max_cost=0.0001)

    assert live.batch_list() == []
    assert not list((tmp_path / "results").glob("arith/*"))


def test_a_run_within_its_budget_runs(live: LiveEmulator, tmp_path: Path) -> None:
    run = batchmark.run(write_config(tmp_path / "cfg"), results=tmp_path / "results", max_cost=1.0)

    assert run.status.done == N_CELLS


def test_the_api_key_is_never_written_to_results(
    live: LiveEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-test-DO-NOT-STORE-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    config = write_config(tmp_path / "cfg", scorers=[{"includes": {"target": "{{ answer }}"}}])
    run = batchmark.run(config, results=tmp_path / "results")
    batchmark.save_baseline(run, "keycheck", results=tmp_path / "results")

    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
