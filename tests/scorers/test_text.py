"""Normalizers, number parsing and choice-letter extraction (pure text functions)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchmark.scorers._text import (
    NORMALIZERS,
    extract_choice,
    find_numbers,
    make_normalizer,
    parse_number,
)

ALL = make_normalizer(NORMALIZERS)


def test_nfkc_folds_fullwidth_letters() -> None:
    assert make_normalizer(["nfkc"])("ｆｕｌｌ") == "full"


def test_all_normalizers_together() -> None:
    assert ALL("  Hello,\t  WORLD!! ") == "hello world"


def test_strip_punctuation_handles_unicode_punctuation() -> None:
    assert make_normalizer(["strip_punctuation"])("«Paris»—yes¿") == "Parisyes"


def test_normalizers_apply_in_fixed_order_whatever_the_config_order() -> None:
    one = make_normalizer(["strip", "lower", "collapse_whitespace"])
    other = make_normalizer(["collapse_whitespace", "lower", "strip"])
    assert one(" A  B ") == other(" A  B ") == "a b"


def test_no_normalizer_is_identity() -> None:
    assert make_normalizer([])(" X ") == " X "


@pytest.mark.parametrize("text", ["<¡", "$€", "a+b—c", "¿x^y?"])
def test_strip_punctuation_removes_ascii_symbols_in_unicode_text_too(text: str) -> None:
    strip = make_normalizer(["strip_punctuation"])
    assert strip(text) == strip(strip(text))
    assert not set(strip(text)) & set("<$+^?")


@given(st.text(), st.sets(st.sampled_from(NORMALIZERS)))
def test_normalizers_are_idempotent(text: str, names: set[str]) -> None:
    normalize = make_normalizer(names)
    once = normalize(text)
    assert normalize(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", Decimal(42)),
        ("1,234.5", Decimal("1234.5")),
        ("-3e2", Decimal(-300)),
        ("\u22123.5", Decimal("-3.5")),
        ("+7", Decimal(7)),
        (".5", Decimal("0.5")),
        ("  12.  ", Decimal(12)),
        ("$1,000", Decimal(1000)),
        ("-$5", Decimal(-5)),
        ("45%", Decimal(45)),
        ("123456789012345678901234567890", Decimal("123456789012345678901234567890")),
        ("1e999999", Decimal("1e999999")),
    ],
)
def test_parse_number_accepts_numbers_as_people_write_them(text: str, expected: Decimal) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "nan", "inf", "1,23", "12 apples", "1.2.3", "--3", "%"]
)
def test_parse_number_refuses_non_numbers(text: str) -> None:
    assert parse_number(text) is None


def test_percent_as_fraction() -> None:
    assert parse_number("45%", percent="fraction") == Decimal("0.45")


def test_find_numbers_in_prose() -> None:
    found = [v for v, _ in find_numbers("From 1,200 to -3e2 items, i.e. 4.5% (v2 excluded).")]
    assert found == [Decimal(1200), Decimal(-300), Decimal("4.5")]


def test_a_sentence_final_period_is_not_a_decimal_point() -> None:
    assert [w for _, w in find_numbers("The answer is 42.")] == ["42"]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_formatted_floats_round_trip(x: float) -> None:
    for text in (repr(x), f"{x:,}", f"{x:e}"):
        parsed = parse_number(text)
        assert parsed is not None, text
        assert float(parsed) == float(text.replace(",", "")), text


@given(st.integers())
def test_integers_round_trip_exactly(n: int) -> None:
    assert parse_number(f"{n:,}") == n
    assert parse_number(str(n)) == n


LETTERS = ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("(c)", "C"),
        ("**D.**", "D"),
        ("The answer is (B).", "B"),
        ("A good question. Answer: C", "C"),
        ("I first thought A. Final answer: D", "D"),
        ("B) Paris\nbecause it is the capital", "B"),
        ("It must be (C), clearly.", "C"),
        ("Paris, so I pick C", "C"),
    ],
)
def test_extract_choice_finds_the_letter(text: str, expected: str) -> None:
    assert extract_choice(text, LETTERS)[0] == expected


@pytest.mark.parametrize(
    "text",
    ["", "I don't know", "Either A or B", "(A) or (B)", "a", "The answer is a mystery"],
)
def test_extract_choice_refuses_to_guess(text: str) -> None:
    letter, reason = extract_choice(text, LETTERS)
    if text == "a":  # a lone letter is the whole answer, whatever its case
        assert letter == "A"
    else:
        assert letter is None and reason
