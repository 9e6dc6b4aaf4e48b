"""Responders: echo, scripted rules (YAML and JSONL), Python callables, model routing."""

from __future__ import annotations

import textwrap

import pytest

from batchmark import ConfigError
from batchmark.emulator import Reply, parse_responder

from .support import read_results

RULES_YAML = textwrap.dedent(
    r"""
    - model: "claude-haiku-*"
      text: "haiku says hi"
    - system: "grader"
      tool_use: {name: grade, input: {score: 5}}
    - user: 'capital of (\w+)'
      text: 'The capital of \1 is unknown.'
    - text: "default answer"
    """
)


def _ask(params_model: str = "claude-sonnet-4-6", user: str = "hi", system: str | None = None):
    params = {
        "model": params_model,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": user}],
    }
    if system is not None:
        params["system"] = system
    return params


def test_echo_returns_the_last_user_text_verbatim():
    reply = parse_responder("echo")(_ask(user="same in, same out"))
    assert reply == Reply(({"type": "text", "text": "same in, same out"},))


@pytest.fixture
def rules_yaml(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    return path


def test_scripted_yaml_first_matching_rule_wins(rules_yaml):
    responder = parse_responder(f"scripted:{rules_yaml}")
    assert responder(_ask("claude-haiku-4-5")).content[0]["text"] == "haiku says hi"
    tool = responder(_ask(system="You are a grader"))
    assert tool.content[0] == {"type": "tool_use", "name": "grade", "input": {"score": 5}}
    capital = responder(_ask(user="What is the capital of France?"))
    assert capital.content[0]["text"] == "The capital of France is unknown."
    assert responder(_ask(user="anything")).content[0]["text"] == "default answer"


def test_scripted_jsonl_without_a_default_falls_back_to_echo(tmp_path):
    path = tmp_path / "rules.jsonl"
    path.write_text('{"user": "^ping$", "text": "pong"}\n\n{"model": "x-*", "text": "x"}\n')
    responder = parse_responder(f"scripted:{path}")
    assert responder(_ask(user="ping")).content[0]["text"] == "pong"
    assert responder(_ask(user="other")).content[0]["text"] == "other"


def test_scripted_responder_through_a_batch(served, rules_yaml):
    with served(responder=f"scripted:{rules_yaml}") as (_, client):
        requests = [
            {"custom_id": "h", "params": _ask("claude-haiku-4-5")},
            {"custom_id": "g", "params": _ask(system="grader")},
        ]
        batch = client.messages.batches.create(requests=requests)
        lines = {line.custom_id: line.result.message for line in read_results(client, batch.id)}
    assert lines["h"].content[0].text == "haiku says hi"
    assert lines["g"].stop_reason == "tool_use"
    assert lines["g"].content[0].input == {"score": 5}


RESPONDER_MODULE = textwrap.dedent(
    """
    def answer(params):
        return {"content": "n=" + str(len(params["messages"])), "stop_reason": "end_turn"}

    def blocks(params):
        return [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]

    def broken(params):
        raise RuntimeError("boom")

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "my_responders.py"
    path.write_text(RESPONDER_MODULE)
    return path


def test_python_responder_from_a_file_and_from_a_module(module_file, monkeypatch):
    assert parse_responder(f"python:{module_file}:answer")(_ask()).content[0]["text"] == "n=1"
    monkeypatch.syspath_prepend(str(module_file.parent))
    blocks = parse_responder("python:my_responders:blocks")(_ask()).content
    assert [b["text"] for b in blocks] == ["a", "b"]


def test_python_callable_responder_through_messages(served):
    with served(responder=lambda params: "constant") as (_, client):
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[_ask()["messages"][0]]
        )
    assert message.content[0].text == "constant"


def test_a_failing_responder_errors_the_request_with_api_error(served, module_file):
    with served(responder=f"python:{module_file}:broken") as (_, client):
        batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": _ask()}])
        (line,) = read_results(client, batch.id)
    assert line.result.type == "errored"
    assert line.result.error.error.type == "api_error"
    assert "boom" in line.result.error.error.message


def test_model_globs_route_to_responders(rules_yaml):
    responder = parse_responder({"claude-opus-*": "echo", "*": f"scripted:{rules_yaml}"})
    assert responder(_ask("claude-opus-4-8", user="as is")).content[0]["text"] == "as is"
    assert responder(_ask("claude-sonnet-4-6")).content[0]["text"] == "default answer"


def test_a_yaml_file_of_model_globs_resolves_paths_next_to_it(tmp_path, rules_yaml):
    routes = tmp_path / "models.yaml"
    routes.write_text(f'"claude-haiku-*": "scripted:{rules_yaml.name}"\n"*": echo\n')
    responder = parse_responder(str(routes))
    assert responder(_ask("claude-haiku-4-5")).content[0]["text"] == "haiku says hi"
    assert responder(_ask("claude-opus-4-8", user="e")).content[0]["text"] == "e"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nonsense", "unknown responder 'nonsense'"),
        ("scripted:/no/such/file.yaml", "/no/such/file.yaml"),
        ("python:no_such_module_xyz:f", "no_such_module_xyz"),
        ("python:json", "python:MODULE:FUNC"),
    ],
)
def test_bad_responder_specs_raise_config_error(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_responder(spec)


def test_bad_rules_name_the_file_and_the_rule(tmp_path, module_file):
    path = tmp_path / "bad.yaml"
    path.write_text("- user: '('\n  text: x\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*rules.0.user"):
        parse_responder(f"scripted:{path}")
    path.write_text("- user: x\n")
    with pytest.raises(ConfigError, match="exactly one of 'text' or 'tool_use'"):
        parse_responder(f"scripted:{path}")
    with pytest.raises(ConfigError, match="not callable"):
        parse_responder(f"python:{module_file}:NOT_CALLABLE")
