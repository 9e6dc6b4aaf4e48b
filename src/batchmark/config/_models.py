"""The model catalog: one source of model facts, each with its source.

``models.json`` beside this module lists every model batchmark knows: ids, aliases and
dated snapshots; per model its context window and output cap, which sampling
parameters it takes, prefill, thinking modes, effort levels, vision and PDF input, the
prompt-cache minimum, standard prices, deprecation and retirement dates, and for each
fact where it comes from (``sources``: a field name -> keys of the file's top-level
``sources`` map). ``null`` means *not established*: no rule is derived from it.

Everything that needs a model fact reads it here: ``validate`` and ``run`` (the request
rules in ``_rules``), ``estimate`` and run costs (``_pricing``), the prompt-cache
placement (``runs._grid``) and the emulator (its checks, its prompt cache and its
Models API). A config's ``catalog:`` section adds entries (a model released after this
version of batchmark) or overrides facts of existing ones; ``like:`` starts a new entry
from an existing one's facts.

    catalog = default_catalog()
    catalog.get("claude-haiku-4-5").id            # 'claude-haiku-4-5-20251001'
    catalog.suggest("claude-haiku-4.5")           # ['claude-haiku-4-5', ...]
    catalog.with_entries({"claude-new-6": ModelFacts(like="claude-sonnet-5-5")})

The pydantic models below are both the schema of ``models.json`` (checked on load) and
of the config's ``catalog:`` section, so their docstrings are the catalog's reference
(docs/models.md).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "CATALOG_PATH",
    "FALLBACK_CACHE_MIN_TOKENS",
    "ApiFacts",
    "Catalog",
    "LongContextPrice",
    "ModelFacts",
    "Price",
    "ThinkingFacts",
    "catalog_for",
    "default_catalog",
    "load_catalog",
    "min_cacheable_tokens",
]

CATALOG_PATH = Path(__file__).with_name("models.json")
FALLBACK_CACHE_MIN_TOKENS = 1024
"""The prompt-cache minimum assumed where the catalog has none (a new model, or one whose
minimum is not published): where to place a breakpoint and what the emulator caches, not
a rule. A breakpoint under the real minimum costs nothing (the prefix is not cached)."""

Effort = Literal["low", "medium", "high", "xhigh", "max"]
ModeRule = Literal["accepted", "rejected", "effort_at_most_high"]


class _Facts(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


class LongContextPrice(_Facts):
    """Prices of a request whose prompt is over ``above_tokens``: every token of that
    request, its output included, is billed at these (Haiku 5.5)."""

    above_tokens: int = Field(ge=1)
    """Prompt tokens (input + cache writes + cache reads) above which these apply."""
    input: float = Field(ge=0)
    """Input tokens, USD per million."""
    output: float = Field(ge=0)
    """Output tokens, USD per million."""
    cache_write_5m: float | None = Field(default=None, ge=0)
    """5-minute cache writes, USD per million (default 1.25 x input)."""
    cache_write_1h: float | None = Field(default=None, ge=0)
    """1-hour cache writes, USD per million (default 2 x input)."""
    cache_read: float | None = Field(default=None, ge=0)
    """Cache reads, USD per million (default 0.1 x input)."""


class Price(_Facts):
    """Standard (non-batch) prices of one model in USD per million tokens. The batch
    discount (50%) applies on top; cache prices default to the usual multipliers of
    the input price (writes 1.25x for 5 minutes, 2x for 1 hour; reads 0.1x)."""

    input: float = Field(ge=0)
    """Input tokens, USD per million."""
    output: float = Field(ge=0)
    """Output tokens, USD per million."""
    cache_write_5m: float | None = Field(default=None, ge=0)
    """5-minute cache writes, USD per million (default 1.25 x input)."""
    cache_write_1h: float | None = Field(default=None, ge=0)
    """1-hour cache writes, USD per million (default 2 x input)."""
    cache_read: float | None = Field(default=None, ge=0)
    """Cache reads, USD per million (default 0.1 x input)."""
    long_context: LongContextPrice | None = None
    """Other prices for requests with a long prompt, where the model has them."""


class ThinkingFacts(_Facts):
    """Which `thinking` settings a model accepts (`null`: not established)."""

    enabled: Literal["accepted", "deprecated", "rejected"] | None = None
    """`{type: enabled, budget_tokens: N}` (extended thinking with a budget): accepted,
    deprecated (accepted, with a warning from validate) or rejected (400)."""
    adaptive: bool | None = None
    """Whether `{type: adaptive}` is accepted."""
    disabled: ModeRule | None = None
    """`{type: disabled}`: accepted, rejected, or `effort_at_most_high` (accepted unless
    `output_config.effort` is `xhigh` or `max`)."""
    between_tools: ModeRule | None = None
    """`{type: between_tools}`, as `disabled`."""
    default: Literal["off", "adaptive", "always"] | None = None
    """What the model does when `thinking` is left out: `off`, `adaptive` (thinks, can
    be switched off) or `always` (thinks, cannot be switched off)."""
    forced_tool_choice: Literal["without_thinking", "never"] | None = None
    """A forced `tool_choice` (`any` or `tool`): accepted only without thinking, or
    never. Explicit thinking with a forced tool_choice is refused on every model."""
    display: Literal["summarized", "omitted"] | None = None
    """What `thinking.display` defaults to: the thinking text summarized, or omitted."""


class ModelFacts(_Facts):
    """What the Claude API accepts from one model. Every field may be `null` (not
    established): batchmark then checks nothing about it."""

    id: SkipJsonSchema[str | None] = None
    display_name: str | None = None
    """Human-readable name, e.g. `Claude Haiku 4.5`."""
    like: str | None = None
    """In a config's `catalog:` section: start from the facts of this catalog model (id
    or alias), then apply the fields given here."""
    line: str | None = None
    """The model line: `haiku`, `sonnet`, `opus`, `fable`, `mythos`."""
    aliases: list[str] = Field(default_factory=list)
    """Other ids the API resolves to this one (`claude-haiku-4-5` for the dated
    snapshot `claude-haiku-4-5-20251001`)."""
    status: Literal["active", "legacy", "deprecated", "retired"] | None = None
    """`active`, `legacy` (available, not recommended), `deprecated` (a retirement date
    is set) or `retired` (requests fail: 404 `not_found_error`)."""
    released: _dt.date | None = None
    """Release date."""
    deprecated_on: _dt.date | None = None
    """When the model was deprecated."""
    retires_on: _dt.date | None = None
    """Scheduled retirement date. Once it has passed the retirement is overdue, not
    done (SDK ``ModelInfo.retires_at``: "`lifecycle` is the retirement signal"): validate
    warns; only `status: retired` makes requests fail with 404."""
    retirement_not_before: _dt.date | None = None
    """The earliest retirement date announced, while none is scheduled."""
    replacement: str | None = None
    """The model to move to once this one retires."""
    context_window: int | None = Field(default=None, ge=1)
    """Input context window in tokens."""
    max_output_tokens: int | None = Field(default=None, ge=1)
    """The largest `max_tokens` accepted (400 above it)."""
    max_output_tokens_batch_beta: int | None = Field(default=None, ge=1)
    """The output cap in batches with the `output-300k-2026-03-24` beta header (which
    batchmark does not send)."""
    sampling: Literal["any", "temperature_or_top_p", "removed"] | None = None
    """`temperature` / `top_p` / `top_k` under API version 2023-06-01 (2026-10-21 takes
    none of them on any model): `any`; `temperature_or_top_p` (each alone, not
    temperature and top_p together); `removed` (non-default values are refused)."""
    prefill: bool | None = None
    """Whether a request may end with an assistant message (a prefilled answer)."""
    thinking: ThinkingFacts = Field(default_factory=ThinkingFacts)
    """Thinking modes accepted."""
    effort: list[Effort] | None = None
    """`output_config.effort` levels accepted (`[]`: effort not supported)."""
    effort_default: Effort | None = None
    """The effort level when none is given."""
    vision: bool | None = None
    """Whether image input is accepted."""
    pdf: bool | None = None
    """Whether PDF input is accepted."""
    cache_min_tokens: int | None = Field(default=None, ge=1)
    """Minimum cacheable prompt prefix in tokens; a shorter prefix is not cached (no
    error, both cache counters 0)."""
    price: Price | None = None
    """Standard prices, USD per million tokens."""
    sources: dict[str, list[str]] = Field(default_factory=dict)
    """Where each fact comes from: field name -> source keys (the catalog's `sources`)
    or, in a config, free text (a URL)."""
    notes: dict[str, str] = Field(default_factory=dict)
    """Field name -> what is uncertain about it, conflicts between sources."""

    @field_validator(
        "released", "deprecated_on", "retires_on", "retirement_not_before", mode="before"
    )
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # JSON has strings; YAML has dates for unquoted 2026-11-30.
        return _dt.date.fromisoformat(value) if isinstance(value, str) else value

    def retired(self, today: _dt.date) -> bool:
        """Whether requests naming this model fail on ``today``: its status is
        ``retired``. A ``retires_on`` gone by alone is ``overdue``: the SDK's
        ``ModelInfo.retires_at`` says "A past date on a `deprecated` model means
        retirement is overdue, not that it has occurred: `lifecycle` is the retirement
        signal" (the schedule can be revised until then)."""
        return self.status == "retired"

    def overdue(self, today: _dt.date) -> bool:
        """Whether the scheduled retirement date has come but the model is not retired:
        requests may start failing (404) any day."""
        return not self.retired(today) and self.retires_on is not None and self.retires_on <= today

    def lifecycle(self, today: _dt.date) -> Literal["active", "deprecated", "retired"]:
        """The Models API's ``lifecycle`` of this model on ``today``."""
        if self.retired(today):
            return "retired"
        return "deprecated" if self.status == "deprecated" else "active"


class ApiVersionFacts(_Facts):
    """What one `anthropic-version` accepts."""

    request_keys: list[str]
    """The top-level keys of a Messages request; any other key is refused (400
    `<key>: Extra inputs are not permitted`)."""


class ApiFacts(_Facts):
    """Facts about the API rather than a model."""

    sdk_version: str
    """The `anthropic-version` the SDK sends when a config sets no `api_version`."""
    versions: dict[str, ApiVersionFacts]
    """Per `anthropic-version`."""
    max_cache_breakpoints: int
    """Most blocks with `cache_control` one request may carry."""
    thinking_budget_min: int
    """Smallest `thinking.budget_tokens`."""
    sources: dict[str, list[str]] = Field(default_factory=dict)
    """Field name -> source keys."""
    notes: dict[str, str] = Field(default_factory=dict)
    """Field name -> remarks."""


class Catalog:
    """Model facts by id, resolving aliases; immutable (``with_entries`` makes a new one)."""

    def __init__(
        self,
        models: Mapping[str, ModelFacts],
        api: ApiFacts,
        sources: Mapping[str, Any] | None = None,
    ) -> None:
        self.api = api
        self.sources: dict[str, Any] = dict(sources or {})
        self._models = {mid: _with_id(facts, mid) for mid, facts in models.items()}
        self._alias: dict[str, str] = {}
        for mid, facts in self._models.items():
            for alias in facts.aliases:
                self._alias.setdefault(alias, mid)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self._models)

    def get(self, name: str) -> ModelFacts | None:
        """The facts of a model id or alias (``.id`` is the canonical id), else None."""
        facts = self._models.get(name)
        if facts is None and name in self._alias:
            facts = self._models[self._alias[name]]
        return facts

    def entries(self) -> Iterator[ModelFacts]:
        """Every model, in catalog order (newest families first)."""
        return iter(self._models.values())

    def names(self) -> list[str]:
        """Every id and alias."""
        return [*self._models, *self._alias]

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Ids and aliases close to ``name`` ("did you mean"), closest first; retired
        models only when nothing else is close."""
        today = _dt.date.today()
        names = self.names()
        live = [x for x in names if not self._lookup(x).retired(today)]
        for pool in (live, names):
            close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
            close = close or [x for x in pool if len(name) >= 4 and name in x][:n]
            if close:
                return close
        return []

    def min_cacheable_tokens(self, model: str) -> int:
        """The shortest prompt prefix ``model`` caches: its ``cache_min_tokens``, else
        ``FALLBACK_CACHE_MIN_TOKENS`` (unknown model, or a minimum not established)."""
        facts = self.get(model)
        if facts is None or facts.cache_min_tokens is None:
            return FALLBACK_CACHE_MIN_TOKENS
        return facts.cache_min_tokens

    def _lookup(self, name: str) -> ModelFacts:
        facts = self.get(name)
        assert facts is not None
        return facts

    def with_entries(self, entries: Mapping[str, ModelFacts]) -> Catalog:
        """A catalog with ``entries`` added: an id (or alias) already here has the
        fields given in its entry replaced (``thinking`` field by field); a new id
        starts from ``like``'s facts, else from nothing known."""
        if not entries:
            return self
        models = dict(self._models)
        for name, entry in entries.items():
            given = entry.model_dump(exclude_unset=True, exclude={"like", "id"})
            known = self.get(name)
            mid = known.id if known is not None else name
            base = known if known is not None else self.get(entry.like) if entry.like else None
            if base is None:
                models[mid] = _with_id(ModelFacts.model_validate(given), mid)
                continue
            merged = base.model_dump(exclude={"id", "like"})
            if known is None:  # a new model like another: its behaviour, not its identity
                merged = {k: v for k, v in merged.items() if k not in _IDENTITY}
                merged["notes"] = {"like": f"facts not given here are {base.id}'s"}
            thinking = {**merged["thinking"], **given.pop("thinking", {})}
            merged.update(given, thinking=thinking)
            models[mid] = _with_id(ModelFacts.model_validate(merged), mid)
        return Catalog(models, self.api, self.sources)


_IDENTITY = {
    "display_name",
    "aliases",
    "status",
    "released",
    "deprecated_on",
    "retires_on",
    "retirement_not_before",
    "replacement",
    "notes",
}
"""Facts a new entry does not take from the model it is ``like``."""


def _with_id(facts: ModelFacts, mid: str) -> ModelFacts:
    return facts if facts.id == mid else facts.model_copy(update={"id": mid})


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read and check a catalog file (``models.json``); raises ``ValueError``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    models = {mid: ModelFacts.model_validate(m) for mid, m in data["models"].items()}
    return Catalog(models, ApiFacts.model_validate(data["api"]), data.get("sources"))


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with batchmark (``models.json``), read once."""
    return load_catalog()


def min_cacheable_tokens(model: str, catalog: Catalog | None = None) -> int:
    """The shortest prompt prefix ``model`` caches, from ``catalog`` (default: the
    shipped one): what the grid's breakpoint placement, the estimate and the emulator
    all compare a prefix with."""
    return (catalog or default_catalog()).min_cacheable_tokens(model)


def catalog_for(entries: Mapping[str, ModelFacts] | None) -> Catalog:
    """The shipped catalog with a config's ``catalog:`` entries applied."""
    return default_catalog().with_entries(entries or {})
