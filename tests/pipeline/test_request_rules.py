"""Every request rule twice: ``batchmark validate`` refuses the config naming the field
and its YAML line, and the emulator refuses the same request (sent by the real SDK,
synchronously and inside a batch) with the same error type and message.

What ``validate`` and ``--emulate`` accept, the real API accepts (issue 15): both sides
call ``config._rules.check_request`` with the model catalog, so a rule added there is
enforced in both places; these tests keep them agreeing on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from click.testing import CliRunner

import batchmark.cli._validate  # noqa: F401  (registers the command on ``cli``)
from batchmark._errors import ConfigError
from batchmark.cli import cli
from batchmark.config._schema import load_config
from batchmark.emulator import Emulator
from batchmark.runs._grid import expand

from .support import LiveEmulator

MESSAGES = [{"role": "user", "content": "{{ q }}"}]
TOOLS = [{"name": "grade", "input_schema": {"type": "object"}}]


@dataclass
class Case:
    """A config with one problem, where ``validate`` must point, and the API's answer."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    where: str = ""
    """The config field ``validate`` names (``models[0].params.top_p``)."""
    line_of: str = ""
    """Text whose (first) line in the YAML is the line ``validate`` names..."""
    line_offset: int = 0
    """... plus this many."""
    message: str = ""
    """The start of the API's ``error.message`` (also in validate's output)."""
    status: int = 400
    messages: list[dict[str, str]] = field(default_factory=lambda: list(MESSAGES))
    api_version: str | None = None
    catalog: dict[str, Any] | None = None

    @property
    def error_type(self) -> str:
        return "not_found_error" if self.status == 404 else "invalid_request_error"


CASES = {
    "unknown model": Case(
        "claude-nonexistent-9",
        where="models[0].model",
        line_of="model: claude-nonexistent-9",
        message="model: claude-nonexistent-9",
        status=404,
    ),
    "retired model": Case(
        "claude-opus-4-1-20250805",
        where="models[0].model",
        line_of="model: claude-opus-4-1",
        message="model: claude-opus-4-1-20250805",
        status=404,
    ),
    "unknown top-level key": Case(
        "claude-haiku-4-5",
        {"stop_sequence": ["##"]},
        where="models[0].params.stop_sequence",
        line_of="stop_sequence:",
        message="stop_sequence: Extra inputs are not permitted",
    ),
    "temperature on a model without sampling (2023-06-01)": Case(
        "claude-opus-4-8",
        {"temperature": 0.2},
        where="models[0].params.temperature",
        line_of="temperature:",
        message="`temperature` is deprecated for this model.",
        api_version="2023-06-01",
    ),
    "temperature with top_p (2023-06-01)": Case(
        "claude-haiku-4-5",
        {"temperature": 0.2, "top_p": 0.9},
        where="models[0].params.top_p",
        line_of="top_p:",
        message="`temperature` and `top_p` cannot both be specified for this model.",
        api_version="2023-06-01",
    ),
    "thinking with a forced tool_choice": Case(
        "claude-sonnet-4-6",
        {"thinking": {"type": "adaptive"}, "tools": TOOLS, "tool_choice": {"type": "any"}},
        where="models[0].params.tool_choice",
        line_of="tool_choice:",
        message="Thinking may not be enabled when tool_choice forces tool use.",
    ),
    "forced tool_choice on a model that refuses it": Case(
        "claude-opus-5-5",
        {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "grade"}},
        where="models[0].params.tool_choice",
        line_of="tool_choice:",
        message="Thinking may not be enabled when tool_choice forces tool use.",
    ),
    "budget_tokens not under max_tokens": Case(
        "claude-haiku-4-5",
        {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}},
        where="models[0].params.thinking.budget_tokens",
        line_of="budget_tokens:",
        message="`max_tokens` must be greater than `thinking.budget_tokens`.",
    ),
    "budget_tokens under 1024": Case(
        "claude-haiku-4-5",
        {"max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 512}},
        where="models[0].params.thinking.budget_tokens",
        line_of="budget_tokens:",
        message="thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    "enabled thinking where only adaptive is taken": Case(
        "claude-opus-4-8",
        {"max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 2048}},
        where="models[0].params.thinking.type",
        line_of="type: enabled",
        message='"thinking.type.enabled" is not supported for this model.',
    ),
    "adaptive thinking where only enabled is taken": Case(
        "claude-haiku-4-5",
        {"thinking": {"type": "adaptive"}},
        where="models[0].params.thinking.type",
        line_of="type: adaptive",
        message='"thinking.type.adaptive" is not supported for this model.',
    ),
    "thinking disabled where it cannot be": Case(
        "claude-opus-5-5",
        {"thinking": {"type": "disabled"}},
        where="models[0].params.thinking.type",
        line_of="type: disabled",
        message='"thinking.type.disabled" is not supported for this model.',
    ),
    "thinking disabled at effort max": Case(
        "claude-opus-5",
        {"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}},
        where="models[0].params.output_config.effort",
        line_of="effort:",
        message="output_config.effort 'max' is not supported when thinking is disabled",
    ),
    "assistant prefill": Case(
        "claude-sonnet-4-6",
        messages=[*MESSAGES, {"role": "assistant", "content": "The answer is"}],
        where="prompts[0].messages[1]",
        line_of="role: assistant",
        message="This model does not support assistant message prefill.",
    ),
    "five cache breakpoints": Case(
        "claude-haiku-4-5",
        {
            "tools": [
                {"name": f"t{i}", "cache_control": {"type": "ephemeral"}, "input_schema": {}}
                for i in range(5)
            ]
        },
        where="models[0].params.tools[4].cache_control",
        line_of="name: t4",
        line_offset=1,  # the line after the tool's name
        message="A maximum of 4 blocks with cache_control may be provided. Found 5.",
    ),
    "max_tokens over the model's cap": Case(
        "claude-haiku-4-5",
        {"max_tokens": 100_000},
        where="models[0].params.max_tokens",
        line_of="max_tokens: 100000",
        message="max_tokens: 100000 > 64000, which is the maximum allowed number of output "
        "tokens for claude-haiku-4-5-20251001",
    ),
    "a config's own model, over its own cap": Case(
        "claude-new-6",
        {"max_tokens": 9000},
        where="models[0].params.max_tokens",
        line_of="max_tokens: 9000",
        message="max_tokens: 9000 > 8192",
        catalog={"claude-new-6": {"like": "claude-sonnet-4-6", "max_output_tokens": 8192}},
    ),
}


def write(folder: Path, case: Case) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.jsonl").write_text(json.dumps({"id": "r1", "q": "What is 2 + 2?"}) + "\n")
    config: dict[str, Any] = {
        "name": "rules",
        "dataset": {"path": "d.jsonl", "id_field": "id"},
        "prompts": [{"name": "p", "messages": case.messages}],
        "models": [{"model": case.model, "params": case.params}],
        "prompt_cache": "off",
    }
    if case.api_version:
        config["api_version"] = case.api_version
    if case.catalog:
        config["catalog"] = case.catalog
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, default_flow_style=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("name", list(CASES))
def test_validate_names_the_field_and_line_and_the_emulator_refuses_alike(
    tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    config = write(tmp_path, case)

    result = CliRunner().invoke(cli, ["validate", str(config)])

    assert result.exit_code == 2, result.output
    line = line_of(config, case.line_of) + case.line_offset
    where = f"{case.where} (line {line}): {case.message}"
    assert where in result.stderr, result.stderr
    assert f"[{case.status} {case.error_type}; request " in result.stderr
    assert "Traceback" not in result.output

    spec = load_config(config)
    params = next(expand(spec)).params
    emu = Emulator(seed=1, catalog=spec.model_catalog())
    headers = {"anthropic-version": case.api_version} if case.api_version else None
    with (
        emu.serve() as url,
        anthropic.Anthropic(
            base_url=url, api_key="k", max_retries=0, default_headers=headers
        ) as client,
    ):
        sdk_error = anthropic.NotFoundError if case.status == 404 else anthropic.BadRequestError
        known = ("model", "max_tokens", "messages")
        with pytest.raises(sdk_error) as caught:
            client.messages.create(
                **{k: params[k] for k in known},
                extra_body={k: v for k, v in params.items() if k not in known},
                timeout=30,  # else the SDK refuses a large max_tokens without streaming
            )
        error = caught.value.body["error"]
        assert (error["type"], caught.value.status_code) == (case.error_type, case.status)
        assert error["message"].startswith(case.message)

        batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
        assert client.messages.batches.retrieve(batch.id).request_counts.errored == 1
        line = next(iter(client.messages.batches.results(batch.id)))
        assert line.result.type == "errored"
        assert line.result.error.error.type == case.error_type
        assert line.result.error.error.message == error["message"]


def test_sampling_parameters_under_the_sdk_api_version_are_refused_at_load_and_by_emulator(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, Case("claude-haiku-4-5", {"temperature": 0.2}))
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    line = line_of(config, "temperature:")
    assert f"models[0].params.temperature (line {line}): `temperature` is rejected" in (
        result.stderr
    )
    emu = Emulator(seed=1)
    params = {"model": "claude-haiku-4-5", "max_tokens": 5, "temperature": 0.2}
    with emu.serve() as url, anthropic.Anthropic(base_url=url, api_key="k") as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"temperature": 0.2},
            )
        assert caught.value.body["error"]["message"].startswith(
            "temperature: Extra inputs are not permitted"
        )
        requests = [{"custom_id": "a", "params": {**params, "messages": MESSAGES}}]
        batch = client.messages.batches.create(requests=requests)
        line = next(iter(client.messages.batches.results(batch.id)))
        assert line.result.error.error.type == "invalid_request_error"


def test_an_unknown_model_gets_a_did_you_mean(tmp_path: Path) -> None:
    config = write(tmp_path, Case("claude-haiku-4.5"))
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert "hint: did you mean `claude-haiku-4-5`" in result.stderr


def test_an_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    config = write(tmp_path, Case("claude-haiku-4-5", {"stop_sequence": ["##"]}))
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert "hint: did you mean `stop_sequences`?" in result.stderr


def test_a_problem_in_many_requests_is_reported_once_with_its_count(tmp_path: Path) -> None:
    config = write(tmp_path, Case("claude-opus-4-8", {"frobnicate": 1}))
    rows = "".join(json.dumps({"id": f"r{i}", "q": f"q{i}"}) + "\n" for i in range(2500))
    (tmp_path / "d.jsonl").write_text(rows)
    config.write_text(config.read_text() + "epochs: 4\n")  # 10,000 requests

    result = CliRunner().invoke(cli, ["validate", str(config)])

    assert result.exit_code == 2
    assert result.stderr.count("frobnicate: Extra inputs are not permitted") == 1
    assert "[400 invalid_request_error; 10,000 requests: model claude-opus-4-8, variant p]" in (
        result.stderr
    )


def test_a_judge_with_an_unknown_model_is_refused_naming_its_line(tmp_path: Path) -> None:
    config = write(tmp_path, Case("claude-haiku-4-5"))
    rubric = "Is {{ response }} right?"
    config.write_text(
        config.read_text()
        + f"scorers:\n  - judge:\n      model: claude-sonet-4-6\n      rubric: '{rubric}'\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2, result.output
    line = line_of(config, "model: claude-sonet-4-6")
    assert f"scorers[0].model (line {line}): model: claude-sonet-4-6 [404" in result.stderr
    assert "variant judge:judge" in result.stderr
    assert "did you mean `claude-sonnet-4-6`" in result.stderr


def test_a_deprecated_model_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    config = write(tmp_path, Case("claude-opus-4-5"))  # deprecated, retires 2027-01-22
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning: models[0].model" in result.stderr
    assert "deprecated and retires on 2027-01-22" in result.stderr


def test_run_refuses_before_anything_is_sent(tmp_path: Path, live: LiveEmulator) -> None:
    from batchmark import run

    config = write(tmp_path / "cfg", CASES["assistant prefill"])
    with pytest.raises(ConfigError) as caught:
        run(config, results=tmp_path / "results")
    assert "prompts[0].messages[1]" in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert live.submitted() == []
    assert not list((tmp_path / "results").rglob("ledger.sqlite"))


def test_validate_online_asks_the_models_api_whether_each_model_exists(
    tmp_path: Path, live: LiveEmulator
) -> None:
    # The config adds a model batchmark's catalog lacks; the endpoint does not serve it.
    case = Case("claude-new-6", catalog={"claude-new-6": {"like": "claude-haiku-4-5"}})
    config = write(tmp_path, case)
    offline = CliRunner().invoke(cli, ["validate", str(config)])
    assert offline.exit_code == 0, offline.output

    online = CliRunner().invoke(cli, ["validate", str(config), "--online"])

    assert online.exit_code == 2, online.output
    line = line_of(config, "model: claude-new-6")
    host = live.base_url.split("//")[1].replace(":", "_")
    assert f"models[0].model (line {line}): model claude-new-6: not found (404 " in (online.stderr)
    assert host in online.stderr
    served = write(tmp_path / "ok", Case("claude-haiku-4-5"))
    assert CliRunner().invoke(cli, ["validate", str(served), "--online"]).exit_code == 0


def test_a_model_the_config_adds_runs_emulated_and_is_priced_by_its_entry(tmp_path: Path) -> None:
    from batchmark import run

    new = {"like": "claude-haiku-4-5", "price": {"input": 100, "output": 100}}
    config = write(tmp_path / "cfg", Case("claude-new-6", catalog={"claude-new-6": new}))

    handle = run(config, emulate=True, results=tmp_path / "results")

    [cell] = handle.summary()
    assert cell["succeeded"] == 1
    tokens = cell["input_tokens"] + cell["output_tokens"]
    assert cell["cost_usd"] == pytest.approx(0.5 * tokens * 100 / 1e6)
