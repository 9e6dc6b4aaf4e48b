"""The emulator serves the model catalog: the Models API, and the catalog's rules."""

from __future__ import annotations

import datetime as _dt
import random
import time

import anthropic
import pytest
from anthropic.types import ModelInfo

from batchmark.config._models import ModelFacts, default_catalog
from batchmark.config._rules import check_request, first_error
from batchmark.emulator import Emulator
from batchmark.emulator._models import ModelRules

from .support import assert_strict, read_results

HI = [{"role": "user", "content": "hi"}]


def test_models_list_pages_through_the_catalog_newest_first(client: anthropic.Anthropic) -> None:
    first = client.models.list(limit=3)
    assert len(first.data) == 3 and first.has_more
    assert first.first_id == first.data[0].id and first.last_id == first.data[-1].id

    everything = list(client.models.list(limit=3))  # the SDK follows after_id

    ids = [m.id for m in everything]
    assert len(ids) == len(set(ids))
    assert ids[:3] == [m.id for m in first.data]
    released = [m.created_at for m in everything]
    assert released == sorted(released, reverse=True)
    assert {m.lifecycle for m in everything} <= {"active", "deprecated"}
    assert "claude-haiku-4-5-20251001" in ids and "claude-opus-4-1-20250805" not in ids


def test_models_list_goes_back_with_before_id(client: anthropic.Anthropic) -> None:
    ids = [m.id for m in client.models.list(limit=1000)]
    page = client.models.list(before_id=ids[5], limit=2)
    assert [m.id for m in page.data] == ids[3:5]


def test_models_list_shows_retired_models_when_asked(client: anthropic.Anthropic) -> None:
    retired = list(client.models.list(lifecycle=["retired"]))
    assert "claude-opus-4-1-20250805" in [m.id for m in retired]
    assert {m.lifecycle for m in retired} == {"retired"}


def test_a_model_is_retrieved_by_id_or_alias_in_the_sdks_shape(
    client: anthropic.Anthropic,
) -> None:
    info = client.models.retrieve("claude-haiku-4-5")

    assert info.id == "claude-haiku-4-5-20251001"
    assert info.type == "model" and info.display_name == "Claude Haiku 4.5"
    assert info.created_at == _dt.datetime(2025, 10, 15, tzinfo=_dt.UTC)
    assert (info.max_input_tokens, info.max_tokens) == (200_000, 64_000)
    assert info.lifecycle == "active" and info.line == "haiku"
    raw = client.models.with_raw_response.retrieve("claude-opus-4-5").http_response.json()
    assert_strict(raw, ModelInfo)
    assert raw["lifecycle"] == "deprecated" and raw["retires_at"] == "2027-01-22T00:00:00Z"


def test_an_unknown_model_is_a_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("claude-nonexistent-9")
    assert caught.value.body["error"] == {
        "type": "not_found_error",
        "message": "model: claude-nonexistent-9",
    }


def test_a_catalog_given_to_the_emulator_adds_models(served) -> None:
    catalog = default_catalog().with_entries(
        {"claude-new-6": ModelFacts(like="claude-haiku-4-5", display_name="Claude New 6")}
    )
    with served(catalog=catalog) as (_, client):
        assert client.models.retrieve("claude-new-6").display_name == "Claude New 6"
        message = client.messages.create(model="claude-new-6", max_tokens=5, messages=HI)
        assert message.model == "claude-new-6"


@pytest.mark.filterwarnings("ignore:The model 'claude-opus-4-5' is deprecated:DeprecationWarning")
def test_a_model_past_its_retirement_date_is_overdue_until_it_is_retired(served) -> None:
    """SDK ``ModelInfo.retires_at``: "A past date on a `deprecated` model means
    retirement is overdue, not that it has occurred: `lifecycle` is the retirement
    signal." The emulator still serves it; a catalog that says ``retired`` does not."""
    with served(seed=3) as (emu, client):
        days = (_dt.date(2027, 1, 23) - _dt.datetime.now(_dt.UTC).date()).days
        emu.clock.advance(max(days, 0) * 86400.0)
        client.messages.create(model="claude-opus-4-5", max_tokens=5, messages=HI)
        info = client.models.retrieve("claude-opus-4-5")
        assert info.lifecycle == "deprecated" and info.retires_at is not None
        emu.catalog = emu.catalog.with_entries({"claude-opus-4-5": ModelFacts(status="retired")})
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(model="claude-opus-4-5", max_tokens=5, messages=HI)
        assert client.models.retrieve("claude-opus-4-5").lifecycle == "retired"


def test_an_unknown_model_in_a_batch_is_an_errored_line_with_not_found_error(
    client: anthropic.Anthropic,
) -> None:
    requests = [
        {"custom_id": "bad", "params": {"model": "nope", "max_tokens": 5, "messages": HI}},
        {
            "custom_id": "good",
            "params": {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HI},
        },
    ]
    batch = client.messages.batches.create(requests=requests)
    lines = {line.custom_id: line for line in read_results(client, batch.id)}
    assert lines["good"].result.type == "succeeded"
    error = lines["bad"].result.error.error
    assert (error.type, error.message) == ("not_found_error", "model: nope")


def test_the_prompt_cache_minimum_comes_from_the_catalog() -> None:
    emu = Emulator()
    text = "word " * 3000  # ~3,000 tokens: over Sonnet 4.6's 1,024, under Haiku 4.5's 4,096
    params = {
        "max_tokens": 5,
        "system": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
        "messages": HI,
    }
    assert emu.cache.usage({**params, "model": "claude-sonnet-4-6"}).creation_5m > 0
    assert emu.cache.usage({**params, "model": "claude-haiku-4-5"}).creation_5m == 0
    emu.catalog = default_catalog().with_entries(
        {"claude-haiku-4-5": ModelFacts(cache_min_tokens=1024)}
    )
    assert emu.cache.usage({**params, "model": "claude-haiku-4-5"}).creation_5m > 0


def _shapes() -> list[dict]:
    """Requests that differ where the rules look: keys, sampling, thinking, effort,
    tool_choice, the last turn, breakpoints, models (known, retired, unknown)."""
    rng = random.Random(15)
    cc = {"type": "ephemeral"}
    shapes = []
    for _ in range(600):
        params: dict = {
            "model": rng.choice(
                [
                    "claude-haiku-4-5",
                    "claude-opus-4-7",
                    "claude-sonnet-4-6",
                    "claude-opus-5-5",
                    "claude-3-haiku-20240307",
                    "claude-nope",
                ]
            ),
            "max_tokens": rng.choice([5, 2000, 64000, 200000]),
            "messages": [{"role": "user", "content": "hi"}],
        }
        for key in ("temperature", "top_p", "top_k"):
            if rng.random() < 0.3:
                params[key] = rng.choice([0.5, 1.0, 5])
        if rng.random() < 0.5:
            params["thinking"] = rng.choice(
                [
                    {"type": "enabled", "budget_tokens": rng.choice([500, 1024, 3000])},
                    {"type": "adaptive"},
                    {"type": "disabled"},
                    {"type": "between_tools"},
                ]
            )
        if rng.random() < 0.3:
            params["output_config"] = {"effort": rng.choice(["low", "high", "xhigh", "max"])}
        if rng.random() < 0.3:
            params["tool_choice"] = {"type": rng.choice(["auto", "any", "tool"]), "name": "t"}
        if rng.random() < 0.3:
            params["messages"].append({"role": "assistant", "content": "The answer is"})
        if rng.random() < 0.3:
            n = rng.randint(1, 6)
            params["system"] = [{"type": "text", "text": "s", "cache_control": cc}] * n
        if rng.random() < 0.1:
            params["frobnicate"] = 1
        shapes.append(params)
    return shapes


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
def test_the_emulators_kept_answers_are_the_rules_answers(version) -> None:
    """The emulator keeps each request shape's answer (``refusal_key``); on hundreds of
    shapes, asked twice (kept the second time), it answers what ``check_request`` does."""
    rules = ModelRules(default_catalog(), time.time)
    today = rules.today()
    refused = 0
    for params in _shapes() * 2:
        text = {
            **params,
            "messages": [
                *params["messages"][:-1],
                {**params["messages"][-1], "content": f"{random.random()}"},
            ],
        }  # other text, same shape
        expected = first_error(check_request(text, rules.catalog, version, today=today))
        got = rules.refusal(text, version)
        assert (got is None) == (expected is None), (text, expected, got)
        if got is not None:
            refused += 1
            assert (got.status, got.error_type, got.message) == (
                expected.status,
                expected.error_type,
                expected.message,
            )
    assert 50 < refused < 1150  # both kinds of answer were compared
