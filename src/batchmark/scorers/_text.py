"""Pure text functions the match scorers share: normalizers, number parsing, choice letters.

Normalizers always run in one fixed order, whatever order a config lists them in:
``nfkc`` → ``lower`` → ``strip_punctuation`` → ``collapse_whitespace`` → ``strip``, so
that a normalization is idempotent (normalizing twice changes nothing).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "NORMALIZERS",
    "Normalizer",
    "extract_choice",
    "find_numbers",
    "make_normalizer",
    "parse_number",
]

Normalizer = Literal["nfkc", "lower", "strip_punctuation", "collapse_whitespace", "strip"]
NORMALIZERS: tuple[Normalizer, ...] = (
    "nfkc",
    "lower",
    "strip_punctuation",
    "collapse_whitespace",
    "strip",
)
"""Every normalizer, in the order they are applied."""

_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ASCII_PUNCTUATION_CHARS = frozenset(string.punctuation)
_WHITESPACE = re.compile(r"\s+")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _lower(text: str) -> str:
    return text.lower()


def _strip_punctuation(text: str) -> str:
    """Remove Unicode punctuation (categories P*) and ASCII ``string.punctuation``.

    The ASCII set also holds symbols (``<``, ``$``, ``+``, ``^`` ...); they go in
    non-ASCII text too, or a second pass over a result that became ASCII would remove
    what the first kept (``"<¡"`` -> ``"<"`` -> ``""``).
    """
    if text.isascii():
        return text.translate(_ASCII_PUNCTUATION)
    return "".join(
        c
        for c in text
        if c not in _ASCII_PUNCTUATION_CHARS and not unicodedata.category(c).startswith("P")
    )


def _collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text)


def _strip(text: str) -> str:
    return text.strip()


_FUNCTIONS: dict[str, Callable[[str], str]] = {
    "nfkc": _nfkc,
    "lower": _lower,
    "strip_punctuation": _strip_punctuation,
    "collapse_whitespace": _collapse_whitespace,
    "strip": _strip,
}


def make_normalizer(names: Iterable[str]) -> Callable[[str], str]:
    """One function applying the named normalizers in their fixed order; idempotent.

    One pass is enough for ASCII text. Unicode can need more: removing punctuation can
    let NFKC compose what it could not before, and NFKC can produce punctuation or
    whitespace ("℀" -> "a/c"), so non-ASCII text is normalized until it stops changing.
    """
    chosen = set(names)
    steps = [_FUNCTIONS[n] for n in NORMALIZERS if n in chosen]
    if not steps:
        return _identity
    if len(steps) == 1 and steps[0] is not _nfkc:
        return steps[0]

    def once(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    def normalize(text: str) -> str:
        text = once(text)
        if text.isascii():
            return text
        for _ in range(8):
            again = once(text)
            if again == text:
                break
            text = again
        return text

    return normalize


def _identity(text: str) -> str:
    return text


# A number as people write it: -3, 1,234.5, .5, -3e2, 12%, with a unicode minus too.
# Thousands separators must be groups of three; a trailing "." (end of a sentence) is not
# part of the number.
_NUMBER = re.compile(
    r"(?<![\w.])"
    r"(?P<sign>[-+\u2212])?"
    r"(?P<body>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
    r"(?P<exp>[eE][-+]?[0-9]+)?"
    r"(?![0-9])"
    r"(?P<pct>\s?%)?"
)
_CURRENCY = "$€£¥"


def _to_decimal(match: re.Match[str], percent: Literal["number", "fraction"]) -> Decimal:
    sign = "-" if match.group("sign") in ("-", "\u2212") else ""
    text = sign + match.group("body").replace(",", "") + (match.group("exp") or "")
    value = Decimal(text)
    if match.group("pct") and percent == "fraction":
        value = value / 100
    return value


def find_numbers(
    text: str, percent: Literal["number", "fraction"] = "number"
) -> list[tuple[Decimal, str]]:
    """Every number in ``text`` as ``(value, as written)``, in order."""
    return [(_to_decimal(m, percent), m.group(0)) for m in _NUMBER.finditer(text)]


def parse_number(text: str, percent: Literal["number", "fraction"] = "number") -> Decimal | None:
    """``text`` as one number (``"1,234.5"``, ``"-3e2"``, ``"$12"``, ``"45%"``), else ``None``.

    Surrounding whitespace, a leading currency sign and a trailing period are ignored.
    ``percent="fraction"`` reads ``"45%"`` as 0.45. Values are exact (``Decimal``), so
    huge integers compare exactly; ``"1e999999"`` is a number, ``"nan"`` and ``"inf"`` are
    not.
    """
    text = text.strip().rstrip(".").strip()
    sign = ""
    if text[:1] in "-+\u2212" and text[1:2] in _CURRENCY and text[1:2]:
        sign, text = text[0], text[2:]
    elif text[:1] in _CURRENCY and text:
        text = text[1:]
    match = _NUMBER.fullmatch(sign + text.strip())
    if match is None:
        return None
    try:
        return _to_decimal(match, percent)
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid numbers
        return None


# Multiple-choice letters. Tried in order; the first rule that finds something decides.
_CHOICE_RULES = (
    # The whole answer is the letter: "B", "(b)", "B.", "**B**".
    ("whole answer", r"^[\s*_`\"'(\[]*({L})[\s*_`\"')\].:]*$", re.IGNORECASE),
    # "The answer is (B)", "Answer: B", "correct option is B" (the last such phrase wins).
    (
        "answer phrase",
        r"\b(?:answer|option|choice)\b(?:\s+is)?\s*[:=]?\s*(?:\*\*)?[\s(\[]*(?-i:({L}))\b(?![-'])",
        re.IGNORECASE,
    ),
    # A line that starts with the letter: "B) Paris", "C. 42", "(A) ...".
    ("leading letter", r"^\s*[(\[]?({L})[).\]:]\s", re.MULTILINE),
    # The letter in parentheses anywhere: "... so (C)".
    ("parenthesized letter", r"\(({L})\)", 0),
    # The letter standing alone: "Paris, so I pick C".
    ("standalone letter", r"(?<![\w'-])({L})(?![\w'-])", 0),
)


def compile_choice_rules(letters: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    """The extraction patterns for one set of choice letters."""
    alternatives = "|".join(re.escape(x) for x in sorted(letters, key=len, reverse=True))
    return [
        (label, re.compile(pattern.replace("{L}", alternatives), flags))
        for label, pattern, flags in _CHOICE_RULES
    ]


def extract_choice(
    text: str, letters: Iterable[str], rules: list[tuple[str, re.Pattern[str]]] | None = None
) -> tuple[str | None, str]:
    """The choice letter a response gives, and how it was found (or why not).

    In order, the first that finds something decides: the whole answer is a letter; an
    "answer is X" phrase (the last one wins); letters marked as options, a line starting
    with "X)" or "X." or an "(X)" anywhere (only if they all agree); a standalone capital
    letter (only if exactly one of the choices appears).
    Returns ``(None, reason)`` when nothing, or something ambiguous, is found.
    """
    letters = list(letters)
    upper = {x.upper(): x for x in letters}
    rules = rules if rules is not None else compile_choice_rules(letters)
    marked: list[str] = []
    for label, pattern in rules:
        if label == "standalone letter" and marked:
            break  # letters marked as options decide; a bare letter is the last resort
        found = [upper.get(m.group(1).upper(), m.group(1)) for m in pattern.finditer(text)]
        if not found:
            continue
        if label == "whole answer":
            return found[0], label
        if label == "answer phrase":
            return found[-1], label
        if label == "standalone letter":
            return _unique(found, label)
        marked += found
    return _unique(marked, "marked letter")


def _unique(found: list[str], label: str) -> tuple[str | None, str]:
    distinct = list(dict.fromkeys(found))
    if len(distinct) == 1:
        return distinct[0], label
    if distinct:
        return None, f"ambiguous: {label}s {', '.join(distinct)}"
    return None, "no choice letter found"
