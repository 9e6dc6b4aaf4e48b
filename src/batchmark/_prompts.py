"""Prompt variants: Jinja2 templates compiled once, rendered per dataset row.

A variant renders to ``(system, messages)``: ``system`` is a string or ``None`` and
``messages`` is the Messages API list ``[{"role": ..., "content": str}, ...]``.

Template variables are every field of the row at top level, plus ``row`` (the whole row
as a dict) and ``row_id`` (its id); those two names win over columns of the same name.
Undefined variables are errors (``StrictUndefined``), never silent blanks. Rendering is
deterministic: the ``random`` filter and the ``lipsum`` global are removed, since a
prompt that changes between renders would defeat the response cache.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta

from batchmark._errors import RenderError

if TYPE_CHECKING:
    from batchmark._config import EvalSpec, PromptVariant
    from batchmark._datasets import Row

__all__ = [
    "RESERVED_VARIABLES",
    "CompiledVariant",
    "TemplatePart",
    "compile_prompts",
    "compile_variant",
    "is_static",
    "parse_template",
    "render",
]

RESERVED_VARIABLES = ("row", "row_id")
"""Variables batchmark adds to every row's template context."""


def _make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )
    env.filters.pop("random", None)
    env.globals.pop("lipsum", None)
    return env


ENV = _make_environment()
_GLOBALS = frozenset(ENV.globals)
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")


def plain_globals() -> dict[str, Any]:
    """The environment's globals as a plain dict, for a template's ``globals``.

    Jinja2 gives each template a ``ChainMap`` over the environment's globals and copies
    it into every render's context; iterating a ChainMap costs more than rendering a
    short prompt. A plain dict holds the same names (globals are fixed at start-up).
    """
    return dict(ENV.globals)


def parse_template(source: str) -> frozenset[str]:
    """Check a template and return the variables it reads from the row.

    Raises ``jinja2.TemplateSyntaxError`` (with ``lineno``) on bad syntax, and its
    subclass ``TemplateAssertionError`` for an unknown filter or test.
    """
    ast = ENV.parse(source)
    ENV.compile(ast)  # unknown filters and tests are found here, not by the parser
    return frozenset(jinja2.meta.find_undeclared_variables(ast) - _GLOBALS)


@dataclass(frozen=True, slots=True)
class TemplatePart:
    """One compiled template: a system prompt or one message's content."""

    template: jinja2.Template
    where: str
    """Where the template comes from: ``prompts[0].system`` or a template file path."""
    file: str
    """The file to name in errors: the template file, else the config file."""
    variables: frozenset[str]
    """Row variables the template reads; empty means the text is the same for every row."""
    text: str | None
    """The rendered text when the template is static, else ``None``."""

    @property
    def static(self) -> bool:
        return not self.variables

    def render(self, context: dict[str, Any], variant: str, row_id: str) -> str:
        if self.text is not None:
            return self.text
        try:
            return self.template.render(context)
        except jinja2.UndefinedError as err:
            raise self._error(err, variant, row_id, context, undefined=True) from None
        except Exception as err:  # a filter or test failed on this row's data
            raise self._error(err, variant, row_id, context, undefined=False) from None

    def _error(
        self, err: Exception, variant: str, row_id: str, context: dict[str, Any], undefined: bool
    ) -> RenderError:
        message = str(err)
        line = _template_line(err, self.template.filename)
        at = f"{self.where}" + (f" line {line}" if line else "")
        match = _UNDEFINED_RE.match(message)
        if undefined and match:
            detail = f"{at}: undefined variable {match.group(1)!r}"
        elif undefined:
            detail = f"{at}: {message}"
        else:
            detail = f"{at}: {type(err).__name__}: {message}"
        names = sorted(k for k in context if isinstance(k, str))
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        hint = f"variables available for this row: {shown}"
        return RenderError(self.file, variant, row_id, detail, hint)


def _template_line(err: Exception, filename: str | None) -> int | None:
    """The template line of the failing expression, from jinja2's rewritten traceback."""
    if not filename:
        return None
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _compile(source: str, where: str, file: str) -> TemplatePart:
    variables = parse_template(source)
    code = ENV.compile(source, name=where, filename=where)
    template = ENV.template_class.from_code(ENV, code, plain_globals(), None)
    text = template.render({}) if not variables else None
    return TemplatePart(template, where, file, variables, text)


@dataclass(frozen=True, slots=True)
class CompiledVariant:
    """A prompt variant with its templates compiled."""

    name: str
    system: TemplatePart | None
    messages: tuple[tuple[str, TemplatePart], ...]
    """``(role, content template)`` pairs in order."""

    def render(self, row: Row) -> tuple[str | None, list[dict[str, str]]]:
        """Render for one row: ``(system or None, messages)``.

        Raises ``RenderError`` naming the variant, the row id, the template and the
        variable; also when a message renders to only whitespace (the API refuses it).
        """
        context = {**row.data, "row": row.data, "row_id": row.id}
        system = None
        if self.system is not None:
            system = self.system.render(context, self.name, row.id) or None
        messages = []
        for role, part in self.messages:
            content = part.render(context, self.name, row.id)
            if not content.strip():
                raise RenderError(
                    part.file,
                    self.name,
                    row.id,
                    f"{part.where}: the {role} message rendered to an empty string",
                    "the API refuses empty messages; check the row's data or the template",
                )
            messages.append({"role": role, "content": content})
        return system, messages


def compile_variant(
    variant: PromptVariant,
    config_file: str,
    sources: dict[str, str] | None = None,
    index: int | None = None,
) -> CompiledVariant:
    """Compile one variant's templates.

    ``sources`` maps absolute template file paths to their text (``EvalSpec.sources``);
    a file not in it is read from disk. ``index`` (the variant's position in the config)
    only makes error messages point at ``prompts[index]``.
    """
    sources = sources or {}
    index_where = f"prompts[{index if index is not None else repr(variant.name)}]"

    def part(inline: str | None, file: str | None, field: str) -> TemplatePart | None:
        if file is not None:
            text = sources.get(file)
            if text is None:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
            return _compile(text, file, file)
        if inline is not None:
            return _compile(inline, f"{index_where}.{field}", config_file)
        return None

    system = part(variant.system, variant.system_file, "system")
    if variant.messages is not None:
        messages = tuple(
            (m.role, _compile(m.content, f"{index_where}.messages[{i}].content", config_file))
            for i, m in enumerate(variant.messages)
        )
    else:
        user = part(variant.user, variant.user_file, "user")
        assert user is not None  # the config guarantees one of user, user_file, messages
        messages = (("user", user),)
    return CompiledVariant(variant.name, system, messages)


def compile_prompts(spec: EvalSpec) -> dict[str, CompiledVariant]:
    """Compile every variant of a spec, keyed by variant name (in config order)."""
    sources = dict(spec.sources)
    return {
        v.name: compile_variant(v, str(spec.path), sources, i) for i, v in enumerate(spec.prompts)
    }


def render(variant: CompiledVariant, row: Row) -> tuple[str | None, list[dict[str, str]]]:
    """Render a compiled variant for one row; see ``CompiledVariant.render``."""
    return variant.render(row)


def is_static(variant: CompiledVariant, part: str = "system") -> bool:
    """Whether a part of the variant reads no row variables (same text for every row).

    ``part`` is ``"system"`` (a variant without a system prompt is not static: there is
    nothing to cache) or ``"messages"`` (every message template is static).
    """
    if part == "system":
        return variant.system is not None and variant.system.static
    if part == "messages":
        return all(p.static for _, p in variant.messages)
    raise ValueError(f"unknown part {part!r}: expected 'system' or 'messages'")
