"""Agreement with human labels: accuracy and Cohen's kappa, checked by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchmark.scorers import agreement


def pairs(table: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    return [pair for pair, count in table.items() for _ in range(count)]


def test_textbook_two_by_two() -> None:
    # Wikipedia, "Cohen's kappa", first example: 50 proposals read by A and B.
    # Yes/Yes 20, Yes/No 5, No/Yes 10, No/No 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    data = pairs({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    result = agreement(data)
    assert result["n"] == 50
    assert result["accuracy"] == pytest.approx(0.7)
    assert result["kappa"] == pytest.approx(0.4)


def test_second_textbook_example() -> None:
    # Same article: 45/15/25/15 -> p_o = 0.60, p_e = 0.54, kappa = 0.1304.
    data = pairs({("y", "y"): 45, ("y", "n"): 15, ("n", "y"): 25, ("n", "n"): 15})
    assert agreement(data)["kappa"] == pytest.approx(0.06 / 0.46)


def test_three_categories_by_hand() -> None:
    # p_o = 7/10; marginals A: a4 b3 c3, B: a3 b4 c3 -> p_e = (12 + 12 + 9) / 100 = 0.33
    data = [("a", "a")] * 3 + [("a", "b")] + [("b", "b")] * 2 + [("b", "c")]
    data += [("c", "c")] * 2 + [("c", "b")]
    result = agreement(data)
    assert result["accuracy"] == pytest.approx(0.7)
    assert result["kappa"] == pytest.approx((0.7 - 0.33) / 0.67)


def test_perfect_agreement() -> None:
    result = agreement([("A", "A"), ("B", "B"), ("C", "C")])
    assert (result["accuracy"], result["kappa"]) == (1.0, 1.0)


def test_chance_level_agreement_is_zero() -> None:
    data = pairs({("y", "y"): 25, ("y", "n"): 25, ("n", "y"): 25, ("n", "n"): 25})
    assert agreement(data)["kappa"] == pytest.approx(0.0)


def test_complete_disagreement_is_negative() -> None:
    assert agreement([("y", "n"), ("n", "y")])["kappa"] == pytest.approx(-1.0)


def test_kappa_undefined_when_both_always_say_the_same_label() -> None:
    assert agreement([(True, True)] * 4) == {"n": 4, "accuracy": 1.0, "kappa": None}


def test_no_pairs_and_pairs_with_none() -> None:
    assert agreement([]) == {"n": 0, "accuracy": None, "kappa": None}
    assert agreement([(None, "a"), ("a", None), ("a", "a"), ("b", "b")])["n"] == 2


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1))
def test_kappa_is_symmetric_and_at_most_accuracy_bound(data: list[tuple[str, str]]) -> None:
    forward = agreement(data)
    backward = agreement([(b, a) for a, b in data])
    assert forward["accuracy"] == backward["accuracy"]
    if forward["kappa"] is None:
        assert backward["kappa"] is None
    else:
        assert forward["kappa"] == pytest.approx(backward["kappa"])
        assert -1.0 <= forward["kappa"] <= 1.0
