"""``check_request``: what the rules let through, and what they say.

Each rule's refusal is tested end to end (validate and the emulator agreeing) in
tests/pipeline/test_request_rules.py; here are the edges: what is accepted, warnings,
facts that are not established, and the order of answers.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from batchmark.config._models import ModelFacts, default_catalog
from batchmark.config._rules import Problem, check_request, first_error

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "grade", "input_schema": {"type": "object"}}]


def problems(model: str, version: str | None = None, **params: Any) -> list[Problem]:
    request = {"model": model, "max_tokens": 1024, "messages": HI, **params}
    return check_request(request, default_catalog(), version, today=_dt.date(2026, 12, 1))


def errors(model: str, version: str | None = None, **params: Any) -> list[tuple[str, str]]:
    return [
        (p.field, p.message) for p in problems(model, version, **params) if p.severity == "error"
    ]


def test_a_plain_request_to_every_live_model_is_accepted() -> None:
    today = _dt.date(2026, 12, 1)
    for facts in default_catalog().entries():
        if not facts.retired(today):
            assert errors(str(facts.id)) == [], facts.id


def test_an_alias_is_accepted_and_the_cap_message_names_the_snapshot() -> None:
    assert errors("claude-opus-4-5") == []
    [(field, message)] = errors("claude-opus-4-5", max_tokens=128_001)
    assert message.endswith("for claude-opus-4-5-20251101")


def test_sampling_is_checked_only_under_2023_06_01_and_per_model() -> None:
    assert errors("claude-haiku-4-5", "2023-06-01", temperature=0.2) == []
    assert errors("claude-haiku-4-5", "2023-06-01", top_p=0.9, top_k=5) == []
    # the default temperature on a model without sampling is not known to be refused
    assert errors("claude-opus-4-8", "2023-06-01", temperature=1.0) == []
    assert [f for f, _ in errors("claude-opus-4-8", "2023-06-01", top_k=5)] == ["top_k"]
    # Opus 4.6: whether temperature with top_p is refused is not established
    assert errors("claude-opus-4-6", "2023-06-01", temperature=0.2, top_p=0.9) == []


def test_thinking_settings_each_model_takes() -> None:
    adaptive = {"type": "adaptive"}
    assert errors("claude-sonnet-4-6", thinking=adaptive) == []
    assert errors("claude-opus-5-5", thinking=adaptive) == []
    assert errors("claude-opus-5", thinking={"type": "disabled"}) == []
    high = {"effort": "high"}
    assert errors("claude-opus-5", thinking={"type": "disabled"}, output_config=high) == []
    assert errors("claude-sonnet-5-5", thinking={"type": "between_tools"}) == []
    between = errors(
        "claude-sonnet-5-5", thinking={"type": "between_tools"}, output_config={"effort": "max"}
    )
    assert [f for f, _ in between] == ["output_config.effort"]
    assert [f for f, _ in errors("claude-opus-4-8", thinking={"type": "between_tools"})] == [
        "thinking.type"
    ]
    # Opus 4.7: whether `disabled` is refused is not established
    assert errors("claude-opus-4-7", thinking={"type": "disabled"}) == []


def test_enabled_thinking_on_a_4_6_model_is_accepted_with_a_warning() -> None:
    found = problems(
        "claude-sonnet-4-6", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}
    )
    assert [(p.field, p.severity) for p in found] == [("thinking.type", "warning")]


def test_forced_tool_choice_depends_on_thinking_and_on_the_model() -> None:
    any_tool = {"tools": TOOLS, "tool_choice": {"type": "any"}}
    assert errors("claude-sonnet-4-6", **any_tool) == []  # thinking is off by default
    assert errors("claude-sonnet-4-6", tool_choice={"type": "auto"}, tools=TOOLS) == []
    assert errors("claude-sonnet-4-6", thinking={"type": "disabled"}, **any_tool) == []
    # Opus 5 thinks by default; whether a forced tool_choice is refused then is unknown
    assert errors("claude-opus-5", **any_tool) == []
    assert [f for f, _ in errors("claude-opus-5", thinking={"type": "adaptive"}, **any_tool)] == [
        "tool_choice"
    ]
    assert [f for f, _ in errors("claude-sonnet-5-5", **any_tool)] == ["tool_choice"]


def test_a_refused_thinking_mode_is_one_problem_not_two() -> None:
    found = errors(
        "claude-opus-4-8",
        thinking={"type": "enabled", "budget_tokens": 100},
        tools=TOOLS,
        tool_choice={"type": "any"},
    )
    assert [f for f, _ in found] == ["thinking.type"]


def test_a_top_level_cache_control_is_not_counted_as_a_breakpoint() -> None:
    marked = [
        {**t, "name": f"t{i}", "cache_control": {"type": "ephemeral"}}
        for i, t in enumerate(TOOLS * 4)
    ]
    assert errors("claude-haiku-4-5", tools=marked, cache_control={"type": "ephemeral"}) == []
    system = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]
    [(field, message)] = errors("claude-haiku-4-5", tools=marked, system=system)
    assert field == "system.0.cache_control" and message.endswith("Found 5.")


def test_a_prefill_is_fine_where_the_model_takes_it() -> None:
    prefilled = [*HI, {"role": "assistant", "content": "Sure:"}]
    assert errors("claude-haiku-4-5", messages=prefilled) == []
    assert [f for f, _ in errors("claude-opus-4-8", messages=prefilled)] == ["messages.1"]


def test_the_first_error_is_what_the_api_answers() -> None:
    found = problems("claude-nope", frobnicate=1)
    assert [p.status for p in found] == [400, 404]  # the request's keys, then its model
    first = first_error(found)
    assert first is not None and first.message == "frobnicate: Extra inputs are not permitted"
    assert first_error(problems("claude-haiku-4-5")) is None


def test_an_unknown_api_version_checks_no_keys() -> None:
    assert errors("claude-haiku-4-5", "2099-01-01", frobnicate=1) == []


def test_a_model_whose_facts_are_unknown_gets_only_the_general_rules() -> None:
    catalog = default_catalog().with_entries({"claude-bare-1": ModelFacts()})
    request = {
        "model": "claude-bare-1",
        "max_tokens": 900_000,
        "messages": [*HI, {"role": "assistant", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "tools": TOOLS,
        "tool_choice": {"type": "any"},
    }
    found = check_request(request, catalog, "2026-10-21")
    assert [p.field for p in found] == ["tool_choice"]  # thinking with a forced tool, always


def test_a_model_past_its_retirement_date_is_overdue_not_refused() -> None:
    """The SDK's ``ModelInfo.retires_at``: "A past date on a `deprecated` model means
    retirement is overdue, not that it has occurred: `lifecycle` is the retirement
    signal." So a date gone by is a warning; only ``status: retired`` is a 404."""
    found = problems("claude-sonnet-4-5")  # deprecated, retires_on 2026-11-30
    assert [p for p in found if p.severity == "error"] == []
    [warning] = found
    assert warning.field == "model" and "overdue" in warning.message
    assert "--online" in warning.hint
    [gone] = problems("claude-opus-4-1-20250805")  # status: retired
    assert (gone.status, gone.error_type) == (404, "not_found_error")
