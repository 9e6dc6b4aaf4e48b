"""Eval configs: the YAML file, its validation, and the ``EvalSpec`` it becomes.

``load_config(path)`` reads a YAML config, validates it completely and returns an
``EvalSpec``: the validated config with every path made absolute, plus the config
file's path, folder, raw text and hash. Every problem found is reported at once in one
``ConfigError``, each naming its field path (``prompts[1].user``) and YAML line.

The models below are the config's schema: ``config_json_schema()`` turns them into the
JSON Schema that editors use (``batchmark schema``). Objects are frozen; their dict
and list fields are plain containers that callers must treat as read-only.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args, get_origin

import jinja2
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from batchmark._errors import ConfigError
from batchmark._prompts import RESERVED_VARIABLES, parse_template

__all__ = [
    "API_MAX_BATCH_BYTES",
    "API_MAX_BATCH_REQUESTS",
    "DEFAULT_MAX_TOKENS",
    "LEGACY_API_VERSION",
    "SAMPLING_PARAMS",
    "BatchConfig",
    "DatasetConfig",
    "EmulatorConfig",
    "EvalConfig",
    "EvalSpec",
    "MessageTemplate",
    "ModelConfig",
    "Params",
    "Price",
    "PromptVariant",
    "config_json_schema",
    "load_config",
]

API_MAX_BATCH_REQUESTS = 100_000
API_MAX_BATCH_BYTES = 256 * 1024 * 1024
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


# --- validation context and errors -------------------------------------------------


@dataclass
class _LoadContext:
    """What validators need beyond the data: set by ``load_config``."""

    base_dir: Path
    api_version: str | None
    sources: dict[str, str] = field(default_factory=dict)


def _ctx(info: ValidationInfo) -> _LoadContext | None:
    context = info.context
    return context.get("batchmark") if isinstance(context, dict) else None


def _fail(msg: str, *, field: str = "", hint: str = "") -> NoReturn:
    """Raise a validation error with our own message, optional sub-field and hint."""
    raise PydanticCustomError("batchmark", "{msg}", {"msg": msg, "field": field, "hint": hint})


def _resolve(ctx: _LoadContext, value: str) -> Path:
    return (ctx.base_dir / Path(value).expanduser()).resolve()


def _existing_file(ctx: _LoadContext, value: str) -> Path:
    path = _resolve(ctx, value)
    if not path.exists():
        _fail(f"file not found: {path}", hint=f"paths are relative to {ctx.base_dir}")
    if not path.is_file():
        _fail(f"not a file: {path}")
    return path


def _check_syntax(source: str, where: str = "") -> None:
    try:
        parse_template(source)
    except jinja2.TemplateSyntaxError as err:
        _fail(f"{where}template syntax error at line {err.lineno}: {err.message}")


def _read_template(info: ValidationInfo, value: str) -> str:
    """Resolve a template file, check it exists and parses; remember its text."""
    ctx = _ctx(info)
    if ctx is None:
        return value
    path = _existing_file(ctx, value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"cannot read {path}: {err}")
    _check_syntax(text, f"{path}: ")
    ctx.sources[str(path)] = text
    return str(path)


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

    @field_validator("path")
    @classmethod
    def _path_exists(cls, value: str, info: ValidationInfo) -> str:
        ctx = _ctx(info)
        return str(_existing_file(ctx, value)) if ctx else value

    @field_validator("fields")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in RESERVED_VARIABLES:
                _fail(f"{name!r} is reserved (batchmark sets it)", field=name)
            if not _IDENT_RE.match(name):
                _fail(
                    f"{name!r} is not a valid template variable name",
                    field=name,
                    hint="use letters, digits and underscores, not starting with a digit",
                )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.path is None) == (self.hub is None):
            _fail(
                "give exactly one of `path` (a local file) and `hub` (a Hub dataset name)",
                hint="e.g. `path: ../evals/quickstart/questions.jsonl`",
            )
        if self.path is not None and self.format == "auto" and self.resolved_format is None:
            _fail(
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


class MessageTemplate(_Model):
    """One message of a `messages` variant."""

    role: Literal["user", "assistant"]
    """`user` or `assistant` (a final assistant message pre-fills the reply)."""
    content: str
    """The message text, a Jinja2 template."""

    @field_validator("content")
    @classmethod
    def _syntax(cls, value: str) -> str:
        _check_syntax(value)
        return value


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
    messages: list[MessageTemplate] | None = Field(default=None, min_length=1)
    """Full conversation `[{role, content}]`, each content a Jinja2 template (instead of
    `user` / `user_file`)."""

    @field_validator("system", "user")
    @classmethod
    def _syntax(cls, value: str) -> str:
        _check_syntax(value)
        return value

    @field_validator("system_file", "user_file")
    @classmethod
    def _template_file(cls, value: str, info: ValidationInfo) -> str:
        return _read_template(info, value)

    @model_validator(mode="after")
    def _one_body(self) -> PromptVariant:
        bodies = [k for k in ("user", "user_file", "messages") if getattr(self, k) is not None]
        if len(bodies) != 1:
            found = ", ".join(bodies) if bodies else "none"
            _fail(f"give exactly one of `user`, `user_file` and `messages` (found: {found})")
        if self.system is not None and self.system_file is not None:
            _fail("give at most one of `system` and `system_file`", field="system_file")
        return self


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
            _fail("`stream` is not allowed in batch requests", hint=_SET_BY_BATCHMARK[name])
        _fail(f"`{name}` cannot be set in params", hint=_SET_BY_BATCHMARK[name])

    @field_validator("temperature", "top_p", "top_k")
    @classmethod
    def _sampling(cls, value: Any, info: ValidationInfo) -> Any:
        ctx = _ctx(info)
        if value is not None and ctx is not None and ctx.api_version != LEGACY_API_VERSION:
            _fail(
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
            _fail(
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
    max_in_flight: int = Field(default=4, ge=1)
    """Batches submitted and not yet ended, at most."""
    poll_interval: float = Field(default=5.0, gt=0)
    """Seconds before the first poll; the interval grows up to `max_poll_interval`."""
    max_poll_interval: float = Field(default=60.0, gt=0)
    """Longest wait between polls, in seconds."""
    max_attempts: int = Field(default=3, ge=1)
    """Attempts per request in total (retryable errors and expiry count)."""

    @model_validator(mode="after")
    def _intervals(self) -> BatchConfig:
        if self.max_poll_interval < self.poll_interval:
            _fail("must be >= poll_interval", field="max_poll_interval")
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
    seed: int = 0
    """Seed of the emulator's random choices."""

    @field_validator("responder", mode="before")
    @classmethod
    def _responder(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return _responder_spec(value, info)
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return {k: _responder_spec(v, info, field=k) for k, v in value.items()}
        _fail("expected a responder spec string or a mapping model-glob -> spec string")

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, value: Any) -> Any:
        if value is None or isinstance(value, str | dict):
            return value
        _fail("expected a fault spec string or mapping")


def _responder_spec(value: str, info: ValidationInfo, field: str = "") -> str:
    """Make the file paths in a responder spec absolute (``scripted:PATH``,
    ``python:FILE.py:FUNC``, ``PATH.yaml``), checking that the files exist."""
    ctx = _ctx(info)
    if ctx is None:
        return value
    kind, sep, rest = value.partition(":")
    if kind == "scripted" and sep and rest:
        path = _resolve(ctx, rest)
        if not path.is_file():
            _fail(f"scripted responder file not found: {path}", field=field)
        return f"scripted:{path}"
    if kind == "python" and sep:
        module, colon, func = rest.rpartition(":")
        if colon and module.endswith(".py"):
            path = _resolve(ctx, module)
            if not path.is_file():
                _fail(f"responder module not found: {path}", field=field)
            return f"python:{path}:{func}"
        return value
    if value.endswith((".yaml", ".yml")) and _resolve(ctx, value).is_file():
        return str(_resolve(ctx, value))
    return value


class Price(_Model):
    """Standard (non-batch) prices of one model in USD per million tokens."""

    input: float = Field(ge=0)
    """Input tokens, USD per million."""
    output: float = Field(ge=0)
    """Output tokens, USD per million."""


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
    """`auto`: mark a static system prompt long enough to cache with a 1-hour cache
    breakpoint; `off`: never add `cache_control`."""
    batch: BatchConfig = Field(default_factory=BatchConfig)
    """Batch packing and polling."""
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)
    """Emulator settings, used only with `--emulate`."""
    pricing: dict[str, Price] = Field(default_factory=dict)
    """Price overrides: model id -> `{input, output}` in USD per million tokens."""

    @field_validator("name")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if set(value) == {"."}:
            _fail("must not be only dots (it names a folder)")
        return value

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_string(cls, value: Any) -> Any:
        # Unquoted 2023-06-01 is a date in YAML.
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
    """sha256 hex of the config's UTF-8 text, then, for each template file in sorted
    order of absolute path, a NUL, its path relative to `base_dir`, a NUL and its UTF-8
    text. The dataset's contents are not part of it."""
    sources: dict[str, str]
    """Template file contents by absolute path, as read at load time."""

    def model_params(self, model: ModelConfig) -> dict[str, Any]:
        """A model's merged params: defaults < top-level ``params`` < the model's own."""
        return {"max_tokens": DEFAULT_MAX_TOKENS, **self.params.as_dict(), **model.params.as_dict()}


# --- loading ------------------------------------------------------------------------


def load_config(path: str | Path) -> EvalSpec:
    """Read, validate and resolve a YAML eval config.

    Raises ``ConfigError`` listing every problem (field path, YAML line, hint).
    """
    config_path = Path(path).expanduser().resolve()
    file = str(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(file, f"cannot read the config file: {err}") from None

    raw, root = _parse_yaml(file, text)
    ctx = _LoadContext(
        base_dir=config_path.parent,
        api_version=_api_version_of(raw),
    )
    errors = _duplicate_names(raw, root)
    try:
        config = EvalConfig.model_validate(raw, context={"batchmark": ctx})
    except ValidationError as err:
        errors = _format_errors(err, root) + errors
        config = None
    if errors or config is None:
        raise ConfigError(file, errors)

    return EvalSpec.model_construct(
        **dict(config),
        path=config_path,
        base_dir=ctx.base_dir,
        text=text,
        hash=_spec_hash(text, ctx),
        sources=dict(sorted(ctx.sources.items())),
    )


def _api_version_of(raw: dict[str, Any]) -> str | None:
    value = raw.get("api_version")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value if isinstance(value, str) else None


def _spec_hash(text: str, ctx: _LoadContext) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    for abs_path in sorted(ctx.sources):
        try:
            rel = Path(abs_path).relative_to(ctx.base_dir).as_posix()
        except ValueError:
            rel = Path(abs_path).as_posix()
        digest.update(b"\0" + rel.encode("utf-8") + b"\0" + ctx.sources[abs_path].encode("utf-8"))
    return digest.hexdigest()


def _parse_yaml(file: str, text: str) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(file, f"invalid YAML at {where}: {what}") from None
    except yaml.YAMLError as err:
        raise ConfigError(file, f"invalid YAML: {err}") from None
    if raw is None:
        raise ConfigError(
            file, "the config file is empty", hint="start from configs/quickstart.yaml"
        )
    if not isinstance(raw, dict):
        raise ConfigError(file, f"the config must be a mapping, got {type(raw).__name__}")
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise ConfigError(file, duplicates)
    return raw, root


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[str]:
    errors: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    errors.append(
                        f"{_join(path, key.value)} (line {line}): duplicate key "
                        f"(first at line {seen[key.value]})"
                    )
                seen.setdefault(key.value, line)
            errors += _duplicate_keys(value, _join(path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            errors += _duplicate_keys(item, f"{path}[{i}]")
    return errors


def _duplicate_names(raw: dict[str, Any], root: yaml.Node | None) -> list[str]:
    """Unique variant names and model keys, checked on the raw data (always runs)."""
    errors = []

    def check(section: str, keys: list[tuple[int, str, str]], what: str, hint: str) -> None:
        first: dict[str, int] = {}
        for i, key, field_name in keys:
            if key in first:
                loc = (section, i, field_name)
                errors.append(
                    f"{_loc_str(loc)}{_line_of(root, loc)}: duplicate {what} {key!r} "
                    f"(also {section}[{first[key]}])\n    hint: {hint}"
                )
            first.setdefault(key, i)

    prompts = raw.get("prompts")
    if isinstance(prompts, list):
        names = [
            (i, p["name"], "name")
            for i, p in enumerate(prompts)
            if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
        check("prompts", names, "variant name", "variant names must be unique")
    models = raw.get("models")
    if isinstance(models, list):
        keys = []
        for i, m in enumerate(models):
            if isinstance(m, str):
                keys.append((i, m, ""))
            elif isinstance(m, dict):
                key = m.get("name") or m.get("model")
                if isinstance(key, str):
                    keys.append((i, key, "name" if m.get("name") else "model"))
        check(
            "models",
            keys,
            "model key",
            "give a repeated model a distinct name: `- {name: x, model: <id>}`",
        )
    return errors


# --- error formatting ---------------------------------------------------------------


def _join(path: str, key: str) -> str:
    if not re.match(r"^[A-Za-z0-9_-]+$", key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "":
            continue
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, str(part))
    return out or "(top level)"


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    """`` (line N)`` of the deepest YAML node the location reaches below the top level."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not match:
                break
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return f" (line {line})" if line else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model class found at a location (to suggest field names)."""
    model: Any = EvalConfig
    for part in loc:
        if not isinstance(part, str):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _inner_model(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is dict:
        return None
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_errors(exc: ValidationError, root: yaml.Node | None) -> list[str]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        hint = ""
        if err["type"] == "batchmark":
            msg = ctx["msg"]
            hint = ctx.get("hint", "")
            if ctx.get("field"):
                loc = (*loc, ctx["field"])
        elif err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            msg = "unknown field"
            if model is not None:
                known = [n for n, f in model.model_fields.items() if not _skipped(f)]
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                hint = (
                    f"did you mean `{close[0]}`?" if close else "known fields: " + ", ".join(known)
                )
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msg = re.sub(r"a valid dictionary( or instance of \w+)?", "a mapping", msg)
            value = err.get("input")
            if isinstance(value, str | int | float | bool) or value is None:
                msg += f" (got {_short(value)})"
        entry = f"{_loc_str(loc)}{_line_of(root, loc)}: {msg}"
        if hint:
            entry += f"\n    hint: {hint}"
        errors.append(entry)
    return errors


def _skipped(info: Any) -> bool:
    return any(isinstance(m, SkipJsonSchema) for m in info.metadata) or (
        "SkipJsonSchema" in repr(info.annotation)
    )


# --- JSON Schema --------------------------------------------------------------------


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
    return schema
