"""LLM-as-judge: building the judge's request and reading its verdict.

A judge is a batched scorer (``BatchedScorer``): the harness asks it for a request per
item (``build_request``), sends those requests as a second batch, and hands each judge
response back to ``parse``. The verdict is asked for as a forced tool call
(``submit_verdict``) whose input schema is the verdict's, so parsing never guesses: a
missing call, a grade outside the scale, a score of the wrong type or out of range is an
``invalid`` score, counted and shown, never a pass.

Value and pass: with ``grades`` the value is the grade's value; with ``range: [lo, hi]``
it is the raw score mapped to 0..1, ``(score - lo) / (hi - lo)``, and ``answer`` keeps
the raw score. ``pass_threshold`` is in the verdict's own units (a grade value, or a raw
score), and defaults to the middle of the scale.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from batchmark._errors import ConfigError
from batchmark.scorers._base import (
    Score,
    ScoreContext,
    Template,
    base_dir_of,
    compile_template,
    field_error,
    no_response,
    short,
)
from batchmark.scorers._kinds import BatchedScorer

__all__ = ["VERDICT_TOOL", "JudgeScorer", "prompt_text"]

VERDICT_TOOL = "submit_verdict"
"""The name of the tool a judge is forced to call."""

JUDGE_VARIABLES = frozenset(
    {"row", "row_id", "prompt", "response", "reference", "variant", "model", "tool_calls"}
)
"""What a rubric can read besides the row's fields (these win over columns of that name)."""

_RESERVED_PARAMS = ("model", "messages", "system", "tools", "tool_choice", "stream")
_TRUE = {"true", "yes", "pass", "passed", "correct", "1"}
_FALSE = {"false", "no", "fail", "failed", "incorrect", "0"}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append(block.get("text", ""))
        elif kind == "tool_use":
            parts.append(f"[tool_use {block.get('name')}: {json.dumps(block.get('input'))}]")
        elif kind == "tool_result":
            parts.append(f"[tool_result: {_content_text(block.get('content'))}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    return "\n".join(parts)


def prompt_text(request: Mapping[str, Any]) -> str:
    """The request a candidate got, as text for a rubric's ``{{ prompt }}``.

    A lone user message without a system prompt is its content; anything else is a
    transcript of ``[system]``, ``[user]``, ``[assistant]`` sections.
    """
    system = request.get("system")
    messages = request.get("messages") or []
    if not system and len(messages) == 1 and messages[0].get("role") == "user":
        return _content_text(messages[0].get("content"))
    parts = [f"[system]\n{_content_text(system)}"] if system else []
    parts += [f"[{m.get('role')}]\n{_content_text(m.get('content'))}" for m in messages]
    return "\n\n".join(parts)


class JudgeScorer(BatchedScorer):
    """An LLM judge: a rubric rendered per item, a verdict by forced tool call."""

    type_name = "judge"

    model: str
    """The judge model's id, e.g. ``claude-sonnet-4-6``."""
    rubric: str | None = None
    """The judge's instructions, a Jinja2 template (see the rubric variables)."""
    rubric_file: str | None = None
    """A file holding the rubric template, relative to the config."""
    system: str | None = None
    """An optional system prompt for the judge (a Jinja2 template too)."""
    params: dict[str, Any] = {}
    """Messages API params for the judge: ``max_tokens`` (default 1024), ``temperature``..."""
    grades: dict[str, float] | None = None
    """A grade scale, grade -> value in 0..1, e.g. ``{A: 1.0, B: 0.5, C: 0.0}``."""
    range_: tuple[float, float] | None = Field(None, alias="range")
    """A numeric scale ``[lo, hi]`` instead of grades, e.g. ``[1, 10]``."""
    pass_threshold: float | None = None
    """The lowest passing verdict: a grade value, or a raw score for a range (default:
    the middle of the scale)."""
    reference: str | None = None
    """A Jinja2 template over the row: the reference answer the rubric can show."""
    human_label_field: str | None = None
    """A row field with a human's verdict; the report gives the judge's agreement with it."""

    _rubric: Template = PrivateAttr()
    _system: Template | None = PrivateAttr(default=None)
    _reference: Template | None = PrivateAttr(default=None)
    _tool: dict[str, Any] = PrivateAttr(default_factory=dict)
    _verdict: Any = PrivateAttr(default=None)
    _threshold: float = PrivateAttr(default=0.5)

    @field_validator("grades", mode="before")
    @classmethod
    def _grade_keys(cls, value: Any) -> Any:
        if isinstance(value, Mapping):  # YAML reads `1: 1.0` or `yes: 1` as non-strings
            return {
                ("true" if k is True else "false" if k is False else str(k)): v
                for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> JudgeScorer:
        self._compile_templates(info)
        self._compile_scale()
        params = dict(self.params)
        for key in _RESERVED_PARAMS:
            if key in params:
                raise field_error(f"params.{key}", "set by the judge itself; remove it")
        if "thinking" in params:
            raise field_error("params.thinking", "a forced tool call cannot use extended thinking")
        return self

    def _compile_templates(self, info: ValidationInfo) -> None:
        if (self.rubric is None) == (self.rubric_file is None):
            raise field_error("rubric", "give exactly one of `rubric` and `rubric_file`")
        if self.rubric_file is not None:
            path = base_dir_of(info) / self.rubric_file
            try:
                source = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise field_error("rubric_file", f"file not found: {path}") from None
            except (OSError, UnicodeDecodeError) as err:
                raise field_error("rubric_file", f"cannot read {path}: {err}") from None
            self._rubric = compile_template(source, "rubric_file")
        else:
            self._rubric = compile_template(self.rubric or "", "rubric")
        if self.system is not None:
            self._system = compile_template(self.system, "system")
        if self.reference is not None:
            self._reference = compile_template(self.reference, "reference")
        used = self._rubric.variables | (self._system.variables if self._system else frozenset())
        field = "rubric" if self.rubric is not None else "rubric_file"
        if "response" not in used:
            raise field_error(field, "the rubric never shows the response: use {{ response }}")
        if "reference" in used and self._reference is None:
            raise field_error("reference", "the rubric uses {{ reference }}: set `reference`")

    def _compile_scale(self) -> None:
        if self.grades is not None and self.range_ is not None:
            raise field_error("range", "give `grades` or `range`, not both")
        if self.range_ is not None:
            lo, hi = self.range_
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise field_error("range", f"need finite lo < hi, got [{lo}, {hi}]")
            verdict: dict[str, Any] = {"type": "number", "minimum": lo, "maximum": hi}
            describe = f"a score from {_num(lo)} (worst) to {_num(hi)} (best)"
            key = "score"
            self._threshold = (
                self.pass_threshold if self.pass_threshold is not None else (lo + hi) / 2
            )
        else:
            grades = self.grades if self.grades is not None else {"PASS": 1.0, "FAIL": 0.0}
            if len(grades) < 2:
                raise field_error("grades", "give at least two grades")
            bad = [g for g, v in grades.items() if not 0.0 <= v <= 1.0]
            if bad:
                raise field_error(f"grades.{bad[0]}", "grade values are in 0..1")
            verdict = {"type": "string", "enum": list(grades)}
            describe = "one of " + ", ".join(grades)
            key = "grade"
            self._threshold = self.pass_threshold if self.pass_threshold is not None else 0.5
        schema = {
            "type": "object",
            "properties": {
                "reasoning": {"type": "string", "description": "Why, briefly, before the verdict."},
                key: {**verdict, "description": f"The verdict: {describe}."},
            },
            "required": ["reasoning", key],
        }
        self._tool = {
            "name": VERDICT_TOOL,
            "description": "Submit your verdict on the response, with your reasoning first.",
            "input_schema": schema,
        }
        self._verdict = Draft202012Validator(schema)

    @property
    def verdict_tool(self) -> dict[str, Any]:
        """The tool definition the judge is forced to call."""
        return self._tool

    @property
    def row_variables(self) -> frozenset[str]:
        """Row fields the templates read (check them against the dataset's columns)."""
        return super().row_variables - JUDGE_VARIABLES

    def build_request(self, ctx: ScoreContext) -> dict[str, Any] | None:
        """The judge's Messages params for one item; ``None`` when the candidate failed.

        Raises ``ConfigError`` when a template cannot be rendered for the item's row.
        """
        if ctx.response.get("status") != "succeeded":
            return None
        context = self._context(ctx)
        rubric = self._render(self._rubric, context, ctx, "rubric")
        if not rubric.strip():
            raise ConfigError(None, f"scorer {self.name!r}, row {ctx.row_id!r}: empty rubric")
        request: dict[str, Any] = {"model": self.model, "max_tokens": 1024, **self.params}
        if self._system is not None:
            system = self._render(self._system, context, ctx, "system")
            if system.strip():
                request["system"] = system
        request["messages"] = [{"role": "user", "content": rubric}]
        request["tools"] = [self._tool]
        request["tool_choice"] = {"type": "tool", "name": VERDICT_TOOL}
        return request

    def parse(self, ctx: ScoreContext, judge_response: Mapping[str, Any]) -> Score:
        """The score a judge's response gives; ``invalid`` unless its verdict is sound."""
        failed = no_response(ctx)
        if failed is not None:
            return failed
        status = judge_response.get("status")
        if status != "succeeded":
            error = judge_response.get("error_type") or judge_response.get("error_message") or ""
            return Score.of_invalid(
                f"judge request {status or 'missing'}" + (f": {error}" if error else "")
            )
        calls = [c for c in judge_response.get("tool_calls") or [] if c.get("name") == VERDICT_TOOL]
        if not calls:
            text = judge_response.get("text") or ""
            return Score.of_invalid(f"no {VERDICT_TOOL} call in the judge's response {short(text)}")
        verdict = calls[0].get("input")
        errors = list(self._verdict.iter_errors(verdict))
        if errors:
            error = best_match(errors)
            return Score.of_invalid(
                f"bad verdict at {error.json_path}: {short(error.message, 160)}"
            )
        reasoning = verdict["reasoning"]
        if self.range_ is not None:
            lo, hi = self.range_
            raw = verdict["score"]
            value = (raw - lo) / (hi - lo)
            return Score(value, raw >= self._threshold, reasoning, answer=raw)
        grade = verdict["grade"]
        value = (self.grades or {"PASS": 1.0, "FAIL": 0.0})[grade]
        return Score(value, value >= self._threshold, reasoning, answer=grade)

    @property
    def agreement_field(self) -> str | None:
        """``human_label_field``: the judge's agreement with it goes in the report."""
        return self.human_label_field

    def agreement_pair(self, ctx: ScoreContext, score: Score) -> tuple[Any, Any] | None:
        """``(judge's label, human's label)`` for agreement, or ``None`` (no label, invalid).

        A human label that is a grade is compared with the grade; a number (with a range)
        with the raw score; a yes/no-like label (true, pass, correct, 1, ...) with passed.
        """
        if self.human_label_field is None or score.invalid:
            return None
        label = ctx.row.get(self.human_label_field)
        if label is None or (isinstance(label, str) and not label.strip()):
            return None
        text = str(label).strip()
        if self.range_ is None and not isinstance(label, bool):
            grades = self.grades or {"PASS": 1.0, "FAIL": 0.0}
            matched = next((g for g in grades if g.casefold() == text.casefold()), None)
            if matched is not None:
                return score.answer, matched
        if self.range_ is not None and not isinstance(label, bool):
            try:
                return score.answer, float(text)
            except ValueError:
                pass
        if isinstance(label, bool) or text.casefold() in _TRUE | _FALSE:
            human = label if isinstance(label, bool) else text.casefold() in _TRUE
            return bool(score.passed), human
        return score.answer, text

    def _context(self, ctx: ScoreContext) -> dict[str, Any]:
        response = ctx.response
        text = response.get("text") or ""
        tool_calls = response.get("tool_calls") or []
        if not text and tool_calls:
            text = json.dumps(tool_calls, ensure_ascii=False)
        context = {**ctx.row, "row": ctx.row, "row_id": ctx.row_id, "variant": ctx.variant}
        context.update(model=ctx.model_key, prompt=prompt_text(ctx.request), response=text)
        context["tool_calls"] = tool_calls
        context["reference"] = (
            self._render(self._reference, context, ctx, "reference") if self._reference else None
        )
        return context

    def _render(self, template: Template, context: Any, ctx: ScoreContext, field: str) -> str:
        try:
            return template.render(context)
        except ValueError as err:
            raise ConfigError(
                None, f"scorer {self.name!r}, row {ctx.row_id!r}: {field}: {err}"
            ) from None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
