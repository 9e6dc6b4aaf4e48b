"""tool_call: expected calls against the response's, with a path to the first mismatch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchmark import ConfigError
from batchmark.scorers import Score, build_scorers
from batchmark.scorers._tool_call import first_mismatch
from tests.scorers.support import ctx, one

PARIS = {"name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}}
OSLO = {"name": "get_weather", "input": {"city": "Oslo", "unit": "celsius"}}
TIME = {"name": "get_time", "input": {"zone": "CET"}}


def called(*calls: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": f"toolu_{i}", **c} for i, c in enumerate(calls)]


def score(
    options: dict[str, Any], calls: list[dict[str, Any]], row: dict[str, Any], **kw: Any
) -> Score:
    scorer = one({"tool_call": options})
    return scorer.score(ctx("", row, tool_calls=calls, stop_reason="tool_use", **kw))


def test_the_expected_call_passes() -> None:
    result = score({"field": "expected"}, called(PARIS), {"expected": PARIS})
    assert (result.value, result.passed) == (1.0, True)
    assert result.explanation == "1 expected call matched"
    assert result.answer == [PARIS]


def test_an_argument_mismatch_names_its_path() -> None:
    got = {"name": "get_weather", "input": {"city": "paris", "unit": "celsius"}}
    result = score({"field": "expected"}, called(OSLO, got), {"expected": [OSLO, PARIS]})
    assert (result.value, result.passed) == (0.0, False)
    assert result.explanation == 'calls[1].input.city: expected "Paris", got "paris"'


def test_a_wrong_tool_names_both() -> None:
    result = score({"field": "expected"}, called(TIME), {"expected": PARIS})
    assert result.explanation == 'calls[0].name: expected "get_weather", got "get_time"'


def test_a_response_without_a_tool_call_fails_clearly() -> None:
    scorer = one({"tool_call": {"field": "expected"}})
    # The text says the right call; only tool calls are scored.
    result = scorer.score(ctx(json.dumps(PARIS), {"expected": PARIS}, thinking=json.dumps(PARIS)))
    assert not result.passed
    assert result.explanation == "no tool call in the response (stop_reason: end_turn)"


def test_no_expected_call_passes_only_without_calls() -> None:
    assert score({"field": "expected"}, [], {"expected": []}).passed
    result = score({"field": "expected"}, called(TIME), {"expected": []})
    assert result.explanation == "expected 0 calls, got 1: calls[0] (get_time) was not expected"


def test_exact_refuses_extra_arguments_and_subset_allows_them() -> None:
    expected = {"name": "get_weather", "input": {"city": "Paris"}}
    exact = score({"field": "expected"}, called(PARIS), {"expected": expected})
    assert exact.explanation == 'calls[0].input.unit: not expected (got "celsius")'
    assert score(
        {"field": "expected", "match": "subset"}, called(PARIS), {"expected": expected}
    ).passed


def test_a_missing_argument_is_named() -> None:
    got = {"name": "get_weather", "input": {"unit": "celsius"}}
    result = score({"field": "expected", "match": "subset"}, called(got), {"expected": PARIS})
    assert result.explanation == 'calls[0].input.city: missing (expected "Paris")'


def test_schema_match_validates_the_input() -> None:
    expected = {
        "name": "get_weather",
        "input": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Lyon"]}},
            "required": ["city"],
        },
    }
    options = {"field": "expected", "match": "schema"}
    assert score(options, called(PARIS), {"expected": expected}).passed
    result = score(options, called(OSLO), {"expected": expected})
    assert result.explanation == "calls[0].input.city: 'Oslo' is not one of ['Paris', 'Lyon']"


def test_a_call_in_the_data_may_say_its_own_match() -> None:
    loose = {"name": "get_weather", "input": {"city": "Oslo"}, "match": "subset"}
    assert score({"field": "expected"}, called(PARIS, OSLO), {"expected": [PARIS, loose]}).passed


def test_in_order_refuses_the_calls_swapped_and_any_order_accepts_them() -> None:
    row = {"expected": [PARIS, TIME]}
    swapped = called(TIME, PARIS)
    result = score({"field": "expected"}, swapped, row)
    assert result.explanation == 'calls[0].name: expected "get_weather", got "get_time"'
    assert score({"field": "expected", "order": "any_order"}, swapped, row).passed


def test_any_order_names_the_expected_call_that_matched_none() -> None:
    got = {"name": "get_weather", "input": {"city": "Pariss", "unit": "celsius"}}
    result = score(
        {"field": "expected", "order": "any_order"}, called(TIME, got), {"expected": [PARIS, TIME]}
    )
    assert result.explanation == (
        'expected[0] (get_weather) matched no call: calls[1].input.city: expected "Paris", '
        'got "Pariss"'
    )


def test_any_order_finds_the_matching_that_works() -> None:
    # A greedy pairing would give the first call to the loose expectation and fail.
    loose = {"name": "get_weather", "input": {}, "match": "subset"}
    row = {"expected": [loose, PARIS]}
    assert score({"field": "expected", "order": "any_order"}, called(PARIS, OSLO), row).passed


def test_allow_extra_lets_other_calls_in_between() -> None:
    row = {"expected": [PARIS, OSLO]}
    calls = called(TIME, PARIS, TIME, OSLO)
    assert not score({"field": "expected"}, calls, row).passed
    assert score({"field": "expected", "allow_extra": True}, calls, row).passed
    result = score({"field": "expected", "allow_extra": True}, called(OSLO, PARIS), row)
    assert result.explanation == (
        "expected[1] (get_weather): no call to it after calls[1] (calls: none)"
    )


def test_too_few_calls_names_the_missing_one() -> None:
    result = score({"field": "expected"}, called(PARIS), {"expected": [PARIS, TIME]})
    assert result.explanation == "expected 2 calls, got 1: no call for expected[1] (get_time)"


def test_json_numbers_compare_as_numbers_and_booleans_apart() -> None:
    assert first_mismatch({"n": 1}, {"n": 1.0}, "x") is None
    assert first_mismatch({"n": 1}, {"n": True}, "x") == "x.n: expected 1, got true"
    assert first_mismatch([1, 2], [1], "x") == "x: expected 2 items, got 1"
    assert first_mismatch({"a b": 1}, {"a b": 2}, "x") == 'x["a b"]: expected 1, got 2'


def test_expected_calls_in_a_json_string_are_parsed() -> None:
    assert score({"field": "expected"}, called(PARIS), {"expected": json.dumps([PARIS])}).passed


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({}, "field 'expected': the row has no such field"),
        ({"expected": "{"}, "field 'expected': not JSON"),
        ({"expected": [{"input": {}}]}, "expected[0]: expected a mapping with a `name`"),
        ({"expected": [{"name": "x", "match": "fuzzy"}]}, "expected[0].match: expected one of"),
        (
            {"expected": [{"name": "get_weather", "input": {"type": 3}, "match": "schema"}]},
            "not a valid JSON Schema",
        ),
    ],
)
def test_a_bad_expectation_makes_the_item_invalid(row: dict[str, Any], message: str) -> None:
    result = score({"field": "expected"}, called(PARIS), row)
    assert result.invalid and message in result.explanation


def test_a_templated_expected_call() -> None:
    options = {"tool": "{{ tool }}", "input": "{{ args | tojson }}", "match": "subset"}
    row = {"tool": "get_weather", "args": {"city": "Paris"}}
    assert score(options, called(PARIS), row).passed
    row = {"tool": "get_weather", "args": {"city": "Rome"}}
    assert score(options, called(PARIS), row).explanation.startswith("calls[0].input.city")


def test_a_static_expected_input_and_schema() -> None:
    options = {
        "tool": "get_weather",
        "input": {"type": "object", "required": ["city"]},
        "match": "schema",
    }
    assert score(options, called(PARIS), {}).passed


def test_options_are_checked_when_built() -> None:
    with pytest.raises(ConfigError, match="give exactly one of `field`"):
        build_scorers([{"tool_call": {}}], base_dir=".")
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        build_scorers(
            [{"tool_call": {"tool": "x", "input": {"type": 3}, "match": "schema"}}], base_dir="."
        )


def test_a_response_that_failed_fails() -> None:
    scorer = one({"tool_call": {"field": "expected"}})
    result = scorer.score(ctx(None, {"expected": PARIS}, status="errored"))
    assert result.explanation.startswith("no response: errored")


def test_a_null_key_counts_as_absent_on_both_sides() -> None:
    # As a Parquet struct column gives it: every row has every key, null if none.
    expected = {"name": "get_weather", "input": {"city": "Paris", "unit": None}, "match": None}
    got = {"name": "get_weather", "input": {"city": "Paris", "zone": None}}
    assert score({"field": "expected"}, called(got), {"expected": [expected]}).passed
    anything = {"name": "get_weather", "input": None}
    assert score({"field": "expected"}, called(OSLO), {"expected": [anything]}).passed
