"""Message shaping: max_tokens, stop_sequences, forced tools, usage and the prompt cache."""

from __future__ import annotations

import anthropic
import jsonschema
import pytest
from anthropic.types import Message, MessageTokensCount

from batchmark.config._tokens import approx_tokens

from .support import assert_strict, read_results

LONG = "word " * 400  # 2,000 bytes: 500 tokens by the approximation
TOOL = {
    "name": "grade",
    "description": "Grade an answer",
    "input_schema": {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "verdict": {"enum": ["pass", "fail"]},
            "notes": {"type": "string"},
        },
        "required": ["score", "verdict"],
    },
}


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_message_is_strict_and_echoes_the_model(client):
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=50, messages=_user("hello")
    )
    data = raw.http_response.json()
    assert_strict(data, Message)
    assert raw.http_response.headers["content-type"] == "application/json"
    message = raw.parse()
    assert message.model == "claude-opus-4-8" and message.id.startswith("msg_")
    assert message.content[0].text == "hello" and message.stop_reason == "end_turn"
    assert message.usage.service_tier == "standard"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == approx_tokens("hello")


def test_max_tokens_truncates_the_text(client):
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=_user(LONG))
    assert message.stop_reason == "max_tokens" and message.stop_sequence is None
    assert message.content[0].text == LONG[:40]
    assert message.usage.output_tokens == 10


def test_stop_sequences_cut_at_the_first_occurrence(client):
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=_user("alpha STOP beta END gamma"),
        stop_sequences=["END", "STOP"],
    )
    assert message.content[0].text == "alpha "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"


@pytest.mark.parametrize("choice", [{"type": "tool", "name": "grade"}, {"type": "any"}])
def test_forced_tool_choice_returns_a_schema_valid_tool_use(client, choice):
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=_user("grade this"),
        tools=[TOOL],
        tool_choice=choice,
    )
    assert_strict(raw.http_response.json(), Message)
    message = raw.parse()
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "grade" and block.id.startswith("toolu_")
    jsonschema.validate(block.input, TOOL["input_schema"])


def test_forced_tool_must_exist(client):
    with pytest.raises(anthropic.BadRequestError, match="tool_choice.name"):
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=_user("x"),
            tools=[TOOL],
            tool_choice={"type": "tool", "name": "missing"},
        )


def test_count_tokens_matches_message_input(client):
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", messages=_user(LONG)
    )
    assert_strict(raw.http_response.json(), MessageTokensCount)
    counted = raw.parse().input_tokens
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=_user(LONG))
    assert counted == message.usage.input_tokens


def _cached_system(text: str, ttl: str | None = None) -> list[dict]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": control}]


BIG = "cached context " * 400  # 6,000 bytes: 1,500 tokens


def test_prompt_cache_writes_then_reads(client):
    def ask():
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            system=_cached_system(BIG),
            messages=_user("question"),
        ).usage

    first, second = ask(), ask()
    assert first.cache_creation_input_tokens > 1024 and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert first.input_tokens == second.input_tokens < 10  # only the tokens after the breakpoint


def test_prompt_cache_honours_the_1h_ttl_and_the_clock(client, emu):
    def ask():
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            system=_cached_system(BIG, ttl="1h"),
            messages=_user("q"),
        ).usage

    assert ask().cache_creation.ephemeral_1h_input_tokens > 0
    emu.clock.advance(1800)
    assert ask().cache_read_input_tokens > 0
    emu.clock.advance(3601)
    assert ask().cache_read_input_tokens == 0


def test_prefix_below_the_model_minimum_is_not_cached(client):
    usage = client.messages.create(
        model="claude-haiku-4-5",  # needs 4,096 tokens
        max_tokens=5,
        system=_cached_system(BIG),
        messages=_user("q"),
    ).usage
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert usage.input_tokens > 1500


def test_batch_requests_share_the_cache_in_finish_order(client, emu):
    emu.processing_seconds = 60.0
    params = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": _cached_system(BIG, ttl="1h"),
    }
    requests = [
        {"custom_id": f"c{i}", "params": {**params, "messages": _user(f"q{i}")}} for i in range(5)
    ]
    batch = client.messages.batches.create(requests=requests)
    emu.clock.advance(61)
    client.messages.batches.retrieve(batch.id)
    usages = [line.result.message.usage for line in read_results(client, batch.id)]
    assert all(u.service_tier == "batch" for u in usages)
    assert sum(u.cache_creation.ephemeral_1h_input_tokens > 0 for u in usages) == 1
    assert sum(u.cache_read_input_tokens > 0 for u in usages) == 4


AUTO = {"type": "ephemeral"}


def test_automatic_caching_writes_the_prompt_then_reads_it(client):
    def ask():
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            cache_control=AUTO,
            system=BIG,
            messages=_user("question"),
        ).usage

    first, second = ask(), ask()
    assert first.cache_read_input_tokens == 0 and first.input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert first.cache_creation_input_tokens > 1500  # through the last block
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0


def test_automatic_caching_reads_a_conversation_that_grew_by_a_turn(client):
    turn = [{"role": "user", "content": "first question"}]
    first = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, cache_control=AUTO, system=BIG, messages=turn
    ).usage
    grown = [
        *turn,
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    second = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, cache_control=AUTO, system=BIG, messages=grown
    ).usage
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert 0 < second.cache_creation_input_tokens < 20  # only the new turn is written


def test_automatic_caching_with_an_explicit_breakpoint_shares_the_marked_prefix(client):
    def ask(question: str):
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            cache_control={"type": "ephemeral", "ttl": "5m"},
            system=_cached_system(BIG, ttl="1h"),
            messages=_user(question),
        ).usage

    first, second = ask("one"), ask("two")
    assert first.cache_creation.ephemeral_1h_input_tokens > 1500
    assert 0 < first.cache_creation.ephemeral_5m_input_tokens < 10
    assert second.cache_read_input_tokens == first.cache_creation.ephemeral_1h_input_tokens
    assert second.cache_creation.ephemeral_5m_input_tokens > 0
    assert second.cache_creation.ephemeral_1h_input_tokens == 0


def test_automatic_caching_in_a_batch_counts_like_explicit_breakpoints(client):
    params = {"model": "claude-sonnet-4-6", "max_tokens": 5, "cache_control": {**AUTO, "ttl": "1h"}}
    request = {**params, "system": BIG, "messages": _user("same question")}
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"c{i}", "params": request} for i in range(3)]
    )
    client.messages.batches.retrieve(batch.id)
    usages = [line.result.message.usage for line in read_results(client, batch.id)]
    assert sum(u.cache_creation.ephemeral_1h_input_tokens > 1500 for u in usages) == 1
    assert sum(u.cache_read_input_tokens > 1500 for u in usages) == 2
