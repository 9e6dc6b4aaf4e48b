"""``estimate`` and ``check_budget``: counts and costs before anything is sent."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import pytest
from click.testing import CliRunner

import batchmark
import batchmark.cli._estimate  # noqa: F401  (registers the command on ``cli``)
from batchmark.cli import cli
from batchmark.config._tokens import request_prefix_tokens
from batchmark.emulator import Emulator
from batchmark.runs._endpoint import emulated_name
from batchmark.runs._estimate import BudgetExceeded, Estimate, check_budget, estimate
from batchmark.runs._grid import expand
from batchmark.runs._store import cache_path
from batchmark.scorers import BatchedScorer, _registry, register_scorer, registered_scorers

from ..pipeline.support import write_config

# Three rows whose question is 14 bytes: ceil(14 / 4) = 4 tokens + 3 per message = 7.
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in (1, 2, 3)]
PLAIN = [{"name": "plain", "user": "{{ question }}"}]
JUDGE = {
    "judge": {
        "name": "grader",
        "model": "claude-haiku-4-5",
        "rubric": "Question: {{ question }}\nReference: {{ answer }}\nResponse: {{ response }}",
    }
}
HAIKU_IN, HAIKU_OUT = 1.0, 5.0  # USD per million tokens (batches-api.md §6)
SONNET_IN, SONNET_OUT = 3.0, 15.0


def _spec(folder: Path, **kwargs: Any) -> batchmark.EvalSpec:
    kwargs.setdefault("rows", ROWS)
    kwargs.setdefault("prompts", PLAIN)
    kwargs.setdefault("models", ["claude-haiku-4-5"])
    return batchmark.load_config(write_config(folder, **kwargs))


def _cell(est: Estimate, variant: str) -> Any:
    return next(r for r in est.rows if r.variant == variant)


def test_a_tiny_grid_is_counted_and_priced_by_hand(tmp_path: Path) -> None:
    spec = _spec(tmp_path, batch={"max_requests": 2})
    est = estimate(spec, results=tmp_path / "results")
    assert (est.requests, est.cached, est.batches, est.too_large) == (3, 0, 2, 0)
    assert est.bytes == sum(len(json.dumps(r.entry(), separators=(",", ":"))) for r in expand(spec))
    row = _cell(est, "plain")
    assert (row.input_tokens, row.output_tokens_max) == (3 * 7, 3 * 64)
    assert row.output_tokens == 3 * 64 and row.observed == 0  # no past run: the bound
    # 0.5 x (21 x $1 + 192 x $5) / 1e6
    assert row.cost_max_usd == pytest.approx(0.5 * (21 * HAIKU_IN + 192 * HAIKU_OUT) / 1e6)
    assert est.cost_usd == est.cost_max_usd == row.cost_max_usd
    assert est.token_source == "approximate"


def test_batches_are_the_ones_a_run_submits(tmp_path: Path) -> None:
    models = ["claude-haiku-4-5", "claude-sonnet-4-6"]
    spec = _spec(tmp_path, models=models, scorers=[JUDGE], batch={"max_requests": 4})
    est = estimate(spec, results=tmp_path / "results")
    assert (est.requests, est.batches, est.judge_requests, est.judge_batches) == (6, 2, 6, 2)
    run = batchmark.run(spec, emulate=True, results=tmp_path / "results")
    assert len(run.batches()) == est.batches + est.judge_batches


def test_prompt_cache_counts_one_write_then_reads_and_the_maximum_writes_every_time(
    tmp_path: Path,
) -> None:
    # A static system prompt of 4,400 bytes: 1,100 tokens + 3 = 1,103, over Sonnet's 1,024.
    prompts = [{"name": "long", "system": "x" * 4400, "user": "{{ question }}"}]
    spec = _spec(tmp_path, prompts=prompts, models=["claude-sonnet-4-6"])
    est = estimate(spec, results=tmp_path / "results")
    row = _cell(est, "long")
    assert (row.cache_write_tokens, row.cache_read_tokens) == (1103, 2 * 1103)
    assert row.input_tokens == row.input_tokens_max == 3 * 7 + 3 * 1103
    # Expected: the first request writes the prefix (1h: 2x), the other two read it (0.1x).
    expected = 3 * 7 * SONNET_IN + 1103 * 2 * SONNET_IN + 2206 * 0.1 * SONNET_IN
    assert row.cost_usd == pytest.approx(0.5 * (expected + 192 * SONNET_OUT) / 1e6)
    # Maximum: no cache hit at all, so every request writes the prefix.
    maximum = 3 * 7 * SONNET_IN + 3 * 1103 * 2 * SONNET_IN + 192 * SONNET_OUT
    assert row.cost_max_usd == pytest.approx(0.5 * maximum / 1e6)


def test_estimate_agrees_with_the_emulator_under_automatic_caching(tmp_path: Path) -> None:
    # The grid marks the long static system prompt (1h); a top-level cache_control marks
    # each request's last block (5m). Two epochs: the second of each row reads it all.
    prompts = [{"name": "long", "system": "x" * 4400, "user": "{{ question }}"}]
    params = {"max_tokens": 64, "cache_control": {"type": "ephemeral"}}
    spec = _spec(tmp_path, prompts=prompts, models=["claude-sonnet-4-6"], params=params, epochs=2)
    row = _cell(estimate(spec, results=tmp_path / "results"), "long")
    run = batchmark.run(spec, emulate=True, results=tmp_path / "results")
    [cell] = run.summary()
    assert row.cache_write_tokens == cell["cache_write_tokens"] == 1103 + 3 * 7
    assert row.cache_read_tokens == cell["cache_read_tokens"] == 2 * 1103 + 3 * (1103 + 7)
    assert cell["input_tokens"] == 0  # nothing after the automatic breakpoint
    assert row.input_tokens == cell["cache_write_tokens"] + cell["cache_read_tokens"]
    usages = [r["usage"] for r in run.responses()]
    assert sum(u["cache_creation"]["ephemeral_1h_input_tokens"] for u in usages) == 1103
    assert sum(u["cache_creation"]["ephemeral_5m_input_tokens"] for u in usages) == 3 * 7


def test_after_an_emulated_run_every_request_is_a_cache_hit(tmp_path: Path) -> None:
    results = tmp_path / "results"
    spec = _spec(tmp_path, scorers=[JUDGE])
    batchmark.run(spec, emulate=True, results=results)
    est = estimate(spec, results=results, endpoint=emulated_name(spec))
    assert (est.cached, est.judge_cached) == (3, 3)
    assert (est.batches, est.judge_batches) == (0, 0)
    assert est.cost_usd == est.cost_max_usd == 0.0
    # Another endpoint's cache is never consulted.
    assert estimate(spec, results=results).cached == 0
    # A new variant: only its requests (and their judges) are to be sent.
    prompts = [*PLAIN, {"name": "terse", "user": "Q: {{ question }}"}]
    more = _spec(tmp_path, prompts=prompts, scorers=[JUDGE])
    est = estimate(more, results=results, endpoint=emulated_name(more))
    assert (est.requests, est.cached, est.judge_requests, est.judge_cached) == (6, 3, 6, 3)
    assert (_cell(est, "terse").cached, _cell(est, "plain").cached) == (0, 3)


def test_answers_a_killed_run_left_staged_count_as_cache_hits(tmp_path: Path) -> None:
    """A run killed between staging its answers and merging them: the next estimate (and
    so a budget check) counts them, as the run made next would be served them."""
    results = tmp_path / "results"
    spec = _spec(tmp_path, scorers=[JUDGE])
    batchmark.run(spec, emulate=True, results=results)
    db = sqlite3.connect(cache_path(results, emulated_name(spec)), isolation_level=None)
    db.execute("BEGIN")  # every entry back to staged, as a kill before the merge leaves it
    db.execute("INSERT INTO staged SELECT cache_key, data, created_at FROM responses")
    db.execute("DELETE FROM responses")
    db.execute("COMMIT")
    db.close()

    est = estimate(spec, results=results, endpoint=emulated_name(spec))

    assert (est.cached, est.judge_cached) == (3, 3)
    assert est.cost_max_usd == 0.0
    check_budget(est, 1e-9)  # nothing to pay: no refusal


def test_cli_emulate_reads_the_emulator_cache_and_no_cache_ignores_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    config = write_config(tmp_path, rows=ROWS, prompts=PLAIN, models=["claude-haiku-4-5"])
    batchmark.run(config, emulate=True, results=results)
    args = ["estimate", str(config), "--results", str(results), "--emulate", "--format", "json"]
    cached = CliRunner().invoke(cli, args)
    sent = CliRunner().invoke(cli, [*args, "--no-cache"])
    assert cached.exit_code == sent.exit_code == 0, cached.output + sent.output
    assert json.loads(cached.stdout)["cached"] == 3
    assert json.loads(sent.stdout)["cached"] == 0


def test_expected_output_is_the_mean_of_past_runs_per_model_and_variant(tmp_path: Path) -> None:
    results = tmp_path / "results"
    spec = _spec(tmp_path, models=["claude-haiku-4-5", "claude-sonnet-4-6"], scorers=[JUDGE])
    run = batchmark.run(spec, emulate=True, results=results)
    outputs: dict[str, list[int]] = defaultdict(list)
    for r in run.responses():
        outputs[r["model_key"]].append(r["usage"]["output_tokens"])
    est = estimate(spec, results=results, endpoint=emulated_name(spec), use_cache=False)
    assert sorted(outputs) == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    for model, seen in outputs.items():
        row = next(r for r in est.rows if r.model == model and r.variant == "plain")
        assert row.observed == len(seen) == 3
        assert row.output_tokens == round(sum(seen) / len(seen) * 3)
        assert row.output_tokens_max == 3 * 64
    judge = _cell(est, "judge:grader")
    assert (judge.requests, judge.observed, judge.output_tokens_max) == (6, 6, 6 * 1024)
    assert judge.output_tokens < judge.output_tokens_max
    # The judge quotes the expected response in the estimate, a max_tokens one at most.
    assert judge.input_tokens < judge.input_tokens_max
    assert est.cost_usd is not None and est.cost_max_usd is not None
    assert est.cost_usd < est.cost_max_usd
    # Emulated runs say nothing about the real API's lengths.
    rows = estimate(spec, results=results).rows
    assert [r.observed for r in rows] == [0] * len(est.rows)  # the same rows, none observed


def test_count_tokens_against_the_live_emulator_equals_its_count(tmp_path: Path) -> None:
    spec = _spec(tmp_path, prompts=[*PLAIN, {"name": "sys", "system": "Be brief.", "user": "?"}])
    with Emulator().serve() as url, anthropic.Anthropic(base_url=url, api_key="t") as client:
        est = estimate(spec, results=tmp_path / "results", client=client)
        counts = [
            client.messages.count_tokens(
                **{k: r.params[k] for k in ("model", "system", "messages") if k in r.params}
            ).input_tokens
            for r in expand(spec)
        ]
    assert est.token_source == "count_tokens"
    assert est.total.input_tokens == sum(counts)


class _DoublingClient:
    """A stand-in API whose tokenizer gives twice the local approximation."""

    def __init__(self) -> None:
        self.calls = 0
        self.messages = SimpleNamespace(count_tokens=self._count)
        self.models = SimpleNamespace(retrieve=lambda model: SimpleNamespace(id=model))

    def _count(self, **prompt: Any) -> Any:
        self.calls += 1
        return SimpleNamespace(input_tokens=2 * sum(t for t, _ in request_prefix_tokens(prompt)))


def test_count_tokens_is_asked_for_a_sample_per_model_and_extrapolated(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "question": "word " * i, "answer": ""} for i in range(1, 7)]
    spec = _spec(tmp_path, rows=rows, models=["claude-haiku-4-5", "claude-sonnet-4-6"])
    approximate = estimate(spec, results=tmp_path / "results")
    client = _DoublingClient()
    counted = estimate(spec, results=tmp_path / "results", client=client, count_tokens_sample=2)  # type: ignore[arg-type]
    assert client.calls == 2 * 2
    assert counted.total.input_tokens == 2 * approximate.total.input_tokens


def test_an_unreachable_count_tokens_falls_back_to_the_approximation(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key="t", max_retries=0) as client:
        est = estimate(spec, results=tmp_path / "results", client=client)
    assert est.token_source == "approximate"
    assert any("count_tokens failed" in note for note in est.notes)
    assert est.total.input_tokens == 21


def test_budget_refusal_names_the_maximum_and_the_budget(tmp_path: Path) -> None:
    est = estimate(_spec(tmp_path), results=tmp_path / "results")
    assert est.cost_max_usd is not None
    check_budget(est, est.cost_max_usd)  # a budget equal to the maximum holds
    with pytest.raises(BudgetExceeded) as err:
        check_budget(est, 0.0001)
    message = str(err.value)
    assert "maximum cost $0.0005" in message and "budget of $0.0001" in message
    assert "--max-cost" in message and "nothing was sent" in message


def test_a_model_without_a_price_has_no_cost_and_cannot_pass_a_budget(tmp_path: Path) -> None:
    est = estimate(_spec(tmp_path, models=["my-model"]), results=tmp_path / "results")
    assert est.cost_usd is None and est.cost_max_usd is None
    assert any("no price for my-model" in note for note in est.notes)
    with pytest.raises(BudgetExceeded, match="no price for my-model"):
        check_budget(est, 100.0)
    spec = _spec(tmp_path, models=["my-model"], pricing={"my-": {"input": 1, "output": 5}})
    priced = estimate(spec, results=tmp_path / "results")
    assert priced.cost_max_usd == pytest.approx(0.5 * (21 + 192 * 5) / 1e6)


def test_cli_json_is_the_estimate_as_data(tmp_path: Path) -> None:
    config = write_config(tmp_path, rows=ROWS, prompts=PLAIN, models=["claude-haiku-4-5"])
    args = ["estimate", str(config), "--results", str(tmp_path / "r"), "--format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["requests"], data["batches"], data["token_source"]) == (3, 1, "approximate")
    assert data["total"]["input_tokens"] == 21
    assert data["cost_max_usd"] == pytest.approx(0.5 * (21 + 192 * 5) / 1e6)


def test_cli_table_shows_rows_totals_and_both_costs(tmp_path: Path) -> None:
    config = write_config(tmp_path, rows=ROWS, prompts=PLAIN, models=["claude-haiku-4-5"])
    result = CliRunner().invoke(cli, ["estimate", str(config), "--results", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "estimate arith (api.anthropic.com)" in out
    assert "claude-haiku-4-5" in out and "total" in out and "max_tokens" in out
    assert "3 requests" in out and "1 batch to send" in out
    assert "expected $0.0005, at most $0.0005" in out
    assert "input tokens approximated locally" in out


def test_cli_counts_tokens_when_a_base_url_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, rows=ROWS, prompts=PLAIN, models=["claude-haiku-4-5"])
    args = ["estimate", str(config), "--results", str(tmp_path / "r"), "--format", "json"]
    with Emulator().serve() as url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        counted = CliRunner().invoke(cli, args)
        approximated = CliRunner().invoke(cli, [*args, "--no-count-tokens"])
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.stdout)["token_source"] == "count_tokens"
    assert json.loads(approximated.stdout)["token_source"] == "approximate"


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "eval.yaml").write_text("name: x\n")
    result = CliRunner().invoke(cli, ["estimate", str(tmp_path / "eval.yaml")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:")


class _Repeat(BatchedScorer):
    """A batched scorer of its own, with no ``model`` option: it asks sonnet."""

    type_name = "repeat_it"

    def build_request(self, ctx: Any) -> dict[str, Any]:
        content = [{"role": "user", "content": f"Repeat: {ctx.text}"}]
        return {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": content}

    def parse(self, ctx: Any, answer: Any) -> Any:  # pragma: no cover - not run here
        raise NotImplementedError


def test_a_batched_scorer_of_its_own_is_priced_at_the_model_it_asks(tmp_path: Path) -> None:
    saved = registered_scorers()
    register_scorer("repeat_it", _Repeat)
    try:
        est = estimate(_spec(tmp_path, scorers=["repeat_it"]), results=tmp_path / "results")
    finally:
        _registry._REGISTRY.clear()
        _registry._REGISTRY.update(saved)
    assert (est.judge_requests, est.judge_batches) == (3, 1)
    row = _cell(est, "judge:repeat_it")
    assert (row.model, row.output_tokens_max) == ("claude-sonnet-4-6", 3 * 10)


def test_an_estimate_with_an_endpoint_notes_a_model_it_does_not_serve(tmp_path: Path) -> None:
    catalog = {"claude-new-6": {"like": "claude-haiku-4-5"}}
    spec = _spec(tmp_path, models=["claude-new-6", "claude-haiku-4-5"], catalog=catalog)
    emu = Emulator(seed=1)  # batchmark's catalog: no claude-new-6
    with emu.serve() as url, anthropic.Anthropic(base_url=url, api_key="k") as client:
        est = estimate(spec, results=tmp_path / "results", client=client, endpoint="emu")
    assert est.notes[0] == (
        "model claude-new-6: not found (404 not_found_error) at emu; a run would fail its requests"
    )
    assert not any("claude-haiku-4-5" in note for note in est.notes)
    # the config's catalog prices the new model like the one it is like
    assert _cell(est, "plain").cost_usd is not None


def test_the_maximum_cost_of_a_model_with_long_prompt_prices_uses_them(tmp_path: Path) -> None:
    spec = _spec(tmp_path, models=["claude-haiku-5-5"])
    est = estimate(spec, results=tmp_path / "results")
    row = _cell(est, "plain")
    # expected: $0.10 / $0.50; maximum: the >100k-token prices, $0.50 / $2.50
    assert row.cost_usd == pytest.approx(0.5 * (21 * 0.1 + 192 * 0.5) / 1e6)
    assert row.cost_max_usd == pytest.approx(0.5 * (21 * 0.5 + 192 * 2.5) / 1e6)
    assert any("claude-haiku-5-5 bills long prompts" in note for note in est.notes)
