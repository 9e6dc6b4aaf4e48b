"""Prompt variants: Jinja2 templates compiled once, rendered per dataset row.

A variant renders to ``(system, messages)``: ``system`` is a string or ``None`` and
``messages`` is the Messages API list ``[{"role": ..., "content": str}, ...]``. A message
given as content blocks (``BlocksPart``) renders to a list of block *specs* (each block's
template fields rendered), which ``runs._content`` then turns into API blocks.

Template variables are every field of the row at top level, plus ``row`` (the whole row
as a dict) and ``row_id`` (its id); those two names win over columns of the same name.
Undefined variables are errors (``StrictUndefined``), never silent blanks. A null value
(JSON ``null``, a Parquet null, a key that one row lacks while others have it) is
undefined too, whether read as ``{{ q }}``, ``{{ row['q'] }}`` or ``{{ item.q }}``: the
row is refused instead of sending the text ``None``, and ``{% if q is defined %}`` and
``{{ q | default('') }}`` handle it. With ``dataset.null_as_empty: true`` a null renders
as an empty string instead. Rendering is deterministic: the ``random`` filter and the
``lipsum`` global are removed, since a prompt that changes between renders would defeat
the response cache.

Templates come from configs, and configs come from pull requests: every template (the
prompts here, the scorers' targets and rubrics through ``ENV``) runs in Jinja's
immutable sandbox. Attributes starting with ``_`` (``__globals__``, ``__class__``) and
the internals of functions and frames are out of reach, data structures cannot be
changed, ``range`` stops at 100,000 items, and ``*`` and ``**`` refuse results over
``MAX_RESULT_SIZE``. An unsafe access ends the render with ``SecurityError``, which
becomes a ``RenderError`` or ``ConfigError``. Dataset values are only ever values:
nothing in a row is rendered as a template.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

from batchmark._conversations import conversation_of
from batchmark._errors import ConfigError, RenderError

if TYPE_CHECKING:
    from batchmark.config._schema import EvalSpec, PromptVariant
    from batchmark.runs._datasets import Row

__all__ = [
    "RESERVED_VARIABLES",
    "CONVERSATION",
    "BlocksPart",
    "CompiledVariant",
    "ConversationPart",
    "TemplatePart",
    "compile_prompts",
    "compile_variant",
    "is_static",
    "parse_template",
    "render",
]

RESERVED_VARIABLES = ("row", "row_id")
"""Variables batchmark adds to every row's template context."""


class _NullIsMissing(Context):
    """A template context in which a variable holding ``None`` is undefined.

    Jinja looks every variable a template reads up once per render through this
    method, so the check costs one comparison per variable, not a copy of the row.
    """

    def resolve_or_missing(self, key: str) -> Any:
        if key in self.vars:
            return self.vars[key]
        value = self.parent.get(key, missing)
        return missing if value is None else value


class _NullIsEmpty(Context):
    """A template context in which a variable holding ``None`` is ``""``."""

    def resolve_or_missing(self, key: str) -> Any:
        if key in self.vars:
            return self.vars[key]
        value = self.parent.get(key, missing)
        return "" if value is None else value


MAX_RESULT_SIZE = 10_000_000
"""Largest string or list a template's ``*`` may build, and the most bits of a ``**``."""


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox; undefined variables are errors; ``random`` and ``lipsum`` are gone."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.filters.pop("random", None)
        self.globals.pop("lipsum", None)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*`` and ``**``, refusing a result too large to build (``'x' * 10**12``)."""
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_RESULT_SIZE:
                        raise SecurityError(_too_large(f"{len(seq):,} items * {n:,}"))
        elif isinstance(left, int) and isinstance(right, int) and right > 0:
            if left.bit_length() * right > MAX_RESULT_SIZE:
                raise SecurityError(_too_large(f"{left} ** {right:,}"))
        return super().call_binop(context, operator, left, right)


def _too_large(what: str) -> str:
    return f"the result of {what} is too large (over {MAX_RESULT_SIZE:,}); refused"


class _PromptEnvironment(_Environment):
    """For prompt templates: a ``None`` read from the row (a variable, ``row['q']``,
    ``item.q``) is undefined, or ``""`` with ``null_as_empty``."""

    def __init__(self, null_as_empty: bool) -> None:
        super().__init__()
        self.null_as_empty = null_as_empty
        self.context_class = _NullIsEmpty if null_as_empty else _NullIsMissing

    def getitem(self, obj: Any, argument: Any) -> Any:
        try:
            value = obj[argument]  # the common case first: one frame, as in Jinja
        except (AttributeError, TypeError, LookupError):
            value = super().getitem(obj, argument)
        return self._null(obj, argument) if value is None else value

    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        return self._null(obj, attribute) if value is None else value

    def _null(self, obj: Any, name: Any) -> Any:
        return "" if self.null_as_empty else self.undefined(obj=obj, name=name)


ENV = _Environment()
"""Parses every template and renders scorer templates."""
PROMPT_ENVS = {False: _PromptEnvironment(False), True: _PromptEnvironment(True)}
"""Render prompt templates, by ``dataset.null_as_empty``."""
_GLOBALS = frozenset(ENV.globals)
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_NO_KEY_RE = re.compile(r"has no attribute '([^']+)'$")
_NULL_HINT = (
    "a null value counts as missing: set `dataset.null_as_empty: true` to render nulls as "
    "empty strings, or test for it in the template: `{{% if {name} is defined %}}`"
)


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
        names = sorted(k for k in context if isinstance(k, str))
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        hint = f"variables available for this row: {shown}"
        if undefined and match and match.group(1) in context:  # there, but null
            detail = f"{at}: variable {match.group(1)!r} is null or absent in this row"
            hint = _NULL_HINT.format(name=match.group(1))
        elif undefined and match:
            detail = f"{at}: undefined variable {match.group(1)!r}"
        elif undefined:
            detail = f"{at}: {message}"
            key = _NO_KEY_RE.search(message)
            if key and _holds_null(context.get("row"), key.group(1)):
                detail = f"{at}: row[{key.group(1)!r}] is null or absent in this row"
                hint = _NULL_HINT.format(name=f"row[{key.group(1)!r}]")
            elif key:
                hint = "a key whose value is null counts as missing"
        else:
            detail = f"{at}: {type(err).__name__}: {message}"
        return RenderError(self.file, variant, row_id, detail, hint)


def _holds_null(row: Any, key: str) -> bool:
    return isinstance(row, dict) and key in row and row[key] is None


def _template_line(err: Exception, filename: str | None) -> int | None:
    """The template line of the failing expression, from jinja2's rewritten traceback."""
    if not filename:
        return None
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _compile(source: str, where: str, file: str, null_as_empty: bool = False) -> TemplatePart:
    variables = parse_template(source)
    env = PROMPT_ENVS[null_as_empty]
    code = env.compile(source, name=where, filename=where)
    template = env.template_class.from_code(env, code, plain_globals(), None)
    try:
        text = template.render({}) if not variables else None
    except Exception as err:  # unsafe (SecurityError), or a filter failed
        line = _template_line(err, where)
        at = where + (f" line {line}" if line else "")
        raise ConfigError(file, f"{at}: {type(err).__name__}: {err}") from None
    return TemplatePart(template, where, file, variables, text)


BLOCK_TEMPLATED = ("text", "path", "url", "base64", "title", "context")
"""The fields of a content block spec that are templates (``config.ContentBlock``)."""


@dataclass(frozen=True, slots=True)
class BlocksPart:
    """A message's content given as blocks: each block's template fields compiled.

    It renders to a list of block *specs* (``{"type": "image", "path": "a.png"}``), which
    ``runs._content`` turns into API blocks, as it does blocks that come from the data.
    """

    blocks: tuple[tuple[dict[str, Any], tuple[tuple[str, TemplatePart], ...]], ...]
    """Per block: its fixed fields, and ``(field, template)`` pairs."""
    where: str
    file: str
    variables: frozenset[str]
    text: None = None
    """Never a static text: the grid's cache planning stops at block content."""

    @property
    def static(self) -> bool:
        return not self.variables

    def render(self, context: dict[str, Any], variant: str, row_id: str) -> list[dict[str, Any]]:
        out = []
        for fixed, parts in self.blocks:
            block = dict(fixed)
            for name, part in parts:
                block[name] = part.render(context, variant, row_id)
            out.append(block)
        return out


def _compile_blocks(blocks: Any, where: str, file: str, null_as_empty: bool) -> BlocksPart:
    compiled = []
    variables: frozenset[str] = frozenset()
    for j, block in enumerate(blocks):
        spec = block.model_dump(exclude_none=True) if hasattr(block, "model_dump") else block
        fixed = {k: v for k, v in spec.items() if k not in BLOCK_TEMPLATED}
        parts = tuple(
            (k, _compile(spec[k], f"{where}[{j}].{k}", file, null_as_empty))
            for k in BLOCK_TEMPLATED
            if k in spec
        )
        for _, part in parts:
            variables |= part.variables
        compiled.append((fixed, parts))
    return BlocksPart(tuple(compiled), where, file, variables)


@dataclass(frozen=True, slots=True)
class ConversationPart:
    """A ``{field: NAME}`` entry of a variant's messages: the row's own conversation
    (``_conversations``). Never static: it is different for every row."""

    field: str
    where: str
    """``prompts[0].messages[2]``."""
    file: str | None
    """The dataset file, named in errors about a row's conversation."""
    text: None = None
    static: bool = False

    @property
    def variables(self) -> frozenset[str]:
        return frozenset({self.field})


CONVERSATION = "conversation"
"""The role slot of a ``ConversationPart`` in ``CompiledVariant.messages``."""


@dataclass(frozen=True, slots=True)
class CompiledVariant:
    """A prompt variant with its templates compiled."""

    name: str
    system: TemplatePart | None
    messages: tuple[tuple[str, TemplatePart | BlocksPart | ConversationPart], ...]
    """``(role, content template)`` pairs in order; ``(CONVERSATION, part)`` where the
    row's conversation goes."""

    def render(self, row: Row) -> tuple[str | None, list[dict[str, Any]]]:
        """Render for one row: ``(system or None, messages)``.

        Raises ``RenderError`` naming the variant, the row id, the template and the
        variable; also when a message renders to only whitespace (the API refuses it),
        and when the row's conversation is malformed (naming the field and position).
        """
        context = {**row.data, "row": row.data, "row_id": row.id}
        system = None
        if self.system is not None:
            system = self.system.render(context, self.name, row.id) or None
        messages: list[dict[str, Any]] = []
        for role, part in self.messages:
            if isinstance(part, ConversationPart):
                messages += conversation_of(
                    row.data,
                    part.field,
                    file=part.file,
                    variant=self.name,
                    row_id=row.id,
                    alone=len(self.messages) == 1,
                )
                continue
            content = part.render(context, self.name, row.id)
            if isinstance(content, str) and not content.strip():
                raise RenderError(
                    part.file,
                    self.name,
                    row.id,
                    f"{part.where}: the {role} message rendered to an empty string",
                    "the API refuses empty messages; check the row's data or the template",
                )
            messages.append({"role": role, "content": content})
        if not messages:  # only conversation entries, every one empty for this row
            slots = [p for _, p in self.messages if isinstance(p, ConversationPart)]
            fields = ", ".join(repr(p.field) for p in slots)
            raise RenderError(
                slots[0].file,
                self.name,
                row.id,
                f"fields {fields}: every conversation is empty",
                "the API needs at least one message; fix the row's data",
            )
        return system, messages


def compile_variant(
    variant: PromptVariant,
    config_file: str,
    sources: dict[str, str] | None = None,
    index: int | None = None,
    *,
    null_as_empty: bool = False,
    data_file: str | None = None,
) -> CompiledVariant:
    """Compile one variant's templates.

    ``sources`` maps absolute template file paths to their text (``EvalSpec.sources``);
    a file not in it is read from disk. ``index`` (the variant's position in the config)
    only makes error messages point at ``prompts[index]``. ``null_as_empty`` renders a
    null value as an empty string instead of refusing the row. ``data_file`` is named in
    errors about a row's conversation.
    """
    sources = sources or {}
    index_where = f"prompts[{index if index is not None else repr(variant.name)}]"

    def part(inline: str | None, file: str | None, field: str) -> TemplatePart | None:
        if file is not None:
            text = sources.get(file)
            if text is None:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
            return _compile(text, file, file, null_as_empty)
        if inline is not None:
            return _compile(inline, f"{index_where}.{field}", config_file, null_as_empty)
        return None

    system = part(variant.system, variant.system_file, "system")
    where, empty = index_where, null_as_empty
    if variant.messages is not None:
        messages = tuple(
            (CONVERSATION, ConversationPart(m.field, f"{where}.messages[{i}]", data_file))
            if m.kind == CONVERSATION
            else (
                m.role,
                _compile(m.content, f"{where}.messages[{i}].content", config_file, empty)
                if isinstance(m.content, str)
                else _compile_blocks(
                    m.content, f"{where}.messages[{i}].content", config_file, empty
                ),
            )
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
    empty = spec.dataset.null_as_empty
    data = spec.dataset.path or spec.dataset.hub
    return {
        v.name: compile_variant(v, str(spec.path), sources, i, null_as_empty=empty, data_file=data)
        for i, v in enumerate(spec.prompts)
    }


def render(variant: CompiledVariant, row: Row) -> tuple[str | None, list[dict[str, Any]]]:
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
