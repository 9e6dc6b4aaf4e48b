"""The request rules of the Claude API, checked offline against the model catalog.

``check_request(params, catalog, api_version)`` returns every ``Problem`` of one
Messages request (the ``params`` of a batch entry): what the real API would refuse,
each with the field it is about, the API's error type and HTTP status and a message
close to the real one. ``batchmark validate`` and ``run`` call it for every request of
the grid (and refuse to send any when one fails); the emulator calls it for each request
it answers, so that what ``validate`` and ``--emulate`` accept the real API accepts.

The rules, and where the facts come from (research for issue 15; messages seen on the
wire in public issue threads unless marked [inferred]):

- unknown model, or a retired one (``status: retired``): 404 ``not_found_error``
  ``model: <id>`` (anthropics/claude-code#6169, vicharanashala/vibe#1259); a model past
  its scheduled retirement date but not retired is a warning (SDK ``ModelInfo``: a past
  ``retires_at`` means retirement is overdue, not that it has occurred);
- a top-level key the API version does not know: 400 ``<key>: Extra inputs are not
  permitted`` (amrit110/oli#7); under 2026-10-21 this is how ``temperature``, ``top_p``
  and ``top_k`` are refused on every model (docs api/migration-2026-10-21);
- sampling under 2023-06-01, per model (``ModelFacts.sampling``): ``temperature`` and
  ``top_p`` together on one-sampler models (open-webui#17922, docs Haiku 4.5 migration
  guide); non-default values on models that removed sampling (Comfy-Org/ComfyUI#13923;
  the ``top_p`` / ``top_k`` wording is [inferred]). ``temperature: 1.0`` (the default)
  is let through there: whether it is accepted is not established;
- ``max_tokens`` above the model's output cap (anthropics/claude-code#24451);
- thinking: a forced ``tool_choice`` with thinking on (mastra-ai/mastra#7507), and on
  models that refuse forced tool use altogether (docs whats-new-opus-5-5; the message
  there is [inferred]); ``budget_tokens`` under 1024 (tingly-dev/tingly-box#569) or not
  under ``max_tokens`` (liuw1535/antigravity2api-nodejs#149); ``enabled`` / ``disabled``
  where refused (docs whats-new-opus-5-5, quoted), ``adaptive`` / ``between_tools``
  where refused ([inferred] from those); ``disabled`` / ``between_tools`` with effort
  ``xhigh`` / ``max`` where only ``high`` and below go without thinking
  (logancyang/obsidian-copilot#2843);
- assistant prefill on models that refuse it (jobrunr/JavaClaw#36);
- more than 4 ``cache_control`` breakpoints on tools, system and message blocks
  (tghamm/Anthropic.SDK#50); whether a top-level ``cache_control`` counts is unknown,
  so it is not counted.

Left out because the facts are unknown: effort levels a model does not support (the
error text is unknown), the context window (only an approximate token count is at
hand offline), the 2026-10-21 rules on document blocks and citations.

A ``Problem`` with ``severity="warning"`` (a deprecated model or thinking mode) is not
refused; validate shows it.
"""

from __future__ import annotations

import datetime as _dt
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from batchmark.config._models import Catalog, ModelFacts

__all__ = ["Problem", "check_request", "first_error", "refusal_key"]

SAMPLING_KEYS = ("temperature", "top_p", "top_k")
DEFAULT_TEMPERATURE = 1.0
HIGH_EFFORTS = ("xhigh", "max")
THINKING_DOCS = (
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)
FORCED_TOOL = "Thinking may not be enabled when tool_choice forces tool use."
PREFILL = (
    "This model does not support assistant message prefill. The conversation must end "
    "with a user message."
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing the API would refuse (or warn about) in a request."""

    field: str
    """Where in the request, dotted: ``model``, ``thinking.budget_tokens``,
    ``messages.3``, ``tools.4.cache_control``."""
    message: str
    """Close to the API's own ``error.message``."""
    error_type: str = "invalid_request_error"
    """The API's ``error.type``: ``invalid_request_error`` or ``not_found_error``."""
    status: int = 400
    """The HTTP status of the API's answer."""
    hint: str = ""
    """For people: what to do (did you mean ...); not part of the API's answer."""
    severity: Literal["error", "warning"] = "error"
    """``warning``: accepted by the API, but worth knowing (not refused)."""


def first_error(problems: list[Problem]) -> Problem | None:
    """The problem the API would answer with: the first error."""
    return next((p for p in problems if p.severity == "error"), None)


def check_request(
    params: Mapping[str, Any],
    catalog: Catalog,
    api_version: str | None = None,
    *,
    today: _dt.date | None = None,
) -> list[Problem]:
    """Every problem of one Messages request under ``api_version`` (``None``: the
    version the SDK sends), errors in the order the API would meet them."""
    version = api_version or catalog.api.sdk_version
    problems = list(_unknown_keys(params, catalog, version))
    model = params.get("model")
    if not isinstance(model, str):
        return problems  # the request's shape is the emulator's own check
    facts = catalog.get(model)
    today = today or _dt.datetime.now(_dt.UTC).date()
    if facts is None or facts.retired(today):
        problems.append(_not_found(model, facts, catalog))
        return problems
    if facts.overdue(today):
        problems.append(
            Problem(
                "model",
                f"{model} was scheduled to retire on {facts.retires_on} (overdue): the API "
                "may refuse it (404) from any day now",
                hint="`batchmark validate --online` asks the endpoint whether it still "
                "serves it" + (f"; move to {facts.replacement}" if facts.replacement else ""),
                severity="warning",
            )
        )
    elif facts.status == "deprecated" and facts.retires_on is not None:
        problems.append(
            Problem(
                "model",
                f"{model} is deprecated and retires on {facts.retires_on}",
                hint=_replace_hint(facts),
                severity="warning",
            )
        )
    if version == "2023-06-01":
        problems += _sampling(params, facts)
    problems += _max_tokens(params, facts)
    problems += _thinking(params, facts, catalog)
    problems += _prefill(params, facts)
    problems += _breakpoints(params, catalog)
    return problems


_SCALARS = frozenset((str, int, float, bool, type(None)))


def refusal_key(params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Everything ``check_request``'s first error depends on besides the catalog, the API
    version and the date: two requests with equal keys get the same answer (error type,
    status and message; not the same field paths). It leaves out the text, so the
    emulator checks a batch's requests once per shape, not once each. ``None`` for a
    request whose shape is not plain JSON scalars where the rules look (check it
    itself). Keep it in step with the rules above: tests compare the two on many
    requests."""
    get = params.get
    key: list[Any] = [tuple(params)]
    for name in ("thinking", "output_config", "tool_choice"):
        part = get(name)
        if part is None:
            key.append(None)
            continue
        if type(part) is not dict:
            return None
        for value in part.values():
            if type(value) not in _SCALARS:
                return None
        key.append(tuple(part.items()))
    for name in ("model", "max_tokens", *SAMPLING_KEYS):
        value = get(name)
        if type(value) not in _SCALARS:
            return None
        key.append(value)
    messages = get("messages")
    last = messages[-1] if type(messages) is list and messages else None
    role = last.get("role") if type(last) is dict else None
    if type(role) not in _SCALARS:
        return None
    key.append(role)
    key.append(_count_breakpoints(params))
    return tuple(key)


def _count_breakpoints(params: Mapping[str, Any]) -> int:
    """``len(list(_breakpoint_fields(params)))``, without building the paths."""
    count = 0
    lists = [params.get("tools"), params.get("system")]
    messages = params.get("messages")
    if isinstance(messages, list):
        lists += [m.get("content") for m in messages if isinstance(m, Mapping)]
    for blocks in lists:
        if type(blocks) is list:
            for block in blocks:
                if isinstance(block, Mapping) and block.get("cache_control"):
                    count += 1
    return count


def _unknown_keys(params: Mapping[str, Any], catalog: Catalog, version: str) -> Iterator[Problem]:
    known = catalog.api.versions.get(version)
    if known is None:
        return  # the emulator refuses an unknown anthropic-version itself
    for key in params:
        if key in known.request_keys:
            continue
        if key in SAMPLING_KEYS:
            hint = (
                f"API version {version} takes no sampling parameters: set `api_version: "
                f'"2023-06-01"` in the config or remove it'
            )
        else:
            close = difflib.get_close_matches(str(key), known.request_keys, n=1)
            hint = f"did you mean `{close[0]}`?" if close else ""
        yield Problem(str(key), f"{key}: Extra inputs are not permitted", hint=hint)


def _not_found(model: str, facts: ModelFacts | None, catalog: Catalog) -> Problem:
    if facts is not None:
        when = f" on {facts.retires_on}" if facts.retires_on else ""
        hint = f"{facts.id} was retired{when}" + (
            f"; use {facts.replacement}" if facts.replacement else ""
        )
    else:
        close = catalog.suggest(model)
        hint = (
            f"did you mean {' or '.join(f'`{c}`' for c in close)}?"
            if close
            else "not in batchmark's model catalog; a newer model can be added under `catalog:`"
        )
    return Problem("model", f"model: {model}", "not_found_error", 404, hint)


def _replace_hint(facts: ModelFacts) -> str:
    return f"move to {facts.replacement}" if facts.replacement else ""


def _sampling(params: Mapping[str, Any], facts: ModelFacts) -> Iterator[Problem]:
    if facts.sampling == "removed":
        for key in SAMPLING_KEYS:
            value = params.get(key)
            if value is None or (key == "temperature" and value == DEFAULT_TEMPERATURE):
                continue
            yield Problem(
                key,
                f"`{key}` is deprecated for this model.",
                hint="this model takes no sampling parameters; remove it",
            )
    elif facts.sampling == "temperature_or_top_p":
        if params.get("temperature") is not None and params.get("top_p") is not None:
            yield Problem(
                "top_p",
                "`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one.",
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _max_tokens(params: Mapping[str, Any], facts: ModelFacts) -> Iterator[Problem]:
    n, cap = params.get("max_tokens"), facts.max_output_tokens
    if _is_int(n) and cap is not None and n > cap:
        yield Problem(
            "max_tokens",
            f"max_tokens: {n} > {cap}, which is the maximum allowed number of output tokens "
            f"for {facts.id}",
        )


def _not_supported(kind: str) -> str:
    return (
        f'"thinking.type.{kind}" is not supported for this model. Use "thinking.type.adaptive" '
        'and "output_config.effort" to control thinking behavior.'
    )


def _effort_without_thinking(effort: str) -> str:
    return (
        f"output_config.effort '{effort}' is not supported when thinking is disabled on this "
        "model. Use effort 'high' or below, or enable thinking."
    )


def _thinking(params: Mapping[str, Any], facts: ModelFacts, catalog: Catalog) -> Iterator[Problem]:
    thinking = params.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, Mapping) else None
    config = params.get("output_config")
    effort = config.get("effort") if isinstance(config, Mapping) else None
    t = facts.thinking
    refused = False
    if kind == "enabled":
        if t.enabled == "rejected":
            refused = True
            yield Problem("thinking.type", _not_supported("enabled"))
        else:
            if t.enabled == "deprecated":
                yield Problem(
                    "thinking.type",
                    "thinking.type=enabled is deprecated for this model",
                    hint="use `thinking: {type: adaptive}` (and `output_config.effort`)",
                    severity="warning",
                )
            yield from _budget(thinking, params.get("max_tokens"), catalog)  # type: ignore[arg-type]
    elif kind == "adaptive" and t.adaptive is False:
        refused = True
        yield Problem(  # [inferred] wording, after the Opus 5.5 messages
            "thinking.type",
            '"thinking.type.adaptive" is not supported for this model. Use '
            '"thinking.type.enabled" and "thinking.budget_tokens" to control thinking behavior.',
        )
    elif kind in ("disabled", "between_tools"):
        rule = t.disabled if kind == "disabled" else t.between_tools
        if rule == "rejected":
            yield Problem("thinking.type", _not_supported(kind))
        elif rule == "effort_at_most_high" and effort in HIGH_EFFORTS:
            yield Problem("output_config.effort", _effort_without_thinking(effort))
    choice = params.get("tool_choice")
    forced = isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")
    if not forced or refused:
        return
    thinking_on = kind in ("enabled", "adaptive") or (
        thinking is None and t.default in ("adaptive", "always")
    )
    omitted_on = thinking is None and thinking_on and t.forced_tool_choice == "without_thinking"
    if t.forced_tool_choice == "never" or kind in ("enabled", "adaptive") or omitted_on:
        hint = (
            "this model refuses a forced tool_choice; use `tool_choice: {type: auto}`"
            if t.forced_tool_choice == "never"
            else "use `tool_choice: {type: auto}`, or turn thinking off"
        )
        yield Problem("tool_choice", FORCED_TOOL, hint=hint)


def _budget(thinking: Mapping[str, Any], max_tokens: Any, catalog: Catalog) -> Iterator[Problem]:
    budget = thinking.get("budget_tokens")
    if not _is_int(budget):
        return
    least = catalog.api.thinking_budget_min
    if budget < least:
        yield Problem(
            "thinking.budget_tokens",
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {least}",
        )
    elif _is_int(max_tokens) and budget >= max_tokens:
        yield Problem(
            "thinking.budget_tokens",
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {THINKING_DOCS}",
            hint=f"raise max_tokens above {budget}, or lower budget_tokens",
        )


def _prefill(params: Mapping[str, Any], facts: ModelFacts) -> Iterator[Problem]:
    messages = params.get("messages")
    if facts.prefill is not False or not isinstance(messages, list) or not messages:
        return
    last = messages[-1]
    if isinstance(last, Mapping) and last.get("role") == "assistant":
        yield Problem(
            f"messages.{len(messages) - 1}",
            PREFILL,
            hint="end the conversation with a user message (ask for the format instead)",
        )


def _breakpoint_fields(params: Mapping[str, Any]) -> Iterator[str]:
    """The dotted path of every block carrying ``cache_control``, in prefix order."""
    tools = params.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, Mapping) and tool.get("cache_control"):
            yield f"tools.{i}.cache_control"
    system = params.get("system")
    for i, block in enumerate(system if isinstance(system, list) else []):
        if isinstance(block, Mapping) and block.get("cache_control"):
            yield f"system.{i}.cache_control"
    messages = params.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, Mapping) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, Mapping) and block.get("cache_control"):
                yield f"messages.{i}.content.{j}.cache_control"


def _breakpoints(params: Mapping[str, Any], catalog: Catalog) -> Iterator[Problem]:
    most = catalog.api.max_cache_breakpoints
    fields = list(_breakpoint_fields(params))
    if len(fields) > most:
        yield Problem(
            fields[most],
            f"A maximum of {most} blocks with cache_control may be provided. Found {len(fields)}.",
            hint=f"keep at most {most} cache_control markers (batchmark adds one with "
            "`prompt_cache: auto`)",
        )
