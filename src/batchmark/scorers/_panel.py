"""judge_panel: several judges on one item, combined by mean or majority.

A panel is a combining scorer (``CombiningScorer``): it names judges — batched scorers,
``judge`` or a plugin's own — declared in the same ``scorers:`` list. Each judge is reported in
its own column; the panel's column combines their scores for the item. Invalid verdicts
are left out of the combination (and named in the explanation); if every member is
invalid, so is the panel's score.

- ``mean``: value = mean of the members' values; passed = value >= ``pass_threshold``.
- ``majority``: value = share of members that passed; passed = more than half passed
  (a tie fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from batchmark.scorers._base import Score, ScoreContext, ScorerKind
from batchmark.scorers._kinds import CombiningScorer

__all__ = ["JudgePanel"]


class JudgePanel(CombiningScorer):
    """Combines the scores of other judges of the same list for each item."""

    type_name = "judge_panel"
    depends_kinds: ClassVar[frozenset[ScorerKind]] = frozenset({ScorerKind.BATCHED})
    depends_field: ClassVar[str] = "judges"
    depends_noun: ClassVar[str] = "judge"

    judges: list[str] = Field(min_length=1)
    """Names of the judges (``judge`` scorers of this list) to combine."""
    method: Literal["mean", "majority"] = Field("mean", alias="combine")
    """``mean`` of the values, or ``majority`` vote on passed."""
    pass_threshold: float = Field(0.5, ge=0, le=1)
    """With ``mean``: the lowest passing mean value."""

    @field_validator("judges")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a judge is listed twice")
        return value

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The judges it combines."""
        return tuple(self.judges)

    def combine(self, scores: Mapping[str, Score], ctx: ScoreContext | None = None) -> Score:
        """The panel's score for one item from its judges' scores, keyed by judge name."""
        valid: dict[str, Score] = {}
        invalid: list[str] = []
        for name in self.judges:
            score = scores.get(name)
            if score is None:
                invalid.append(f"{name} (no score)")
            elif score.invalid or score.value is None:
                invalid.append(f"{name} ({score.explanation or 'invalid'})")
            else:
                valid[name] = score
        if not valid:
            return Score.of_invalid("every judge is invalid: " + "; ".join(invalid))
        members = ", ".join(f"{n}={_fmt(s)}" for n, s in valid.items())
        if self.method == "mean":
            value = sum(s.value or 0.0 for s in valid.values()) / len(valid)
            passed = value >= self.pass_threshold
            head = f"mean {value:.3g} of {len(valid)}"
        else:
            yes = sum(1 for s in valid.values() if s.passed)
            value = yes / len(valid)
            passed = 2 * yes > len(valid)
            head = f"{yes} of {len(valid)} passed"
        explanation = f"{head}: {members}"
        if invalid:
            explanation += "; invalid: " + "; ".join(invalid)
        answer = {n: s.answer for n, s in valid.items()}
        return Score(value, passed, explanation, answer=answer)


def _fmt(score: Score) -> str:
    mark = "pass" if score.passed else "fail"
    shown = f"{score.answer}" if score.answer is not None else f"{score.value:.3g}"
    return f"{shown} ({mark})"
