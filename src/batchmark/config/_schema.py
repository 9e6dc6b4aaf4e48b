"""Eval configs: the schema of the YAML file and the ``EvalSpec`` it becomes.

``load_config(path)`` reads a YAML config, validates it completely and returns an
``EvalSpec``: the validated config with every path made absolute, plus the config
file's path, folder, raw text and hash. Every problem found is reported at once in one
``ConfigError``, each naming its field path (``prompts[1].user``) and YAML line.

The config is spread over three modules:

- here, the pydantic models: the config's schema. ``config_json_schema()`` turns them
  into the JSON Schema that editors use (``batchmark schema``). Objects are frozen;
  their dict and list fields are plain containers that callers must treat as read-only.
- ``_config_checks``: the single-field checks the models' validators run (files exist,
  templates parse, responder paths resolve).
- ``_config_load``: reading the file, YAML parsing, the checks that span fields
  (duplicate keys, variant names and model keys), building the ``scorers:`` list with
  ``batchmark.scorers.build_scorers``, the config hash, and turning validation errors
  into messages with field paths and YAML lines.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from batchmark._templates import RESERVED_VARIABLES
from batchmark.config._checks import (
    check_syntax,
    context_of,
    existing_file,
    fail,
    read_template,
    responder_spec,
)
from batchmark.config._limits import API_MAX_BYTES, API_MAX_REQUESTS
from batchmark.config._models import Catalog, ModelFacts, Price, catalog_for, default_catalog
from batchmark.config._tools import (
    ToolProblem,
    at_text,
    output_config_problems,
    output_format,
    parse_data,
    read_data_file,
    schema_problem,
    tool_choice_problems,
    tool_problems,
)
from batchmark.scorers import ScorerSet, build_scorers, scorers_json_schema

if TYPE_CHECKING:
    import os

__all__ = [
    "API_MAX_BATCH_BYTES",
    "API_MAX_BATCH_REQUESTS",
    "DEFAULT_MAX_TOKENS",
    "LEGACY_API_VERSION",
    "SAMPLING_PARAMS",
    "BatchConfig",
    "CiConfig",
    "ContentBlock",
    "DatasetConfig",
    "EmulatorConfig",
    "EvalConfig",
    "EvalSpec",
    "Gate",
    "ConversationSlot",
    "MessageTemplate",
    "ModelConfig",
    "Params",
    "Price",
    "PromptVariant",
    "RunSettings",
    "config_json_schema",
    "load_config",
]

API_MAX_BATCH_REQUESTS = API_MAX_REQUESTS
API_MAX_BATCH_BYTES = API_MAX_BYTES
"""The Message Batches body limit ("256 MB"), read as 256 MiB = 268,435,456 bytes."""
DEFAULT_BATCH_BYTES = 256_000_000
"""Default ``batch.max_bytes``: under the limit whether "MB" means 10^6 or 2^20."""
DEFAULT_MAX_TOKENS = 1024
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
LEGACY_API_VERSION = "2023-06-01"
"""The ``anthropic-version`` that still accepts ``temperature``, ``top_p``, ``top_k``."""
DATA_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
DATA_FORMATS[".parquet"] = "parquet"
DATA_FORMATS[".pq"] = "parquet"

_NAME_RE = r"^[A-Za-z0-9_.-]+$"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAMPLING_HINT = (
    f'set `api_version: "{LEGACY_API_VERSION}"` in the config (batchmark then sends that '
    "anthropic-version header) or remove the parameter"
)


# --- the models ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


class DatasetConfig(_Model):
    """Where the rows come from and how to pick them."""

    path: str | None = None
    """Local data file, relative to the config file: JSONL, JSON (a list of objects), CSV
    (every cell read as a string) or Parquet. Exactly one of `path` and `hub`."""
    hub: str | None = None
    """A Hugging Face Hub dataset name (`owner/name`), loaded with `datasets.load_dataset`."""
    split: str = "train"
    """Split to load from a Hub dataset."""
    subset: str | None = None
    """Configuration (subset) of a Hub dataset."""
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = "auto"
    """File format; `auto` decides by extension (.jsonl/.ndjson, .json, .csv, .parquet/.pq)."""
    id_field: str | None = None
    """Column holding each row's id (ints become strings). Without it a row's id is the
    first 12 hex digits of the sha256 of its canonical JSON (null fields left out)."""
    limit: int | None = Field(default=None, ge=1)
    """Keep only the first N rows (applied before `sample`)."""
    sample: int | None = Field(default=None, ge=1)
    """Keep a seeded random sample of N rows (after `limit`), in file order."""
    seed: int = 0
    """Seed of `sample`."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Template variable -> dataset column. Unmapped columns stay available by their name."""
    allow_outside_paths: bool = False
    """Let content blocks' `path`s be absolute or leave the dataset file's folder (`..`,
    symlinks). Off by default: a path from the data reads only under that folder."""
    null_as_empty: bool = False
    """Render a null value (JSON `null`, a Parquet null, a field some rows lack) as an
    empty string. By default it is undefined, like a missing variable: `{{ q }}` refuses
    the row (`validate` and `run` name it) instead of sending the text `None`."""

    @field_validator("path")
    @classmethod
    def _path_exists(cls, value: str, info: ValidationInfo) -> str:
        ctx = context_of(info)
        return str(existing_file(ctx, value)) if ctx else value

    @field_validator("fields")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in RESERVED_VARIABLES:
                fail(f"{name!r} is reserved (batchmark sets it)", field=name)
            if not _IDENT_RE.match(name):
                fail(
                    f"{name!r} is not a valid template variable name",
                    field=name,
                    hint="use letters, digits and underscores, not starting with a digit",
                )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.path is None) == (self.hub is None):
            fail(
                "give exactly one of `path` (a local file) and `hub` (a Hub dataset name)",
                hint="e.g. `path: ../evals/quickstart/questions.jsonl`",
            )
        if self.path is not None and self.format == "auto" and self.resolved_format is None:
            fail(
                f"cannot tell the format of {self.path} from its extension",
                field="format",
                hint="set `format:` to one of jsonl, json, csv, parquet",
            )
        return self

    @property
    def resolved_format(self) -> str | None:
        """The file format, ``format`` or the one its extension implies (``None`` if unknown)."""
        if self.format != "auto":
            return self.format
        if self.path is None:
            return None
        return DATA_FORMATS.get(Path(self.path).suffix.lower())


BLOCK_SOURCE_KEYS = ("text", "path", "url", "base64")


class ContentBlock(_Model):
    """One block of a message's content (see docs/content.md): `text`, `image` or
    `document`. String fields but `type`, `media_type` are Jinja2 templates."""

    type: Literal["text", "image", "document"]
    """`text`, `image` or `document`."""
    text: str | None = None
    """A text block's text; a document's inline plain text."""
    path: str | None = None
    """An image or document file (PNG, JPEG, GIF, WebP; PDF or UTF-8 text), relative to
    the dataset file's folder; absolute paths and `..` are refused unless
    `dataset.allow_outside_paths`."""
    url: str | None = None
    """An image or PDF the API fetches itself (`http://` or `https://`)."""
    base64: str | None = None
    """Base64 image or PDF bytes, e.g. `"{{ image_b64 }}"` from a column."""
    media_type: str | None = None
    """The media type; by default detected from the bytes (a mismatch is an error)."""
    title: str | None = None
    """A document's title."""
    context: str | None = None
    """A document's context (not cited)."""
    citations: dict[str, bool] | None = None
    """`{enabled: true}`: the answer cites this document."""
    cache_control: dict[str, str] | None = None
    """A cache breakpoint on this block, e.g. `{type: ephemeral, ttl: 1h}`."""

    @field_validator("text", "path", "url", "base64", "title", "context")
    @classmethod
    def _syntax(cls, value: str | None) -> str | None:
        if value is not None:
            check_syntax(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> ContentBlock:
        sources = ("text", "path", "url", "base64") if self.type == "document" else ()
        if self.type == "image":
            sources = ("path", "url", "base64")
        if self.type == "text":
            if self.text is None:
                fail("a text block needs `text`")
            others = (*BLOCK_SOURCE_KEYS[1:], "media_type", "title", "context", "citations")
            extra = [k for k in others if getattr(self, k) is not None]
            if extra:
                fail(f"a text block takes only `text` and `cache_control` (found {extra[0]})")
            return self
        given = [k for k in sources if getattr(self, k) is not None]
        if len(given) != 1:
            fail(
                f"an {self.type} block needs exactly one of "
                + ", ".join(f"`{k}`" for k in sources)
                + f" (found: {', '.join(given) or 'none'})"
            )
        if self.type == "image":
            for key in ("text", "title", "context", "citations"):
                if getattr(self, key) is not None:
                    fail(f"`{key}` is for documents, not images", field=key)
        if self.citations is not None and set(self.citations) != {"enabled"}:
            fail("expected `{enabled: true}` or `{enabled: false}`", field="citations")
        return self


def _content_kind(value: Any) -> str | None:
    """Which kind of message content a value is (error locations leave the tag out)."""
    if isinstance(value, str):
        return "<text>"
    return "<blocks>" if isinstance(value, list) else None


class MessageTemplate(_Model):
    """One message of a `messages` variant."""

    kind: ClassVar[str] = "message"

    role: Literal["user", "assistant"]
    """`user` or `assistant` (a final assistant message pre-fills the reply)."""
    content: Annotated[
        Annotated[str, Tag("<text>")] | Annotated[list[ContentBlock], Tag("<blocks>")],
        Discriminator(
            _content_kind,
            custom_error_type="content",
            custom_error_message="expected a template string or a list of content blocks",
        ),
    ]
    """The message text, a Jinja2 template; or a list of content blocks (`text`, `image`,
    `document`, see docs/content.md)."""

    @field_validator("content")
    @classmethod
    def _syntax(cls, value: str | list[ContentBlock]) -> str | list[ContentBlock]:
        if isinstance(value, str):
            check_syntax(value)
        elif not value:
            fail("a message needs at least one content block")
        return value


class ConversationSlot(_Model):
    """A `messages` entry `{field: NAME}`: the row's conversation goes here."""

    kind: ClassVar[str] = "conversation"  # _templates.CONVERSATION

    field: str = Field(min_length=1)
    """The row field holding a conversation: a list of `{role, content}` (content a string
    or a list of API content blocks), or a string holding that list as JSON (CSV)."""


def _message_kind(value: Any) -> str:
    return "<slot>" if isinstance(value, dict) and "field" in value else "<message>"


MessageEntry = Annotated[
    Annotated[MessageTemplate, Tag("<message>")] | Annotated[ConversationSlot, Tag("<slot>")],
    Discriminator(
        _message_kind,
        custom_error_type="message",
        custom_error_message="expected {role, content} or {field: NAME}",
    ),
]


class PromptVariant(_Model):
    """A named prompt: a system prompt plus a user message, or a list of messages."""

    name: str = Field(min_length=1)
    """Unique name of the variant; part of every custom_id and of result tables."""
    system: str | None = None
    """System prompt, an inline Jinja2 template."""
    system_file: str | None = None
    """System prompt template file, relative to the config file."""
    user: str | None = None
    """User message, an inline Jinja2 template."""
    user_file: str | None = None
    """User message template file, relative to the config file."""
    messages: list[MessageEntry] | None = Field(default=None, min_length=1)
    """Full conversation `[{role, content}]`, each content a Jinja2 template (instead of
    `user` / `user_file`); an entry `{field: NAME}` puts the row's own conversation (the
    list in field NAME) at that place, between templated messages if any."""

    @field_validator("system", "user")
    @classmethod
    def _syntax(cls, value: str) -> str:
        check_syntax(value)
        return value

    @field_validator("system_file", "user_file")
    @classmethod
    def _template_file(cls, value: str, info: ValidationInfo) -> str:
        return read_template(info, value)

    @model_validator(mode="after")
    def _one_body(self) -> PromptVariant:
        bodies = [k for k in ("user", "user_file", "messages") if getattr(self, k) is not None]
        if len(bodies) != 1:
            found = ", ".join(bodies) if bodies else "none"
            fail(f"give exactly one of `user`, `user_file` and `messages` (found: {found})")
        if self.system is not None and self.system_file is not None:
            fail("give at most one of `system` and `system_file`", field="system_file")
        return self

    # --- tools and structured output (see ``_tools`` and docs/tools.md) ----------------

    tools: list[Any] | None = None
    """Tools for this variant's requests, as in the Messages API: `[{name, description,
    input_schema}]`. Not together with `params.tools` (an error names both)."""
    tools_file: str | None = None
    """A JSON or YAML file holding the list of tools, relative to the config file (read
    once, when the config is loaded)."""
    tools_field: str | None = Field(default=None, min_length=1)
    """A row field holding a list of tools (or a JSON string of one) for that row; they
    follow the static tools in the request. A row without the field is an error; null
    or `[]` means no tools of its own."""
    tool_choice: dict[str, Any] | None = None
    """How the model may use tools, as in the Messages API: `{type: auto}`, `{type: any}`,
    `{type: tool, name: ...}` or `{type: none}`. Not together with `params.tool_choice`."""
    output_schema: dict[str, Any] | None = None
    """Structured output: a JSON Schema the answer's text must follow, sent as
    `output_config: {format: {type: json_schema, schema: ...}}`."""
    output_schema_file: str | None = None
    """`output_schema` from a JSON or YAML file, relative to the config file."""

    _static_tools: list[Any] | None = PrivateAttr(default=None)
    _output_schema: dict[str, Any] | None = PrivateAttr(default=None)

    @field_validator("tools")
    @classmethod
    def _tool_shapes(cls, value: list[Any]) -> list[Any]:
        _fail_all(tool_problems(value))
        return value

    @field_validator("tool_choice")
    @classmethod
    def _choice_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        _fail_all(tool_choice_problems(value))
        return value

    @field_validator("output_schema")
    @classmethod
    def _schema_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        _fail_all([p for p in [schema_problem(value)] if p is not None])
        return value

    @field_validator("tools_file", "output_schema_file")
    @classmethod
    def _data_file(cls, value: str, info: ValidationInfo) -> str:
        ctx = context_of(info)
        if ctx is None:
            return value
        path = existing_file(ctx, value)
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            fail(f"cannot read {path}: {err}")
        try:
            data = parse_data(text, path)
        except ValueError as err:
            fail(str(err))
        if info.field_name == "tools_file":
            problems = tool_problems(data)
        else:
            found = schema_problem(data)
            problems = [found] if found else []
        head = "tools" if info.field_name == "tools_file" else "$"
        _fail_all(
            [
                ToolProblem((), f"{path}: {at_text(p.at, head)}: {p.message}", p.hint)
                for p in problems
            ]
        )
        ctx.files[str(path)] = raw  # part of the config hash
        ctx.data[str(path)] = data
        return str(path)

    @model_validator(mode="after")
    def _tools_and_schema(self, info: ValidationInfo) -> PromptVariant:
        if self.tools is not None and self.tools_file is not None:
            fail("give at most one of `tools` and `tools_file`", field="tools_file")
        if self.output_schema is not None and self.output_schema_file is not None:
            fail(
                "give at most one of `output_schema` and `output_schema_file`",
                field="output_schema_file",
            )
        ctx = context_of(info)
        if self.tools_file is not None and ctx is not None:
            self._static_tools = ctx.data.get(self.tools_file)
        if self.output_schema_file is not None and ctx is not None:
            self._output_schema = ctx.data.get(self.output_schema_file)
        return self

    @property
    def static_tools(self) -> list[Any] | None:
        """The variant's own tools (`tools`, or those of `tools_file` as read at load)."""
        if self.tools is not None:
            return self.tools
        if self.tools_file is not None and self._static_tools is None:
            self._static_tools = read_data_file(Path(self.tools_file))
        return self._static_tools

    @property
    def output_format(self) -> dict[str, Any] | None:
        """The `output_config.format` this variant asks for, or None."""
        schema = self.output_schema
        if schema is None and self.output_schema_file is not None:
            if self._output_schema is None:
                self._output_schema = read_data_file(Path(self.output_schema_file))
            schema = self._output_schema
        return output_format(schema) if schema is not None else None


def _fail_all(problems: list[ToolProblem], prefix: tuple[Any, ...] = ()) -> None:
    """Fail with every problem, each at its path below the field (``prefix`` first)."""
    if problems:
        raise ValidationError.from_exception_data(
            "tools",
            [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "batchmark", "{msg}", {"msg": p.message, "field": "", "hint": p.hint}
                    ),
                    loc=(*prefix, *p.at),
                    input=None,
                )
                for p in problems
            ],
        )


_SET_BY_BATCHMARK = {
    "model": "the model comes from `models`",
    "messages": "messages come from the prompt variant",
    "system": "the system prompt comes from the prompt variant",
    "stream": "batches do not support streaming; remove it",
}


class Params(BaseModel):
    """Messages API parameters. Keys not listed here are passed through to the API as is;
    a null value means "not set"."""

    model_config = ConfigDict(
        extra="allow", frozen=True, strict=True, use_attribute_docstrings=True
    )

    max_tokens: int | None = Field(default=None, ge=1)
    """Maximum output tokens, an integer >= 1 (1024 when set nowhere)."""
    stop_sequences: list[str] | None = None
    """Strings that stop generation."""
    tools: list[dict[str, Any]] | None = None
    """Tool definitions, as in the Messages API."""
    tool_choice: dict[str, Any] | None = None
    """How the model may use tools, as in the Messages API."""
    thinking: dict[str, Any] | None = None
    """Extended thinking settings, e.g. `{type: enabled, budget_tokens: 2048}`."""
    metadata: dict[str, Any] | None = None
    """Request metadata, as in the Messages API."""
    temperature: float | None = None
    """Sampling temperature. Only with `api_version: "2023-06-01"` (newer API versions
    reject it)."""
    top_p: float | None = None
    """Nucleus sampling. Only with `api_version: "2023-06-01"`."""
    top_k: int | None = None
    """Top-k sampling. Only with `api_version: "2023-06-01"`."""
    model: SkipJsonSchema[Any] = None
    messages: SkipJsonSchema[Any] = None
    system: SkipJsonSchema[Any] = None
    stream: SkipJsonSchema[Any] = None

    @field_validator("model", "messages", "system", "stream")
    @classmethod
    def _not_here(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        if name == "stream":
            fail("`stream` is not allowed in batch requests", hint=_SET_BY_BATCHMARK[name])
        fail(f"`{name}` cannot be set in params", hint=_SET_BY_BATCHMARK[name])

    @field_validator("tools")
    @classmethod
    def _tool_shapes(cls, value: list[dict[str, Any]] | None) -> Any:
        if value is not None:
            _fail_all(tool_problems(value))
        return value

    @field_validator("tool_choice")
    @classmethod
    def _choice_shape(cls, value: dict[str, Any] | None) -> Any:
        if value is not None:
            _fail_all(tool_choice_problems(value))
        return value

    @model_validator(mode="after")
    def _output_format(self) -> Params:
        config = (self.model_extra or {}).get("output_config")
        if config is not None:
            _fail_all(output_config_problems(config), ("output_config",))
        return self

    @field_validator("temperature", "top_p", "top_k")
    @classmethod
    def _sampling(cls, value: Any, info: ValidationInfo) -> Any:
        ctx = context_of(info)
        if value is not None and ctx is not None and ctx.api_version != LEGACY_API_VERSION:
            fail(
                f"`{info.field_name}` is rejected by the current API version "
                f"({ctx.api_version or 'the SDK default'})",
                hint=_SAMPLING_HINT,
            )
        return value

    def as_dict(self) -> dict[str, Any]:
        """The parameters that are set, extra keys included."""
        return self.model_dump(exclude_none=True)


class ModelConfig(_Model):
    """A model to evaluate: a bare model id, or an object with its own name and params."""

    name: str | None = Field(default=None, min_length=1)
    """Name of this entry in results and custom_ids (default: the model id). Lets one
    model appear twice with different params."""
    model: str = Field(min_length=1)
    """Model id sent to the API, e.g. `claude-sonnet-4-6`."""
    params: Params = Field(default_factory=Params)
    """Parameters for this model; they override the top-level `params` key by key."""

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"model": value}
        if not isinstance(value, dict | ModelConfig):
            fail(
                f"expected a model id or a mapping with `model`, got {type(value).__name__}",
                hint="e.g. `- claude-haiku-4-5` or `- {name: sonnet, model: claude-sonnet-4-6}`",
            )
        return value

    @property
    def key(self) -> str:
        """The model key: ``name`` or the model id."""
        return self.name or self.model


class BatchConfig(_Model):
    """How requests are packed into batches and how batches are watched."""

    max_requests: int = Field(default=API_MAX_BATCH_REQUESTS, ge=1, le=API_MAX_BATCH_REQUESTS)
    """Requests per batch, 1..100000."""
    max_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=1, le=API_MAX_BATCH_BYTES)
    """Bytes per batch body; at most 268435456 (256 MiB, the API limit); default
    256000000."""
    max_in_flight: int | None = Field(default=None, ge=1)
    """Batches submitted and not yet ended, at most; unset (the default): no cap, every
    batch is submitted at once, bounded only by the API's queue of batch requests (a
    create it refuses with 429 waits for room, and the run then keeps its requests in
    the queue under what the queue held when it refused). Batches created together
    differ in size (the i-th batch of a pass holds at most `max_requests` - (i mod m)
    requests, m the smaller of the two, or half of `max_requests` when unset)."""
    poll_interval: float = Field(default=5.0, gt=0)
    """Seconds before the first poll; the interval grows up to `max_poll_interval`."""
    max_poll_interval: float = Field(default=60.0, gt=0)
    """Longest wait between polls, in seconds."""
    max_attempts: int = Field(default=3, ge=1)
    """Attempts per request in total (retryable errors and expiry count)."""
    lost_after_seconds: float = Field(default=900.0, gt=0)
    """How long a batch we created may answer 404 (and be missing from the batch list)
    before its requests are reported lost. Lost requests are never re-sent by
    themselves: the batch may still exist (another API key, a late listing) and be
    billed; `batchmark resume RUN --resend-lost` sends them again."""

    @model_validator(mode="after")
    def _intervals(self) -> BatchConfig:
        if self.max_poll_interval < self.poll_interval:
            fail("must be >= poll_interval", field="max_poll_interval")
        return self


class EmulatorConfig(_Model):
    """The stand-in service used by `batchmark run --emulate`."""

    responder: str | dict[str, str] = "echo"
    """Responder spec (`echo`, `scripted:PATH`, ...), or a mapping model-glob -> spec.
    `scripted:` paths are relative to the config file."""
    processing_seconds: float = Field(default=0, ge=0)
    """How long each emulated batch takes to end."""
    faults: str | dict[str, Any] | None = None
    """Fault injection spec, passed to the emulator untouched."""
    seed: int | None = None
    """Seed of the emulator's random choices and ids (default: draws as with seed 0, ids
    unique to each emulator process)."""
    queue_limit: int | None = Field(default=None, ge=1)
    """The most requests unfinished batches may hold together; a create past it is refused
    with 429, as the real API refuses a full queue of batch requests (default: no limit)."""

    @field_validator("responder", mode="before")
    @classmethod
    def _responder(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return responder_spec(value, info)
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return {k: responder_spec(v, info, field=k) for k, v in value.items()}
        fail("expected a responder spec string or a mapping model-glob -> spec string")

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, value: Any) -> Any:
        if value is None or isinstance(value, str | dict):
            return value
        fail("expected a fault spec string or mapping")


AGAINST_MODEL = "model:"
"""Prefix of a gate's `against`: `model:KEY` compares with model KEY of the same run."""


class Gate(_Model):
    """Checks on one scorer's cells that `batchmark ci` applies (see docs/ci.md).

    Each check set here is applied to every model x variant cell of the scorer, or only
    to the cells that `model` and `variant` select. Scores are item means in 0..1.
    """

    min: float | None = None
    """Absolute minimum of the cell's mean score, e.g. `0.8`."""
    max_drop: float | None = Field(default=None, ge=0)
    """Largest allowed drop of the cell's mean against the baseline's same cell (on the
    items both scored), e.g. `0.02`. Needs `--baseline`, or `against`."""
    significant_drop: bool | float | None = None
    """Fail when the paired 95% CI of candidate - baseline lies entirely below
    `-tolerance`: `true` (tolerance 0) or the tolerance itself, e.g. `0.01`. Needs
    `--baseline`, or `against`."""
    against: str | None = None
    """What `max_drop` and `significant_drop` compare with: the baseline (default), or
    `model:KEY`, model KEY of the same run: each other model's cell is paired with
    KEY's cell of the same variant, item by item (a model upgrade gated in one run)."""
    model: str | None = Field(default=None, min_length=1)
    """Only the cells of this model key."""
    variant: str | None = Field(default=None, min_length=1)
    """Only the cells of this prompt variant."""

    @field_validator("against")
    @classmethod
    def _against(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith(AGAINST_MODEL) or not value[len(AGAINST_MODEL) :].strip()
        ):
            fail(
                f"expected `model:KEY` (a model key of this config), got {value!r}",
                hint="e.g. `against: model:claude-haiku-4-5`; leave it out to compare "
                "with the baseline (`--baseline`)",
            )
        return value

    @property
    def against_model(self) -> str | None:
        """The model key of ``against: model:KEY``, else ``None`` (the baseline)."""
        return None if self.against is None else self.against[len(AGAINST_MODEL) :].strip()

    @field_validator("significant_drop")
    @classmethod
    def _tolerance(cls, value: bool | float | None) -> bool | float | None:
        if isinstance(value, float) and value < 0:
            fail("the tolerance must be >= 0 (`true` means 0)")
        return value

    @model_validator(mode="after")
    def _some_check(self) -> Gate:
        if self.min is None and self.max_drop is None and not self.enabled_significant:
            fail(
                "a gate needs at least one of `min`, `max_drop` and `significant_drop`",
                hint="e.g. `{min: 0.8, max_drop: 0.02, significant_drop: true}`",
            )
        if self.against is not None and self.max_drop is None and not self.enabled_significant:
            fail(
                "`against` sets what `max_drop` and `significant_drop` compare with, and "
                "this gate has neither",
                hint="e.g. `{against: model:claude-haiku-4-5, max_drop: 0.02}`",
            )
        return self

    @property
    def enabled_significant(self) -> bool:
        return self.significant_drop is not None and self.significant_drop is not False

    @property
    def tolerance(self) -> float | None:
        """The significant-drop tolerance, ``None`` when that check is off."""
        if not self.enabled_significant:
            return None
        return 0.0 if self.significant_drop is True else float(self.significant_drop or 0.0)


DEFAULT_MAX_FAILED_FRACTION = 0.0


class CiConfig(_Model):
    """What `batchmark ci` checks: gates per scorer and the share of failed requests."""

    gates: dict[str, list[Gate]] = Field(default_factory=dict)
    """Scorer name -> a gate `{min, max_drop, significant_drop, against, model, variant}`,
    or a list of them (e.g. a `min` for every cell plus a stricter one for one model)."""
    max_failed_fraction: float = Field(default=DEFAULT_MAX_FAILED_FRACTION, ge=0, le=1)
    """Largest share of requests (candidates and judges) that may end without a response
    (errored, expired, canceled after every attempt). Above it the run counts as
    incomplete: exit 3. Default 0: any failed request."""

    @field_validator("gates", mode="before")
    @classmethod
    def _gate_lists(cls, value: Any) -> Any:
        # `scorer: {min: ...}` is a list of one gate; a bare `gates:` key is no gates.
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value

    def gate_list(self) -> list[tuple[str, Gate]]:
        """(scorer, gate) pairs in config order."""
        return [(scorer, gate) for scorer, gates in self.gates.items() for gate in gates]

    def against_models(self) -> list[str]:
        """The model keys gates compare with inside the run (``against: model:KEY``), in
        config order, each once."""
        keys = (gate.against_model for _, gate in self.gate_list())
        return list(dict.fromkeys(k for k in keys if k is not None))


class EvalConfig(_Model):
    """A batchmark eval: a dataset x prompt variants x models x epochs."""

    name: str = Field(pattern=_NAME_RE)
    """Eval name (letters, digits, `_`, `.`, `-`); runs go to `results/<name>/`."""
    description: str | None = None
    """Free text shown in reports."""
    dataset: DatasetConfig
    """The rows to evaluate."""
    prompts: list[PromptVariant] = Field(min_length=1)
    """Prompt variants, each with a unique `name`."""
    models: list[ModelConfig] = Field(min_length=1)
    """Models: ids (`claude-haiku-4-5`) or objects `{name, model, params}`; keys unique."""
    params: Params = Field(default_factory=Params)
    """Default Messages API parameters for every model."""
    epochs: int = Field(default=1, ge=1, le=100_000)
    """Samples per (row, variant, model) cell."""
    api_version: str | None = None
    """`anthropic-version` header to send instead of the SDK's, e.g. `"2023-06-01"`."""
    prompt_cache: Literal["auto", "off"] = "auto"
    """`auto`: put one 1-hour cache breakpoint at the end of each request's static prefix
    (tools, a system prompt and leading messages that read no row variable) when it is
    long enough to cache; `off`: never add `cache_control`."""
    batch: BatchConfig = Field(default_factory=BatchConfig)
    """Batch packing and polling."""
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)
    """Emulator settings, used only with `--emulate`."""
    pricing: dict[str, Price] = Field(default_factory=dict)
    """Price overrides: model id (or id prefix) -> `{input, output}` in USD per million
    tokens (optionally `cache_write_5m`, `cache_write_1h`, `cache_read`); they win over
    the model catalog's prices."""
    catalog: dict[str, ModelFacts] = Field(default_factory=dict)
    """Model catalog entries to add or override (see docs/models.md): model id -> facts,
    e.g. `claude-new-6: {like: claude-sonnet-5-5, max_output_tokens: 256000, price:
    {input: 3, output: 15}}`. An id already in the catalog has the facts given here
    replaced; a new one starts from `like`'s facts, else from none known."""
    scorers: list[Any] = Field(default_factory=list)
    """Scorers, each adding a score column: `- exact_match: {target: "{{ answer }}"}`,
    `- judge: {model: ..., rubric: ...}`, ... (see docs/scorers.md). Paths in them (schema
    and rubric files, `python:` files) are relative to the config file."""
    ci: CiConfig = Field(default_factory=CiConfig)
    """Gates for `batchmark ci`: `gates: {scorer: {min, max_drop, significant_drop}}` and
    `max_failed_fraction` (see docs/ci.md)."""

    @field_validator("name")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if set(value) == {"."}:
            fail("must not be only dots (it names a folder)")
        return value

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_string(cls, value: Any) -> Any:
        # Unquoted 2023-06-01 is a date in YAML.
        return value.isoformat() if isinstance(value, _dt.date) else value

    @field_validator("catalog", mode="before")
    @classmethod
    def _no_catalog(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("catalog")
    @classmethod
    def _like_known(cls, value: dict[str, ModelFacts]) -> dict[str, ModelFacts]:
        known = default_catalog()
        for name, entry in value.items():
            if entry.like is not None and entry.like not in known:
                close = known.suggest(entry.like)
                hint = f"did you mean `{close[0]}`?" if close else "name a model of the catalog"
                fail(f"`like: {entry.like}` names no model of the catalog", field=name, hint=hint)
        return value

    def model_catalog(self) -> Catalog:
        """The model catalog this config sees: batchmark's, with its `catalog:` entries."""
        return catalog_for(self.catalog)

    @field_validator("scorers", mode="before")
    @classmethod
    def _no_scorers(cls, value: Any) -> Any:
        # A bare `scorers:` key is null in YAML: no scorers.
        return [] if value is None else value

    @field_validator("ci", mode="before")
    @classmethod
    def _no_ci(cls, value: Any) -> Any:
        return {} if value is None else value


class RunSettings(BaseModel):
    """A config's settings that reading a run needs, without loading the config whole.

    ``cancel``, ``doctor`` and a run's cost table read these from the run's config
    snapshot (``load_settings``): the one source of a run's settings, readable even when
    the dataset, templates or ``python:`` hooks it named have moved since. The other
    sections are not looked at (``load_config`` validated them when the run was made).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    api_version: str | None = None
    """As ``EvalConfig.api_version``."""
    batch: BatchConfig = Field(default_factory=BatchConfig)
    """As ``EvalConfig.batch``."""
    pricing: dict[str, Price] = Field(default_factory=dict)
    """As ``EvalConfig.pricing``."""
    catalog: dict[str, ModelFacts] = Field(default_factory=dict)
    """As ``EvalConfig.catalog``."""

    @field_validator("catalog", mode="before")
    @classmethod
    def _no_catalog(cls, value: Any) -> Any:
        return {} if value is None else value

    def model_catalog(self) -> Catalog:
        """As ``EvalConfig.model_catalog``."""
        return catalog_for(self.catalog)

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_string(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, _dt.date) else value


class EvalSpec(EvalConfig):
    """A validated config, ready to expand: paths absolute, plus where it came from.

    Built by ``load_config``; treat it as immutable.
    """

    path: Path
    """Absolute path of the config file."""
    base_dir: Path
    """The config file's folder; relative paths in the config start here."""
    text: str
    """The raw YAML text (the run snapshot)."""
    hash: str
    """sha256 hex of the config's UTF-8 text, then, for each file the config reads
    (templates; scorers' rubric, schema and `python:` files) in sorted order of absolute
    path, a NUL, its path relative to `base_dir`, a NUL and its bytes. The dataset's
    contents are not part of it."""
    sources: dict[str, str]
    """Template file contents by absolute path, as read at load time."""

    _scorers: ScorerSet | None = PrivateAttr(default=None)
    _allow_external_code: bool = PrivateAttr(default=False)

    @property
    def allow_external_code(self) -> bool:
        """Whether it was loaded with ``allow_external_code=True``: its ``python:`` hooks
        may name code from outside its repository (see docs/security.md)."""
        return self._allow_external_code

    def model_params(self, model: ModelConfig) -> dict[str, Any]:
        """A model's merged params: defaults < top-level ``params`` < the model's own."""
        return {"max_tokens": DEFAULT_MAX_TOKENS, **self.params.as_dict(), **model.params.as_dict()}

    def build_scorers(self) -> ScorerSet:
        """The config's scorers, built once (``load_config`` already built and checked
        them): in the order written, sorted by kind, with their spec hashes.

        Relative paths in scorer options resolve against ``base_dir``, so a spec loaded
        from a run's snapshot reads the same files. Raises ``ConfigError`` if a scorer is
        broken (only possible for a spec not made by ``load_config``).
        """
        if self._scorers is None:
            self._scorers = build_scorers(
                self.scorers,
                base_dir=self.base_dir,
                file=str(self.path),
                allow_external_code=self._allow_external_code,
            )
        return self._scorers


# --- loading and JSON Schema --------------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (for editors: ``yaml-language-server``)."""
    schema = EvalConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "batchmark eval config"
    models = schema["properties"]["models"]
    models["items"] = {
        "anyOf": [
            {"type": "string", "description": "A model id, e.g. `claude-haiku-4-5`."},
            {"$ref": "#/$defs/ModelConfig"},
        ]
    }
    gates = schema["$defs"]["CiConfig"]["properties"]["gates"]
    gates["additionalProperties"] = {  # one gate, or a list of them
        "anyOf": [{"$ref": "#/$defs/Gate"}, {"type": "array", "items": {"$ref": "#/$defs/Gate"}}]
    }
    scorers = schema["properties"]["scorers"]
    schema["properties"]["scorers"] = {
        **scorers_json_schema(),
        **{k: scorers[k] for k in ("title", "description", "default") if k in scorers},
    }
    return schema


def load_config(
    path: str | os.PathLike[str] | EvalSpec,
    *,
    text: str | None = None,
    allow_external_code: bool = False,
) -> EvalSpec:
    """Read, validate and resolve a YAML eval config.

    ``text``, when given, is validated instead of the file's current content (a run's
    ``config.yaml`` snapshot); relative paths still resolve against ``path``'s folder,
    and template files are read from disk as they are now. An ``EvalSpec`` is returned
    as it is, so that whatever takes a config path also takes a loaded config.

    A config is code: its ``python:`` scorers and responders may name only code inside
    its repository (the git checkout holding it, else its folder) unless
    ``allow_external_code`` (the CLI's ``--allow-external-code``); see docs/security.md.

    Raises ``UnsafeConfig`` naming every hook that names code from elsewhere, else
    ``ConfigError`` listing every problem (field path, YAML line, hint). The work is
    done in ``_config_load``, which builds on the models above.
    """
    if isinstance(path, EvalSpec):
        return path
    from batchmark.config._load import load

    return load(path, text=text, allow_external_code=allow_external_code)
