"""The token approximation: the emulator's quick input count equals the prefix units'."""

from __future__ import annotations

import random

from batchmark.config._tokens import request_input_tokens, request_prefix_tokens

CC = {"type": "ephemeral"}


def _params(rng: random.Random) -> dict:
    params: dict = {"model": "m", "max_tokens": 5}
    if rng.random() < 0.4:
        tools = [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(3)]
        if rng.random() < 0.5:
            tools[-1] = {**tools[-1], "cache_control": CC}
        params["tools"] = tools
    system = rng.choice([None, "", "Be terse " * rng.randint(1, 50), []])
    if system == []:
        system = [{"type": "text", "text": "s" * rng.randint(1, 90), "cache_control": CC}] * 2
    if system is not None:
        params["system"] = system
    messages = []
    for i in range(rng.randint(1, 5)):
        role = "user" if i % 2 == 0 else "assistant"
        if rng.random() < 0.5:
            content: object = "word " * rng.randint(0, 40)
        else:
            content = [
                rng.choice(
                    [
                        {"type": "text", "text": "é" * rng.randint(1, 30)},
                        {"type": "text", "text": "x", "cache_control": CC},
                        {"type": "tool_use", "id": "a", "name": "t0", "input": {"k": [1, 2]}},
                        {"type": "tool_result", "tool_use_id": "a", "content": "done"},
                        {"type": "thinking", "thinking": "hm" * 9, "signature": "s"},
                    ]
                )
                for _ in range(rng.randint(0, 3))
            ]
        messages.append({"role": role, "content": content})
    params["messages"] = messages
    if rng.random() < 0.3:
        params["cache_control"] = CC  # automatic caching moves a marker, not a token
    return params


def test_the_quick_input_count_is_the_sum_of_the_prefix_units() -> None:
    rng = random.Random(16)
    for _ in range(2000):
        params = _params(rng)
        assert request_input_tokens(params) == sum(t for t, _ in request_prefix_tokens(params))
