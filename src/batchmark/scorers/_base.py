"""The scorer's data: one context in, one score out, and the options base class.

A plain scorer is anything with a ``name`` and a ``score(ctx) -> Score`` method. Built-in
scorers are pydantic models (``ScorerOptions`` subclasses): their fields are their YAML
options, so a config round-trips (``to_config``) and has a JSON Schema
(``model_json_schema``). Work that only depends on the options (compiling templates and
patterns, reading schema files) happens once, when the model is validated.

``ScorerOptions.kind`` says how the harness runs a scorer (``ScorerKind``); the batched
and combining kinds have their own base classes in ``_kinds``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import jinja2
from pydantic import BaseModel, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

from batchmark._templates import ENV, parse_template, plain_globals

__all__ = [
    "Score",
    "ScoreContext",
    "Scorer",
    "ScorerKind",
    "ScorerOptions",
    "Template",
    "base_dir_of",
    "compile_pattern",
    "compile_template",
    "field_error",
    "no_response",
    "short",
]


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """Everything a scorer may look at for one item (one response to one request)."""

    row: Mapping[str, Any]
    """The dataset row's template variables (every column, plus mapped names)."""
    row_id: str
    variant: str
    model_key: str
    epoch: int
    request: Mapping[str, Any]
    """The Messages API params that were sent (``system``, ``messages``, ...)."""
    response: Mapping[str, Any]
    """The normalized response record: ``status`` (``succeeded``, ``errored``, ``expired``,
    ``canceled``, ``missing``), ``text``, ``thinking`` (the thinking blocks' text, apart
    from the answer, or None), ``tool_calls`` ``[{id, name, input}]``, ``stop_reason``,
    ``usage``, ``error_type``, ``error_message``, ..."""

    @property
    def status(self) -> str:
        """The response's status: ``succeeded``, ``errored``, ``expired``, ``canceled``, ..."""
        return str(self.response.get("status") or "missing")

    @property
    def text(self) -> str:
        """The answer: the response's text blocks (``""`` when it has none), never its
        thinking."""
        return self.response.get("text") or ""


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's result for one item.

    ``value`` is in 0..1 for every built-in scorer; ``passed`` says whether the item
    passed. An ``invalid`` score (a judge's unparseable verdict, a crashed custom scorer)
    has ``value=None`` and ``passed=None``: counted and shown, never a pass.
    """

    value: float | None
    passed: bool | None
    explanation: str = ""
    """Why: the mismatch, the schema error's path, the judge's reasoning."""
    invalid: bool = False
    answer: Any = None
    """What was extracted from the response and compared (for reports)."""

    @classmethod
    def failure(cls, explanation: str, answer: Any = None) -> Score:
        """A failed item: value 0, not passed."""
        return cls(0.0, False, explanation, answer=answer)

    @classmethod
    def success(cls, explanation: str = "", answer: Any = None) -> Score:
        """A passed item: value 1."""
        return cls(1.0, True, explanation, answer=answer)

    @classmethod
    def of_invalid(cls, explanation: str) -> Score:
        """An item the scorer could not judge: counted as invalid, never a pass."""
        return cls(None, None, explanation, invalid=True)


class ScorerKind(enum.Enum):
    """How the harness runs a scorer; each kind has its base class."""

    PLAIN = "plain"
    """``score(ctx)``: a pure function of one item (``ScorerOptions``, a function, any
    object with ``name`` and ``score``)."""
    BATCHED = "batched"
    """``build_request(ctx)`` per item, sent in a second batch; ``parse(ctx, answer)``
    per answer (``BatchedScorer``; the judge is one)."""
    COMBINING = "combining"
    """``combine(scores, ctx)`` over the item's scores from the scorers it
    ``depends_on`` (``CombiningScorer``; the judge panel is one)."""


@runtime_checkable
class Scorer(Protocol):
    """What ``build_scorers`` returns: a named column of per-item scores."""

    name: str
    """The column name; unique in a config."""

    def score(self, ctx: ScoreContext) -> Score:
        """Score one item; a pure function of the context."""
        ...


def no_response(ctx: ScoreContext) -> Score | None:
    """The failure score of an item whose request got no response, else ``None``.

    Deterministic scorers count a missing response as a failure (value 0, not passed),
    not as invalid: the model did not produce a passing answer.
    """
    response = ctx.response
    status = response.get("status")
    if status == "succeeded":
        return None
    detail = str(status or "missing")
    if response.get("error_type") or response.get("error_message"):
        error = ": ".join(
            str(x) for x in (response.get("error_type"), response.get("error_message")) if x
        )
        detail += f" ({error})"
    return Score.failure(f"no response: {detail}")


def short(value: Any, width: int = 80) -> str:
    """``repr`` cut to ``width`` characters, for explanations."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"


def field_error(field: str, message: str, hint: str = "") -> PydanticCustomError:
    """A validation error about one option, for ``build_scorers`` to name precisely."""
    return PydanticCustomError("batchmark", "{msg}", {"msg": message, "field": field, "hint": hint})


def base_dir_of(info: ValidationInfo) -> Path:
    """The folder that relative paths in scorer options are resolved against."""
    context = info.context or {}
    return Path(context.get("base_dir") or ".")


_SIMPLE_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


class Template:
    """A Jinja2 template over a row (``"{{ label }}"``, ``"{{ row['a b'] }}"``), compiled once.

    Undefined variables are errors; it renders in Jinja's sandbox, as prompts do
    (``batchmark._templates.ENV``). ``"{{ name }}"`` alone skips Jinja2 (a lookup and
    ``str``, which is what Jinja2 would print) since it is by far the common case.
    """

    __slots__ = ("source", "variables", "_template", "_simple", "_static", "_meta")

    def __init__(self, source: str) -> None:
        self.source = source
        self.variables = parse_template(source)  # raises TemplateSyntaxError
        """The variables the template reads."""
        match = _SIMPLE_VARIABLE.match(source)
        self._simple = match.group(1) if match else None
        self._template = ENV.from_string(source, globals=None)
        self._template.globals = plain_globals()  # see _prompts.plain_globals
        self._static = self._template.render({}) if not self.variables else None
        self._meta = bool(self.variables & {"row", "row_id"})

    def render_row(self, ctx: ScoreContext) -> str:
        """Render over an item's row: its fields, plus ``row`` and ``row_id`` as in prompts."""
        if self._meta:
            return self.render({**ctx.row, "row": ctx.row, "row_id": ctx.row_id})
        return self.render(ctx.row)

    def render(self, context: Any) -> str:
        """Render over ``context``; raises ``ValueError`` naming an undefined variable."""
        if self._static is not None:
            return self._static
        if self._simple is not None:
            try:
                value = context[self._simple]
            except KeyError:
                raise ValueError(f"undefined variable {self._simple!r}") from None
            return value if isinstance(value, str) else str(value)
        try:
            return self._template.render(context)
        except jinja2.UndefinedError as err:
            raise ValueError(str(err)) from None
        except Exception as err:  # a filter failed on this row's data
            raise ValueError(f"{type(err).__name__}: {err}") from None


def compile_template(source: str, field: str) -> Template:
    """Compile a template option, or raise a validation error naming ``field``."""
    try:
        return Template(source)
    except jinja2.TemplateSyntaxError as err:
        raise field_error(
            field, f"template syntax error: {err.message} (line {err.lineno})"
        ) from None
    except Exception as err:  # a template that reads no variable is rendered now
        message = f"template cannot be rendered: {type(err).__name__}: {err}"
        raise field_error(field, message) from None


def compile_pattern(source: str, field: str) -> re.Pattern[str]:
    """Compile a regex option, or raise a validation error naming ``field``."""
    try:
        return re.compile(source)
    except re.error as err:
        raise field_error(field, f"invalid regular expression: {err}") from None


class ScorerOptions(BaseModel):
    """Base class of a scorer whose options are its pydantic fields: a plain scorer, and
    the base of the other kinds (``BatchedScorer``, ``CombiningScorer``).

    Subclasses set ``type_name`` (the name configs use), declare their options as fields
    with docstrings, compile what they need in ``model_post_init`` or an ``after``
    validator (``base_dir_of(info)`` resolves paths), and implement ``score``.
    ``score`` runs once per item: read compiled private attributes through
    ``self.__pydantic_private__[...]`` there (pydantic's ``__getattr__``, which
    ``self._x`` goes through, costs ~1 µs a read).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )
    type_name: ClassVar[str] = ""
    kind: ClassVar[ScorerKind] = ScorerKind.PLAIN
    """How the harness runs it: set by the kind's base class, never by a scorer."""

    name: str = ""
    """The column name (default: the scorer's type name); unique in a config."""

    def model_post_init(self, context: Any, /) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.type_name)

    def score(self, ctx: ScoreContext) -> Score:  # pragma: no cover - abstract
        """Score one item."""
        raise NotImplementedError

    @property
    def row_variables(self) -> frozenset[str]:
        """Row fields this scorer's templates read (to check against the dataset's columns)."""
        found: set[str] = set()
        for value in (self.__pydantic_private__ or {}).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Template):
                    found |= item.variables
        return frozenset(found - {"row", "row_id"})

    def __eq__(self, other: object) -> bool:
        """Equal when of the same type with the same options (compiled state aside)."""
        if type(other) is not type(self):
            return NotImplemented
        return self.model_dump() == other.model_dump()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def to_config(self) -> dict[str, Any]:
        """The config item that builds this scorer again: ``{type_name: {options}}``."""
        options = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if options.get("name") == self.type_name:
            del options["name"]
        return {self.type_name: options}
