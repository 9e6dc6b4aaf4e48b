"""The helpers that keep ingestion fast behave exactly like the plain code they replace."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
import pytest

from batchmark.runs._gc import gc_paused
from batchmark.runs._responses import LazyParams
from batchmark.runs._stored import expand_message, normalize_message
from batchmark.scorers import ExactMatch


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector_as_it_was(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_lazy_params_reads_like_the_parsed_dict() -> None:
    params = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    lazy = LazyParams(orjson.dumps(params))
    assert dict(lazy) == params
    assert lazy["messages"][0]["content"] == "hi"
    assert len(lazy) == 3 and "model" in lazy and lazy.get("system") is None
    with pytest.raises(KeyError):
        lazy["system"]


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": "one block"}],
        [{"type": "text"}],
        [],
        [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "x"}],
        [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
    ],
)
def test_normalize_message_fast_path_agrees_with_the_general_one(content: list) -> None:
    message = {"id": "msg_1", "model": "m", "content": content, "usage": {"input_tokens": 3}}
    stored = normalize_message(message)
    assert "tool_calls" not in stored or stored["tool_calls"]  # defaults are left out
    assert stored["usage"] == {"input_tokens": 3}
    out = expand_message(stored)
    texts = [b.get("text", "") for b in content if b["type"] == "text"]
    assert out["text"] == "".join(texts)
    assert out["thinking"] == ("hmm" if any(b["type"] == "thinking" for b in content) else None)
    assert out["tool_calls"] == [
        {"id": b["id"], "name": b["name"], "input": b["input"]}
        for b in content
        if b["type"] == "tool_use"
    ]
    assert out["usage"]["input_tokens"] == 3 and out["usage"]["output_tokens"] == 0


def test_scorer_private_state_is_read_directly_and_unknown_names_still_fail() -> None:
    scorer = ExactMatch(target="{{ answer }}")
    assert scorer._targets[0].source == "{{ answer }}"
    with pytest.raises(AttributeError):
        scorer._no_such_thing  # noqa: B018
    with pytest.raises(AttributeError):
        scorer.no_such_field  # noqa: B018


def test_expand_message_restores_every_field_and_keeps_full_records_as_they_were() -> None:
    message = {
        "id": "msg_2",
        "model": "m",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "###",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_read_input_tokens": 7,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 4},
            "service_tier": "batch",
        },
    }
    out = expand_message(normalize_message(message))
    assert out == {
        "message_id": "msg_2",
        "response_model": "m",
        "text": "x",
        "tool_calls": [],
        "thinking": None,
        "stop_reason": "stop_sequence",
        "stop_sequence": "###",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 7,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 4},
            "service_tier": "batch",
        },
    }
    assert expand_message(orjson.loads(orjson.dumps(out))) == out  # a full record: unchanged


def test_json_schema_on_prose_leaves_no_reference_cycles() -> None:
    """Scoring runs with the cyclic GC paused: a failing item must not leave cycles."""
    from batchmark.scorers import ScoreContext, build_scorers

    (scorer,) = build_scorers([{"json_schema": {"schema": {"type": "object"}}}], base_dir=Path("."))
    ctx = ScoreContext(
        row={},
        row_id="r1",
        variant="v",
        model_key="m",
        epoch=0,
        request={},
        response={"status": "succeeded", "text": "{ not json, just prose", "tool_calls": []},
    )
    gc.collect()
    with gc_paused():
        for _ in range(50):
            assert scorer.score(ctx).passed is False
        assert gc.collect() == 0
