"""judge_panel: combining several judges' scores of one item."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchmark import ConfigError
from batchmark.scorers import JudgePanel, Score, build_scorers


def judge(name: str) -> dict[str, object]:
    return {"judge": {"name": name, "model": "m", "rubric": "{{ response }}"}}


def panel(combine: str = "mean", **options: object) -> JudgePanel:
    items = [
        judge("a"),
        judge("b"),
        judge("c"),
        {"judge_panel": {"judges": ["a", "b", "c"], "combine": combine, **options}},
    ]
    scorer = build_scorers(items, base_dir=Path("."))[-1]
    assert isinstance(scorer, JudgePanel)
    return scorer


A = Score(1.0, True, "good", answer="A")
B = Score(0.5, True, "ok", answer="B")
C = Score(0.0, False, "bad", answer="C")
BAD = Score.of_invalid("no submit_verdict call")


def test_panel_defaults() -> None:
    scorer = panel()
    assert scorer.name == "judge_panel" and scorer.judges == ["a", "b", "c"]
    assert scorer.to_config() == {"judge_panel": {"judges": ["a", "b", "c"]}}


def test_mean() -> None:
    result = panel().combine({"a": A, "b": B, "c": C})
    assert result.value == pytest.approx(0.5) and result.passed is True
    assert result.explanation == "mean 0.5 of 3: a=A (pass), b=B (pass), c=C (fail)"
    assert result.answer == {"a": "A", "b": "B", "c": "C"}


def test_mean_with_threshold() -> None:
    assert panel(pass_threshold=0.6).combine({"a": A, "b": B, "c": C}).passed is False


def test_majority() -> None:
    result = panel("majority").combine({"a": A, "b": C, "c": C})
    assert (result.value, result.passed) == (pytest.approx(1 / 3), False)
    assert panel("majority").combine({"a": A, "b": B, "c": C}).passed is True


def test_majority_tie_fails() -> None:
    result = panel("majority").combine({"a": A, "b": C, "c": BAD})
    assert (result.value, result.passed) == (0.5, False)


def test_invalid_members_are_excluded_and_reported() -> None:
    result = panel().combine({"a": A, "b": BAD})
    assert (result.value, result.passed, result.invalid) == (1.0, True, False)
    assert "invalid: b (no submit_verdict call); c (no score)" in result.explanation


def test_all_invalid_is_invalid() -> None:
    result = panel("majority").combine({"a": BAD, "b": BAD, "c": BAD})
    assert result.invalid and result.value is None and result.passed is None
    assert result.explanation.startswith("every judge is invalid")


def test_failed_candidate_combines_to_a_failure() -> None:
    failed = Score.failure("no response: errored")
    result = panel().combine({"a": failed, "b": failed, "c": failed})
    assert (result.value, result.passed, result.invalid) == (0.0, False, False)


def test_panel_must_name_judges_of_the_same_list() -> None:
    items = [
        judge("a"),
        {"exact_match": {"target": "x"}},
        {"judge_panel": {"judges": ["a", "aa", "exact_match"]}},
        {"judge_panel": {"judges": ["a", "a"]}, "name": "p2"},
    ]
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=Path("."))
    errors = info.value.errors
    assert errors[:2] == [
        "scorers[2].judges[1]: no judge named 'aa' in this list\n    hint: did you mean `a`?",
        "scorers[2].judges[2]: no judge named 'exact_match' in this list\n    hint: judges here: a",
    ]
    assert errors[2].startswith("scorers[3].judges: a judge is listed twice")
    assert len(errors) == 3
