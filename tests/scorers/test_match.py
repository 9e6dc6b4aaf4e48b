"""exact_match, includes, regex, numeric and choice on normal, edge and hostile inputs."""

from __future__ import annotations

import pytest

from tests.scorers.support import score

EXACT = {"exact_match": {"target": "{{ label }}"}}


def test_exact_match_passes_on_equal_text() -> None:
    result = score(EXACT, " Paris\n", {"label": "Paris"})
    assert (result.value, result.passed, result.answer) == (1.0, True, "Paris")


def test_exact_match_explains_a_mismatch() -> None:
    result = score(EXACT, "Lyon", {"label": "Paris"})
    assert (result.value, result.passed, result.invalid) == (0.0, False, False)
    assert result.explanation == "expected 'Paris', got 'Lyon' (after strip)"


def test_exact_match_is_case_sensitive_by_default() -> None:
    assert not score(EXACT, "paris", {"label": "Paris"}).passed


def test_exact_match_with_every_normalizer() -> None:
    item = {"exact_match": {"target": "{{ label }}", "normalize": True}}
    assert score(item, "  ｆｕｌｌ   Moon! ", {"label": "Full moon"}).passed


def test_exact_match_extracts_the_answer_first() -> None:
    item = {"exact_match": {"target": "{{ label }}", "extract": r"Answer:\s*(\w+)"}}
    assert score(item, "Let me think... Answer: Paris", {"label": "Paris"}).passed
    failed = score(item, "Paris", {"label": "Paris"})
    assert not failed.passed and "extract pattern found nothing" in failed.explanation


def test_exact_match_named_answer_group_wins() -> None:
    item = {"exact_match": {"target": "{{ label }}", "extract": r"(\d+)\s*=\s*(?P<answer>\w+)"}}
    assert score(item, "2 = two", {"label": "two"}).passed


def test_exact_match_any_of_several_targets() -> None:
    item = {"exact_match": {"target": ["{{ label }}", "{{ alias }}"], "normalize": ["lower"]}}
    assert score(item, "nyc", {"label": "New York", "alias": "NYC"}).passed


def test_exact_match_target_renders_non_strings() -> None:
    assert score(EXACT, "42", {"label": 42}).passed


def test_empty_response_fails_not_crashes() -> None:
    assert score(EXACT, "", {"label": "x"}).passed is False
    assert score(EXACT, None, {"label": "x"}).passed is False


def test_empty_target_matches_empty_response() -> None:
    assert score(EXACT, "  ", {"label": ""}).passed


@pytest.mark.parametrize("status", ["errored", "expired", "canceled", "missing"])
def test_no_response_is_a_failure_not_invalid(status: str) -> None:
    result = score(EXACT, None, {"label": "x"}, status=status, error_type="overloaded_error")
    assert (result.value, result.passed, result.invalid) == (0.0, False, False)
    assert result.explanation.startswith(f"no response: {status}")
    assert "overloaded_error" in result.explanation


def test_undefined_target_variable_is_invalid() -> None:
    result = score(EXACT, "x", {"other": 1})
    assert result.invalid and "label" in result.explanation


def test_target_with_jinja_expression() -> None:
    item = {"exact_match": {"target": "{{ label | upper }}"}}
    assert score(item, "PARIS", {"label": "paris"}).passed


def test_huge_response_is_fine() -> None:
    assert not score(EXACT, "x" * 1_000_000, {"label": "x"}).passed


def test_includes_finds_the_target() -> None:
    item = {"includes": {"target": "{{ city }}", "normalize": ["lower"]}}
    assert score(item, "I believe it is PARIS.", {"city": "Paris"}).passed
    result = score(item, "Lyon", {"city": "Paris"})
    assert not result.passed and "'paris' not found" in result.explanation


def test_includes_all_of_a_list() -> None:
    item = {"includes": {"target": ["red", "blue"], "mode": "all"}}
    assert score(item, "red and blue", {}).passed
    result = score(item, "only red", {})
    assert not result.passed and "'blue'" in result.explanation


def test_includes_any_of_a_list() -> None:
    item = {"includes": {"target": ["red", "blue"]}}
    assert score(item, "only blue", {}).passed


def test_regex_match_without_target_passes_on_match() -> None:
    item = {"regex": {"pattern": r"\bID-(\d{4})\b"}}
    result = score(item, "your ticket is ID-0042.", {})
    assert result.passed and result.answer == "0042"
    assert not score(item, "no ticket", {}).passed


def test_regex_capture_compared_with_target() -> None:
    item = {"regex": {"pattern": r"(?i)total:\s*(?P<answer>\S+)", "target": "{{ total }}"}}
    assert score(item, "TOTAL: 17", {"total": 17}).passed
    result = score(item, "total: 18", {"total": 17})
    assert result.explanation == "expected '17', captured '18'"


def test_regex_numbered_group() -> None:
    item = {"regex": {"pattern": r"(\w+)-(\w+)", "group": 2}}
    assert score(item, "left-right", {}).answer == "right"


def test_regex_negate_forbids_a_phrase() -> None:
    item = {"regex": {"pattern": r"(?i)as an ai", "negate": True}}
    assert score(item, "Sure, here it is.", {}).passed
    assert not score(item, "As an AI, I cannot", {}).passed


NUMERIC = {"numeric": {"target": "{{ answer }}"}}


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("1234.5", "1,234.5"),
        ("The total is 1,234.5.", "1234.5"),
        ("-3e2", "-300"),
        ("It drops by −300", "-300"),
        ("first 3, then 5, so 8", "8"),
        ("**42**", "42"),
        ("$1,000", "1000"),
        ("0.1", "0.10000000001"),
    ],
)
def test_numeric_passes(text: str, target: str) -> None:
    assert score(NUMERIC, text, {"answer": target}).passed, text


def test_numeric_huge_integers_compare_exactly() -> None:
    big = 10**40
    item = {"numeric": {"target": "{{ answer }}", "rel_tol": 0}}
    assert score(item, str(big), {"answer": big}).passed
    assert not score(item, str(big + 1), {"answer": big}).passed


def test_numeric_absurd_exponents_do_not_crash() -> None:
    assert score(NUMERIC, "1e999999", {"answer": "1e999999"}).passed
    assert not score(NUMERIC, "1e999999", {"answer": "-1e999999"}).passed
    assert not score(NUMERIC, "1e999999", {"answer": "1"}).passed


def test_numeric_absolute_tolerance() -> None:
    item = {"numeric": {"target": "{{ answer }}", "abs_tol": 0.05}}
    assert score(item, "3.14", {"answer": "3.1416"}).passed
    assert not score(item, "3.0", {"answer": "3.1416"}).passed


def test_numeric_relative_tolerance() -> None:
    item = {"numeric": {"target": "{{ answer }}", "rel_tol": 0.01}}
    assert score(item, "1005", {"answer": "1000"}).passed
    result = score(item, "1020", {"answer": "1000"})
    assert not result.passed and result.explanation == "expected 1000, got 1020"


def test_numeric_percentages() -> None:
    item = {"numeric": {"target": "{{ answer }}", "percent": "fraction"}}
    assert score(item, "About 45%", {"answer": 0.45}).passed
    assert score(NUMERIC, "About 45%", {"answer": 45}).passed


def test_numeric_pick_first_and_only() -> None:
    first = {"numeric": {"target": "{{ answer }}", "pick": "first"}}
    assert score(first, "3 then 5", {"answer": 3}).passed
    only = {"numeric": {"target": "{{ answer }}", "pick": "only"}}
    result = score(only, "3 then 5", {"answer": 3})
    assert not result.passed and "2 numbers" in result.explanation


def test_numeric_without_a_number_fails() -> None:
    result = score(NUMERIC, "I cannot say", {"answer": 3})
    assert not result.passed and not result.invalid and "no number" in result.explanation


def test_numeric_target_that_is_not_a_number_is_invalid() -> None:
    assert score(NUMERIC, "3", {"answer": "three"}).invalid


def test_numeric_extract() -> None:
    item = {"numeric": {"target": "{{ answer }}", "extract": r"####\s*(.+)"}}
    assert score(item, "steps 1 2 3\n#### 1,024", {"answer": 1024}).passed


CHOICE = {"choice": {"target": "{{ answer }}"}}


def test_choice_passes_on_the_right_letter() -> None:
    result = score(CHOICE, "The answer is (C).", {"answer": "C"})
    assert result.passed and result.answer == "C"


def test_choice_explains_the_wrong_letter() -> None:
    result = score(CHOICE, "Answer: B", {"answer": "C"})
    assert not result.passed and result.explanation.startswith("expected C, picked B")


def test_choice_ambiguous_answer_fails() -> None:
    result = score(CHOICE, "Either A or B", {"answer": "A"})
    assert not result.passed and "ambiguous" in result.explanation


def test_choice_target_in_parentheses_and_fullwidth() -> None:
    assert score(CHOICE, "Ｃ", {"answer": "(c)"}).passed


def test_choice_custom_labels() -> None:
    item = {"choice": {"target": "{{ answer }}", "choices": ["yes", "no"]}}
    assert score(item, "no", {"answer": "no"}).passed


def test_choice_target_outside_choices_is_invalid() -> None:
    assert score(CHOICE, "A", {"answer": "E"}).invalid
