"""Thinking in answers: blocks from responders, blocks when a request enables thinking,
their signatures, and the output tokens they cost."""

from __future__ import annotations

import textwrap

import anthropic
import pytest
from anthropic.types import Message, RedactedThinkingBlock, TextBlock, ThinkingBlock

from batchmark.config._models import ModelFacts, ThinkingFacts, default_catalog
from batchmark.config._tokens import approx_tokens
from batchmark.emulator._thinking import thinking_block, thinking_on

from .support import assert_strict, read_results, strict_lines

MODEL = "claude-sonnet-4-6"  # takes enabled (deprecated) and adaptive thinking
THOUGHT = "Two and two make four; the user wants a number."
SIGNED = {"type": "thinking", "thinking": THOUGHT, "signature": "c2lnbmVk"}
REDACTED = {"type": "redacted_thinking", "data": "b3BhcXVl"}
RESPONDERS = textwrap.dedent(
    f"""
    def think(params):
        return [{SIGNED!r}, {{"type": "text", "text": "4"}}]

    def redacted(params):
        return [{REDACTED!r}, {{"type": "text", "text": "4"}}]
    """
)


@pytest.fixture
def responders(tmp_path):
    path = tmp_path / "thinkers.py"
    path.write_text(RESPONDERS)
    return path


def _user(text: str = "What is 2 + 2?") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_a_python_responder_returning_a_thinking_block_is_answered(served, responders):
    with served(responder=f"python:{responders}:think") as (_, client):
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=100, messages=_user()
        )
    assert raw.http_response.status_code == 200  # was a 500: "unusable content block"
    assert_strict(raw.http_response.json(), Message)
    message = raw.parse()
    thinking, text = message.content
    assert isinstance(thinking, ThinkingBlock) and isinstance(text, TextBlock)
    assert (thinking.thinking, thinking.signature, text.text) == (THOUGHT, "c2lnbmVk", "4")
    assert message.usage.output_tokens_details.thinking_tokens == approx_tokens(THOUGHT)
    assert message.usage.output_tokens == approx_tokens(THOUGHT) + approx_tokens("4")


def test_a_python_responder_thinking_block_works_in_a_batch(served, responders):
    with served(responder=f"python:{responders}:think") as (_, client):
        params = {"model": MODEL, "max_tokens": 100, "messages": _user()}
        batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
        strict_lines(client, batch.id)
        (line,) = read_results(client, batch.id)
    assert line.result.type == "succeeded"
    assert [b.type for b in line.result.message.content] == ["thinking", "text"]
    assert line.result.message.usage.service_tier == "batch"


def test_a_redacted_thinking_block_is_passed_through(served, responders):
    with served(responder=f"python:{responders}:redacted") as (_, client):
        message = client.messages.create(model=MODEL, max_tokens=100, messages=_user())
    redacted, text = message.content
    assert isinstance(redacted, RedactedThinkingBlock) and redacted.data == "b3BhcXVl"
    assert text.text == "4" and message.usage.output_tokens_details.thinking_tokens > 0


def test_a_thinking_block_without_a_signature_gets_one(served):
    block = {"type": "thinking", "thinking": THOUGHT}
    with served(responder=lambda params: [block, {"type": "text", "text": "4"}]) as (_, client):
        message = client.messages.create(model=MODEL, max_tokens=100, messages=_user())
    assert message.content[0].signature and message.content[0].thinking == THOUGHT


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}]
)
def test_enabled_thinking_comes_before_the_answer_with_a_signature(client, thinking):
    message = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=thinking, messages=_user()
    )
    block, text = message.content
    assert isinstance(block, ThinkingBlock) and len(block.signature) >= 64
    assert "What is 2 + 2?" in block.thinking  # about the request, deterministically
    assert text.text == "What is 2 + 2?"  # the echo responder's answer, untouched
    usage = message.usage
    assert usage.output_tokens_details.thinking_tokens == approx_tokens(block.thinking)
    assert usage.output_tokens == approx_tokens(block.thinking) + approx_tokens(text.text)


def test_the_same_request_thinks_the_same_thoughts(client):
    def ask():
        return client.messages.create(
            model=MODEL, max_tokens=500, thinking={"type": "adaptive"}, messages=_user()
        ).content[0]

    assert ask() == ask()


@pytest.mark.parametrize("thinking", [None, {"type": "disabled"}])
def test_without_thinking_there_is_no_thinking_block(client, thinking):
    extra = {"thinking": thinking} if thinking else {}
    message = client.messages.create(model=MODEL, max_tokens=100, messages=_user(), **extra)
    assert [b.type for b in message.content] == ["text"]
    assert message.usage.output_tokens_details.thinking_tokens == 0


def test_omitted_display_keeps_the_signature_and_the_cost(client):
    message = client.messages.create(
        model=MODEL,
        max_tokens=500,
        thinking={"type": "adaptive", "display": "omitted"},
        messages=_user(),
    )
    block = message.content[0]
    assert block.thinking == "" and block.signature
    assert message.usage.output_tokens_details.thinking_tokens > 0


def test_budget_tokens_caps_the_thinking():
    params = {"model": MODEL, "messages": _user("long question " * 100)}
    budgeted = {**params, "thinking": {"type": "enabled", "budget_tokens": 10}}
    assert approx_tokens(thinking_block(params)["thinking"]) > 10
    assert approx_tokens(thinking_block(budgeted)["thinking"]) == 10


def test_max_tokens_bounds_thinking_and_answer_together(client):
    message = client.messages.create(
        model=MODEL, max_tokens=8, thinking={"type": "adaptive"}, messages=_user()
    )
    assert [b.type for b in message.content] == ["thinking"]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 8


def test_an_assistant_turn_with_thinking_blocks_is_accepted(client):
    first = client.messages.create(
        model=MODEL, max_tokens=500, thinking={"type": "adaptive"}, messages=_user()
    )
    turns = [
        *_user(),
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    again = client.messages.create(
        model=MODEL, max_tokens=500, thinking={"type": "adaptive"}, messages=turns
    )
    assert again.content[-1].text == "And 3 + 3?"
    alone = client.messages.create(model=MODEL, max_tokens=5, messages=_user("And 3 + 3?"))
    assert again.usage.input_tokens > alone.usage.input_tokens + approx_tokens(
        first.content[0].thinking
    )


def test_between_tools_thinks_only_after_a_tool_result():
    tool_turns = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "sun"}],
        },
    ]
    between = {"model": MODEL, "thinking": {"type": "between_tools"}}
    assert thinking_on({**between, "messages": tool_turns})
    assert not thinking_on({**between, "messages": _user()})
    assert not thinking_on({"model": MODEL, "messages": _user()})  # no model thinks by default yet


@pytest.mark.parametrize(
    ("model", "thinks"),
    [("claude-sonnet-5", True), ("claude-opus-5-5", True), ("claude-haiku-4-5", False)],
)
def test_a_model_that_thinks_by_default_thinks_without_a_thinking_field(client, model, thinks):
    """The model catalog's ``thinking.default`` (adaptive or always): such a model
    answers with a thinking block, shown as its catalog's default display says."""
    message = client.messages.create(model=model, max_tokens=2000, messages=_user())
    kinds = [b.type for b in message.content]
    assert kinds == (["thinking", "text"] if thinks else ["text"])
    if thinks:  # these models omit the text by default; the signature and cost stay
        assert message.content[0].thinking == "" and message.content[0].signature
        assert message.usage.output_tokens_details.thinking_tokens > 0


def test_thinking_defaults_come_from_the_emulators_catalog(served):
    """A model a config adds like one that thinks by default thinks too (in a batch as
    on /v1/messages), and an override of a model's default and display is obeyed: the
    emulator's catalog, not batchmark's shipped one."""
    catalog = default_catalog().with_entries(
        {
            "claude-new-6": ModelFacts(like="claude-sonnet-5"),
            MODEL: ModelFacts(thinking=ThinkingFacts(default="adaptive", display="omitted")),
        }
    )
    with served(catalog=catalog) as (_, client):
        for model in ("claude-new-6", MODEL):
            message = client.messages.create(model=model, max_tokens=2000, messages=_user())
            assert [b.type for b in message.content] == ["thinking", "text"], model
            assert message.content[0].thinking == "" and message.content[0].signature
        params = {"model": "claude-new-6", "max_tokens": 2000, "messages": _user()}
        batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
        [line] = read_results(client, batch.id)
        assert [b.type for b in line.result.message.content] == ["thinking", "text"]


@pytest.mark.parametrize(
    ("thinking", "field"),
    [
        ("yes", "thinking:"),
        ({"type": "sometimes"}, "thinking.type:"),
        ({"type": "enabled"}, "thinking.enabled.budget_tokens:"),
        ({"type": "adaptive", "display": "loud"}, "thinking.display:"),
    ],
)
def test_a_malformed_thinking_field_is_a_400_not_an_answer(client, thinking, field):
    """The API validates ``thinking`` against its config union; the emulator answered 200."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=2000, messages=_user(), thinking=thinking)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith(field)
