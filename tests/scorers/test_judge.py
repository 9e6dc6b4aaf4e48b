"""judge: the forced-tool-call request, verdict parsing, agreement labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from batchmark import ConfigError
from batchmark.scorers import (
    VERDICT_TOOL,
    JudgeScorer,
    Score,
    build_scorers,
    prompt_text,
)
from tests.scorers.support import ctx, one, response

GRADES = {
    "judge": {
        "model": "claude-sonnet-4-6",
        "rubric": "Question: {{ prompt }}\nReference: {{ reference }}\nAnswer: {{ response }}",
        "reference": "{{ answer }}",
        "grades": {"A": 1.0, "B": 0.5, "C": 0.0},
        "params": {"temperature": 0},
    }
}
RANGE = {
    "judge": {
        "name": "scale",
        "model": "claude-haiku-4-5",
        "rubric": "Rate {{ response }} from 1 to 10.",
        "range": [1, 10],
        "pass_threshold": 7,
    }
}
ROW = {"answer": "Paris", "label": "A"}


def judge(item: dict[str, Any] = GRADES) -> JudgeScorer:
    scorer = one(item)
    assert isinstance(scorer, JudgeScorer)
    return scorer


def verdict(payload: Any, name: str = VERDICT_TOOL, **extra: Any) -> dict[str, Any]:
    calls = [{"id": "toolu_1", "name": name, "input": payload}]
    return response("", tool_calls=calls, stop_reason="tool_use", **extra)


def test_build_request_forces_the_verdict_tool() -> None:
    request = judge().build_request(ctx("It is Paris.", ROW))
    assert request is not None
    assert request["model"] == "claude-sonnet-4-6"
    assert request["max_tokens"] == 1024 and request["temperature"] == 0
    assert request["tool_choice"] == {"type": "tool", "name": VERDICT_TOOL}
    [tool] = request["tools"]
    assert tool["name"] == VERDICT_TOOL
    schema = tool["input_schema"]
    assert schema["required"] == ["reasoning", "grade"]
    assert schema["properties"]["grade"]["enum"] == ["A", "B", "C"]
    assert list(schema["properties"]) == ["reasoning", "grade"]  # reasoning comes first
    Draft202012Validator.check_schema(schema)
    assert request["messages"] == [
        {"role": "user", "content": "Question: Question?\nReference: Paris\nAnswer: It is Paris."}
    ]
    assert "system" not in request


def test_build_request_for_a_range() -> None:
    request = judge(RANGE).build_request(ctx("x"))
    assert request is not None
    score = request["tools"][0]["input_schema"]["properties"]["score"]
    assert (score["type"], score["minimum"], score["maximum"]) == ("number", 1, 10)
    assert request["model"] == "claude-haiku-4-5"


def test_build_request_is_deterministic() -> None:
    scorer = judge()
    assert scorer.build_request(ctx("a", ROW)) == scorer.build_request(ctx("a", ROW))


def test_rubric_variables() -> None:
    item = {
        "judge": {
            "model": "m",
            "system": "You grade {{ variant }} answers by {{ model }}.",
            "rubric": "{{ row_id }}|{{ row.answer }}|{{ answer }}|{{ response }}"
            "|{{ tool_calls | length }}",
        }
    }
    request = judge(item).build_request(ctx("resp", ROW))
    assert request is not None
    assert request["system"] == "You grade v1 answers by haiku."
    assert request["messages"][0]["content"] == "row-1|Paris|Paris|resp|0"


def test_response_with_only_tool_calls_is_shown_as_json() -> None:
    calls = [{"id": "t", "name": "f", "input": {"a": 1}}]
    request = judge().build_request(ctx("", ROW, tool_calls=calls))
    assert request is not None
    assert '"input": {"a": 1}' in request["messages"][0]["content"]


def test_prompt_text_of_a_conversation() -> None:
    request = {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Capital of France?"},
        ],
    }
    assert prompt_text(request) == (
        "[system]\nBe brief.\n\n[user]\nHi\n[image]\n\n"
        "[assistant]\nHello\n\n[user]\nCapital of France?"
    )


def test_no_request_for_a_failed_candidate_and_its_score_is_a_failure() -> None:
    scorer = judge()
    failed = ctx(None, ROW, status="errored", error_type="overloaded_error")
    assert scorer.build_request(failed) is None
    result = scorer.score(failed)
    assert (result.value, result.passed, result.invalid) == (0.0, False, False)
    assert result.explanation.startswith("no response")


def test_score_without_the_batch_is_invalid() -> None:
    assert judge().score(ctx("x", ROW)).invalid


def test_undefined_rubric_variable_is_a_config_error_naming_the_row() -> None:
    with pytest.raises(ConfigError, match=r"scorer 'judge', row 'row-1': reference: .*answer"):
        judge().build_request(ctx("x", {"label": "A"}))


def test_parse_a_valid_grade() -> None:
    result = judge().parse(ctx("x", ROW), verdict({"reasoning": "Matches.", "grade": "A"}))
    assert result == Score(1.0, True, "Matches.", answer="A")


def test_parse_a_middle_grade_passes_at_the_default_threshold() -> None:
    result = judge().parse(ctx("x", ROW), verdict({"reasoning": "Partly.", "grade": "B"}))
    assert (result.value, result.passed) == (0.5, True)


def test_parse_a_range_normalizes_the_value_and_keeps_the_raw_score() -> None:
    scorer = judge(RANGE)
    good = scorer.parse(ctx("x"), verdict({"reasoning": "ok", "score": 7}))
    assert (good.value, good.passed, good.answer) == (pytest.approx(6 / 9), True, 7)
    low = scorer.parse(ctx("x"), verdict({"reasoning": "meh", "score": 6.5}))
    assert low.passed is False


@pytest.mark.parametrize(
    ("judge_response", "reason"),
    [
        (response("I give it an A."), "no submit_verdict call"),
        (verdict({"reasoning": "x", "grade": "A"}, name="other_tool"), "no submit_verdict call"),
        (verdict({"reasoning": "x", "grade": "D"}), "bad verdict at $.grade"),
        (verdict({"reasoning": "x", "grade": "a"}), "bad verdict at $.grade"),
        (verdict({"reasoning": "x", "grade": 1}), "bad verdict at $.grade"),
        (verdict({"grade": "A"}), "'reasoning' is a required property"),
        (verdict({"reasoning": ["x"], "grade": "A"}), "bad verdict at $.reasoning"),
        (verdict("A"), "bad verdict at $"),
        (verdict(None), "bad verdict at $"),
        (response(None, status="errored", error_type="overloaded_error"), "judge request errored"),
        (response(None, status="expired"), "judge request expired"),
        ({}, "judge request missing"),
    ],
)
def test_unsound_verdicts_are_invalid(judge_response: dict[str, Any], reason: str) -> None:
    result = judge().parse(ctx("x", ROW), judge_response)
    assert result.invalid and result.value is None and result.passed is None
    assert reason in result.explanation


@pytest.mark.parametrize("raw", [0, 11, "7", True, None])
def test_out_of_range_or_wrong_type_scores_are_invalid(raw: Any) -> None:
    result = judge(RANGE).parse(ctx("x"), verdict({"reasoning": "r", "score": raw}))
    assert result.invalid


def test_parse_for_a_failed_candidate_is_a_failure() -> None:
    result = judge().parse(ctx(None, ROW, status="expired"), {})
    assert (result.value, result.passed, result.invalid) == (0.0, False, False)


def test_default_scale_is_pass_fail() -> None:
    scorer = judge({"judge": {"model": "m", "rubric": "{{ response }}"}})
    assert scorer.verdict_tool["input_schema"]["properties"]["grade"]["enum"] == ["PASS", "FAIL"]
    assert scorer.parse(ctx("x"), verdict({"reasoning": "", "grade": "FAIL"})).passed is False


def test_rubric_file(tmp_path: Path) -> None:
    (tmp_path / "rubric.j2").write_text("Grade: {{ response }}")
    item = {"judge": {"model": "m", "rubric_file": "rubric.j2"}}
    [scorer] = build_scorers([item], base_dir=tmp_path)
    request = scorer.build_request(ctx("x"))  # type: ignore[attr-defined]
    assert request["messages"][0]["content"] == "Grade: x"


def test_row_variables_exclude_the_judge_variables() -> None:
    assert judge().row_variables == {"answer"}


def test_judge_config_errors_all_at_once(tmp_path: Path) -> None:
    items = [
        {"judge": {"model": "m", "rubric_file": "missing.j2"}},
        {"judge": {"model": "m", "rubric": "no response shown"}, "name": "j1"},
        {"judge": {"model": "m", "rubric": "{{ response }} vs {{ reference }}"}, "name": "j2"},
        {
            "judge": {"model": "m", "rubric": "{{ response }}", "params": {"tools": []}},
            "name": "j3",
        },
        {"judge": {"model": "m", "rubric": "{{ response }}", "range": [5, 1]}, "name": "j4"},
        {
            "judge": {"model": "m", "rubric": "{{ response }}", "grades": {"A": 2, "B": 0}},
            "name": "j5",
        },
        {"judge": {"rubric": "{{ response }"}, "name": "j6"},
        {
            "judge": {"model": "m", "rubric": "{{ response }}", "params": {"thinking": {}}},
            "name": "j7",
        },
    ]
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=tmp_path)
    errors = info.value.errors
    assert [e.split(":")[0] for e in errors] == [
        "scorers[0].rubric_file",
        "scorers[1].rubric",
        "scorers[2].reference",
        "scorers[3].params.tools",
        "scorers[4].range",
        "scorers[5].grades.A",
        "scorers[6].model",
        "scorers[7].params.thinking",
    ]
    assert "file not found" in errors[0]


def test_agreement_pair_with_grade_labels() -> None:
    scorer = judge({"judge": {**GRADES["judge"], "human_label_field": "label"}})
    score = Score(0.5, True, "", answer="B")
    assert scorer.agreement_pair(ctx("x", {**ROW, "label": "b"}), score) == ("B", "B")
    assert scorer.agreement_pair(ctx("x", {**ROW, "label": ""}), score) is None
    assert scorer.agreement_pair(ctx("x", ROW), Score.of_invalid("x")) is None


def test_agreement_pair_with_yes_no_labels() -> None:
    item = {"judge": {"model": "m", "rubric": "{{ response }}", "human_label_field": "ok"}}
    scorer = judge(item)
    passed = Score(1.0, True, "", answer="PASS")
    assert scorer.agreement_pair(ctx("x", {"ok": False}), passed) == (True, False)
    assert scorer.agreement_pair(ctx("x", {"ok": "correct"}), passed) == (True, True)


def test_agreement_pair_with_a_numeric_scale() -> None:
    scorer = judge({"judge": {**RANGE["judge"], "human_label_field": "stars"}})
    assert scorer.agreement_pair(ctx("x", {"stars": "8"}), Score(0.7, True, "", answer=7)) == (
        7,
        8.0,
    )
