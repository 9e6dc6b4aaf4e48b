"""Structured outputs and forced tools in the emulator, through the real SDK: an answer
to a request with an output format is JSON its schema accepts, unless a responder chose
its own text; a malformed format is a 400."""

from __future__ import annotations

import json

import anthropic
import pytest
from jsonschema import Draft202012Validator

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 2},
        "confidence": {"type": "number", "minimum": 0.5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["answer", "confidence", "tags"],
    "additionalProperties": False,
}
USER = [{"role": "user", "content": "What is the capital of France?"}]
FORMAT = {"format": {"type": "json_schema", "schema": SCHEMA}}


def test_an_echoed_answer_becomes_json_valid_against_the_schema(client) -> None:
    message = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=256, messages=USER, output_config=FORMAT
    )
    data = json.loads(message.content[0].text)
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []


def test_without_a_format_the_answer_is_the_echo(client) -> None:
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=USER)
    assert message.content[0].text == USER[0]["content"]


@pytest.mark.parametrize("text", ['{"answer": "Paris"}', "Paris, I think."])
def test_a_responders_own_text_is_kept(served, text: str) -> None:
    with served(responder=lambda params: text) as (_, client):
        message = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=256, messages=USER, output_config=FORMAT
        )
    assert message.content[0].text == text


@pytest.mark.parametrize(
    ("output_config", "message"),
    [
        ({"format": {"type": "json", "schema": SCHEMA}}, "output_config.format.type"),
        ({"format": {"type": "json_schema"}}, "output_config.format.schema"),
    ],
)
def test_a_malformed_format_is_a_400(client, output_config: dict, message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=256, messages=USER, output_config=output_config
        )


def test_a_forced_tool_answers_a_minimal_instance_of_its_schema(client) -> None:
    tool = {"name": "answer", "input_schema": SCHEMA}
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=256,
        messages=USER,
        tools=[tool],
        tool_choice={"type": "tool", "name": "answer"},
    )
    [block] = message.content
    assert block.type == "tool_use" and block.name == "answer"
    assert list(Draft202012Validator(SCHEMA).iter_errors(block.input)) == []


@pytest.mark.parametrize(
    "number",
    [
        {"type": "number", "exclusiveMaximum": 0},
        {"type": "integer", "exclusiveMaximum": 0},
        {"type": "integer", "maximum": -0.5},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.1},
        {"type": "integer", "minimum": 3, "exclusiveMaximum": 4},
        {"type": "number", "minimum": -2, "maximum": -1},
    ],
)
def test_a_bounded_number_in_the_schema_is_answered_within_its_bounds(client, number: dict) -> None:
    """The minimal instance took 0 (or the inclusive bound) and ignored exclusiveMaximum
    and the integer rounding of a bound: an answer the API could never give."""
    schema = {"type": "object", "properties": {"x": number}, "required": ["x"]}
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    data = json.loads(message.content[0].text)
    assert list(Draft202012Validator(schema).iter_errors(data)) == []
