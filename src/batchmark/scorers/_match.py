"""Deterministic text scorers: exact_match, includes, regex, numeric, choice.

Each is a pydantic model whose fields are its YAML options. Targets are Jinja2
templates over the row (``"{{ label }}"``). A response that is not ``succeeded`` fails
(value 0) with ``no response: <status>``; a target that cannot be rendered for a row (an
undefined variable) makes that item ``invalid``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, localcontext
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from batchmark.scorers._base import (
    Score,
    ScoreContext,
    ScorerOptions,
    Template,
    compile_pattern,
    compile_template,
    field_error,
    no_response,
    short,
)
from batchmark.scorers._text import (
    NORMALIZERS,
    Normalizer,
    compile_choice_rules,
    extract_choice,
    find_numbers,
    make_normalizer,
    parse_number,
)

__all__ = ["Choice", "ExactMatch", "Includes", "Numeric", "RegexMatch"]


def _normalizer_names(value: bool | list[Normalizer]) -> list[str]:
    if value is True:
        return list(NORMALIZERS)
    if value is False:
        return []
    return [n for n in NORMALIZERS if n in value]


def _group(match: re.Match[str], group: int | str | None) -> str:
    """The answer a match captured: ``group``, else the ``answer`` group, else group 1."""
    if group is not None:
        return match.group(group) or ""
    if "answer" in match.re.groupindex:
        return match.group("answer") or ""
    return (match.group(1) if match.re.groups else match.group(0)) or ""


def _check_group(pattern: re.Pattern[str], group: int | str | None, field: str) -> None:
    if group is None:
        return
    if isinstance(group, int) and not 0 <= group <= pattern.groups:
        raise field_error(field, f"the pattern has {pattern.groups} group(s), not {group}")
    if isinstance(group, str) and group not in pattern.groupindex:
        raise field_error(field, f"the pattern has no group named {group!r}")


class _TargetScorer(ScorerOptions):
    """Shared by the scorers that compare the response with a target from the row."""

    target: str | list[str]
    """Jinja2 template(s) over the row, e.g. ``"{{ label }}"``; a list accepts any of them."""
    normalize: bool | list[Normalizer] = ["strip"]
    """Normalizers applied to both sides: ``true`` (all), ``false`` (none) or a list of
    ``nfkc``, ``lower``, ``strip_punctuation``, ``collapse_whitespace``, ``strip``."""

    _targets: list[Template] = PrivateAttr(default_factory=list)
    _norm: Callable[[str], str] = PrivateAttr(default=str)
    _applied_text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _compile_targets(self) -> _TargetScorer:
        sources = [self.target] if isinstance(self.target, str) else self.target
        if not sources:
            raise field_error("target", "give at least one target")
        field = "target" if isinstance(self.target, str) else "target[{}]"
        self._targets = [compile_template(s, field.format(i)) for i, s in enumerate(sources)]
        names = _normalizer_names(self.normalize)
        self._norm = make_normalizer(names)
        self._applied_text = f" (after {', '.join(names)})" if names else ""
        return self

    def _render_targets(self, ctx: ScoreContext) -> list[str] | Score:
        private = self.__pydantic_private__  # read per item: skip pydantic's __getattr__
        norm = private["_norm"]
        try:
            return [norm(t.render_row(ctx)) for t in private["_targets"]]
        except ValueError as err:
            return Score.of_invalid(f"target: {err}")

    def _applied(self) -> str:
        """`` (after strip, lower)``: the normalizers named in a failure's explanation."""
        return self.__pydantic_private__["_applied_text"]


class ExactMatch(_TargetScorer):
    """Passes when the (normalized, optionally extracted) response equals the target."""

    type_name = "exact_match"

    extract: str | None = None
    """A regex that finds the answer in the response first (its ``answer`` group, else
    group 1, else the whole match); no match fails the item."""

    _extract: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile_extract(self) -> ExactMatch:
        if self.extract is not None:
            self._extract = compile_pattern(self.extract, "extract")
        return self

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        if (failed := no_response(ctx)) is not None:
            return failed
        targets = self._render_targets(ctx)
        if isinstance(targets, Score):
            return targets
        private = self.__pydantic_private__
        text = ctx.text
        extract = private["_extract"]
        if extract is not None:
            match = extract.search(text)
            if match is None:
                return Score.failure(f"extract pattern found nothing in {short(text)}")
            text = _group(match, None)
        answer = private["_norm"](text)
        if answer in targets:
            return Score.success(answer=answer)
        expected = short(targets[0]) if len(targets) == 1 else f"one of {short(targets)}"
        return Score.failure(f"expected {expected}, got {short(answer)}{self._applied()}", answer)


class Includes(_TargetScorer):
    """Passes when the (normalized) response contains the target (any, or all, of a list)."""

    type_name = "includes"

    mode: Literal["any", "all"] = "any"
    """With a list of targets: whether any one or all of them must appear."""

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        if (failed := no_response(ctx)) is not None:
            return failed
        targets = self._render_targets(ctx)
        if isinstance(targets, Score):
            return targets
        text = self.__pydantic_private__["_norm"](ctx.text)
        found = [t for t in targets if t in text]
        ok = bool(found) if self.mode == "any" else len(found) == len(targets)
        if ok:
            return Score.success(answer=found[0] if len(found) == 1 else found)
        missing = [t for t in targets if t not in found]
        what = short(missing[0]) if len(missing) == 1 else short(missing)
        return Score.failure(f"{what} not found in {short(text)}{self._applied()}")


class RegexMatch(ScorerOptions):
    """Passes when the pattern matches (or, with ``target``, when its capture equals it)."""

    type_name = "regex"

    pattern: str
    """A Python regex searched in the response; inline flags like ``(?i)`` work."""
    group: int | str | None = None
    """The group holding the answer (default: ``answer``, else 1, else the whole match)."""
    target: str | None = None
    """A Jinja2 template over the row the captured answer must equal (after ``normalize``)."""
    normalize: bool | list[Normalizer] = ["strip"]
    """Normalizers applied to the capture and the target (see exact_match)."""
    negate: bool = False
    """Pass when the pattern does NOT match (e.g. a phrase the response must not contain)."""

    _pattern: re.Pattern[str] = PrivateAttr()
    _target: Template | None = PrivateAttr(default=None)
    _norm: Callable[[str], str] = PrivateAttr(default=str)

    @model_validator(mode="after")
    def _compile(self) -> RegexMatch:
        self._pattern = compile_pattern(self.pattern, "pattern")
        _check_group(self._pattern, self.group, "group")
        if self.target is not None:
            if self.negate:
                raise field_error("negate", "`negate` and `target` do not go together")
            self._target = compile_template(self.target, "target")
        self._norm = make_normalizer(_normalizer_names(self.normalize))
        return self

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        if (failed := no_response(ctx)) is not None:
            return failed
        private = self.__pydantic_private__
        text = ctx.text
        match = private["_pattern"].search(text)
        if self.negate:
            if match is None:
                return Score.success()
            return Score.failure(f"forbidden match {short(match.group(0))}", match.group(0))
        if match is None:
            return Score.failure(f"pattern {short(self.pattern)} not found in {short(text)}")
        norm, target = private["_norm"], private["_target"]
        answer = norm(_group(match, self.group))
        if target is None:
            return Score.success(answer=answer)
        try:
            expected = norm(target.render_row(ctx))
        except ValueError as err:
            return Score.of_invalid(f"target: {err}")
        if answer == expected:
            return Score.success(answer=answer)
        return Score.failure(f"expected {short(expected)}, captured {short(answer)}", answer)


def _render_target(target: Template, ctx: ScoreContext) -> str | Score:
    """The item's rendered target, or its Score when there is no response or no target."""
    if (failed := no_response(ctx)) is not None:
        return failed
    try:
        return target.render_row(ctx)
    except ValueError as err:
        return Score.of_invalid(f"target: {err}")


class Numeric(ScorerOptions):
    """Passes when the number in the response is within tolerance of the target."""

    type_name = "numeric"

    target: str
    """A Jinja2 template over the row that renders to a number, e.g. ``"{{ answer }}"``."""
    abs_tol: float = Field(0.0, ge=0)
    """Absolute tolerance: pass when ``|answer - target| <= abs_tol`` ..."""
    rel_tol: float = Field(1e-9, ge=0)
    """... or ``<= rel_tol * max(|answer|, |target|)`` (relative tolerance)."""
    pick: Literal["only", "last", "first"] = "last"
    """Which number to take when the response is not just a number: ``last`` (a worked
    answer usually ends with it), ``first``, or ``only`` (fail unless exactly one)."""
    extract: str | None = None
    """A regex that finds the answer first (``answer`` group, else group 1, else match)."""
    percent: Literal["number", "fraction"] = "number"
    """Read ``"45%"`` as 45 (``number``) or as 0.45 (``fraction``); same for the target."""

    _target: Template = PrivateAttr()
    _extract: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> Numeric:
        self._target = compile_template(self.target, "target")
        if self.extract is not None:
            self._extract = compile_pattern(self.extract, "extract")
        return self

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        private = self.__pydantic_private__
        rendered = _render_target(private["_target"], ctx)
        if isinstance(rendered, Score):
            return rendered
        expected = parse_number(rendered, self.percent)
        if expected is None:
            return Score.of_invalid(f"target {short(rendered)} is not a number")
        text = ctx.text
        extract = private["_extract"]
        if extract is not None:
            match = extract.search(text)
            if match is None:
                return Score.failure(f"extract pattern found nothing in {short(text)}")
            text = _group(match, None)
        found = self._answer(text)
        if isinstance(found, str):
            return Score.failure(found)
        answer, written = found
        shown = _as_float(answer)
        if _close(answer, expected, self.abs_tol, self.rel_tol):
            return Score.success(answer=shown)
        return Score.failure(f"expected {rendered.strip()}, got {written.strip()}", shown)

    def _answer(self, text: str) -> tuple[Decimal, str] | str:
        whole = parse_number(text, self.percent)
        if whole is not None:
            return whole, text
        numbers = find_numbers(text, self.percent)
        if not numbers:
            return f"no number in {short(text)}"
        if self.pick == "only" and len(numbers) > 1:
            shown = ", ".join(w for _, w in numbers[:5])
            return f"{len(numbers)} numbers in the response ({shown}), expected one"
        return numbers[0] if self.pick == "first" else numbers[-1]


def _close(a: Decimal, b: Decimal, abs_tol: float, rel_tol: float) -> bool:
    """``math.isclose`` on exact decimals (huge integers compare exactly)."""
    if a == b:
        return True
    try:
        with localcontext() as context:
            context.prec = 60
            diff = abs(a - b)
            return diff <= Decimal(abs_tol) or diff <= Decimal(rel_tol) * max(abs(a), abs(b))
    except ArithmeticError:  # beyond Decimal's exponent range: compare as floats
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)


def _as_float(value: Decimal) -> float | str:
    as_float = float(value)
    return as_float if as_float not in (float("inf"), float("-inf")) else str(value)


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


class Choice(ScorerOptions):
    """Multiple choice: extracts the letter the response picked and compares it."""

    type_name = "choice"

    target: str
    """A Jinja2 template over the row rendering to the correct letter, e.g. ``"{{ answer }}"``."""
    choices: list[str] = ["A", "B", "C", "D"]
    """The letters (or short labels) a response may pick."""

    _target: Template = PrivateAttr()
    _rules: list[tuple[str, re.Pattern[str]]] = PrivateAttr(default_factory=list)
    _upper: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError("give at least two choices")
        if len({v.upper() for v in value}) != len(value):
            raise ValueError("choices must differ (ignoring case)")
        if any(not v.strip() or v != v.strip() for v in value):
            raise ValueError("choices must be non-empty and have no surrounding spaces")
        return value

    @model_validator(mode="after")
    def _compile(self) -> Choice:
        self._target = compile_template(self.target, "target")
        self._rules = compile_choice_rules(self.choices)
        self._upper = {c.upper(): c for c in self.choices}
        return self

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item."""
        private = self.__pydantic_private__
        rendered = _render_target(private["_target"], ctx)
        if isinstance(rendered, Score):
            return rendered
        expected = private["_upper"].get(_nfkc(rendered).strip().strip("()[].").strip().upper())
        if expected is None:
            return Score.of_invalid(f"target {short(rendered)} is not one of {self.choices}")
        answer, how = extract_choice(_nfkc(ctx.text), self.choices, private["_rules"])
        if answer is None:
            return Score.failure(f"{how} in {short(ctx.text)}")
        if answer == expected:
            return Score.success(f"picked {answer} ({how})", answer)
        return Score.failure(f"expected {expected}, picked {answer} ({how})", answer)
