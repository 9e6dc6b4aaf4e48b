"""The grid's requests against the API's rules, before anything is sent.

``RequestChecks(spec)`` runs ``config._rules.check_request`` over every request of the
grid (``checked(expand(spec))`` passes them through) with the config's model catalog
and API version, and traces each problem back to where the config set it: the model
entry (``models[1].model``), the params key (``models[1].params.temperature`` or the
top-level ``params.temperature``), or the prompt variant (``prompts[0].messages[2]`` for
a prefilled answer), with its YAML line. The same problem in 10,000 requests is one
entry with its count. ``validate`` and ``run`` call ``raise_errors()`` once the grid is
expanded: a ``ConfigError`` listing every problem, so ``run`` sends nothing.

``models_online(client, ids)`` asks an endpoint's Models API (``GET /v1/models/{id}``)
whether each model exists: ``validate --online`` and ``estimate`` with a key.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchmark._errors import ConfigError
from batchmark.config._load import ConfigLines
from batchmark.config._rules import Problem, _count_breakpoints, check_request
from batchmark.config._schema import EvalSpec

if TYPE_CHECKING:
    import anthropic

    from batchmark.runs._grid import Request

__all__ = ["Finding", "RequestChecks", "check_models_online", "models_online"]


@dataclass
class Finding:
    """One problem of the grid, where the config sets it, and how many requests have it."""

    loc: tuple[Any, ...]
    problem: Problem
    count: int = 0
    models: dict[str, None] = field(default_factory=dict)
    variants: dict[str, None] = field(default_factory=dict)
    first_id: str = ""


class RequestChecks:
    """Every request of a grid checked against the model catalog, problems deduplicated."""

    def __init__(self, spec: EvalSpec, *, today: _dt.date | None = None) -> None:
        self.spec = spec
        self.catalog = spec.model_catalog()
        self.today = today or _dt.datetime.now(_dt.UTC).date()
        self._pairs: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        self.findings: dict[tuple[Any, ...], Finding] = {}
        self._lines: ConfigLines | None = None
        self._first: Request | None = None
        self._scorers_checked = False
        self._model_index = {m.key: i for i, m in enumerate(spec.models)}
        self._variant_index = {v.name: i for i, v in enumerate(spec.prompts)}
        self._per_row = {v.name: _varies_per_row(v) for v in spec.prompts}

    def check(self, request: Request) -> None:
        """Check one request; remember its problems.

        The problems of a grid request depend only on its (model, variant) pair: the
        params, the roles of its messages and where ``cache_control`` sits are the same
        for every row (templates render plain strings), so each pair is checked once
        and its problems counted for each of its requests. A variant that takes a
        conversation or tools from the row is the exception: the last message's role
        (prefill) and the number of breakpoints vary by row, so its requests are
        checked once per (pair, last role, breakpoints).
        """
        if self._first is None:
            self._first = request
        pair: tuple[Any, ...] = (request.model_key, request.variant)
        if self._per_row.get(request.variant):
            pair += _row_shape(request.params)
        keys = self._pairs.get(pair)
        if keys is None:
            keys = self._pairs[pair] = []
            for problem in check_request(
                request.params, self.catalog, self.spec.api_version, today=self.today
            ):
                field = _config_message(problem.field, request.params, self.spec, request.variant)
                loc = self._loc(request.model_key, request.variant, field)
                key = (loc, problem.message, problem.severity)
                if key not in self.findings:
                    self.findings[key] = Finding(loc, problem, first_id=request.custom_id)
                keys.append(key)
        for key in keys:
            found = self.findings[key]
            found.count += 1
            found.models.setdefault(request.model_key)
            found.variants.setdefault(request.variant)

    def _check_scorers(self) -> None:
        """Check the request each batched scorer (a judge) would send about the first
        request (built with an empty answer, as ``estimate`` builds it): once per scorer,
        since a judge's model and params are the same for every item."""
        request = self._first
        if self._scorers_checked or request is None:
            return
        self._scorers_checked = True
        scorers = self.spec.build_scorers()
        judges = scorers.batched
        if not judges:
            return
        from batchmark.runs._datasets import iter_rows
        from batchmark.runs._scoring import scorer_request
        from batchmark.scorers import ScoreContext

        row = next(iter_rows(self.spec), None)  # the first request's row
        if row is None or row.id != request.row_id:
            return
        response = {"status": "succeeded", "text": "", "tool_calls": []}
        for judge in judges:
            ctx = ScoreContext(
                row.data,
                row.id,
                request.variant,
                request.model_key,
                request.epoch,
                request.params,
                response,
            )
            params = scorer_request(judge, ctx)
            if not isinstance(params, dict):
                continue
            k = list(scorers).index(judge)
            for problem in check_request(
                params, self.catalog, self.spec.api_version, today=self.today
            ):
                loc = self._scorer_loc(k, problem.field)
                key = (loc, problem.message, problem.severity)
                found = self.findings.setdefault(
                    key, Finding(loc, problem, first_id=f"{request.custom_id} (judge)")
                )
                found.count += 1
                found.models.setdefault(str(params.get("model")))
                found.variants.setdefault(f"judge:{judge.name}")

    def checked(self, requests: Iterable[Request]) -> Iterator[Request]:
        """``requests``, each checked as it passes."""
        for request in requests:
            self.check(request)
            yield request

    def errors(self) -> list[str]:
        """One ``ConfigError`` entry per distinct error (the judges' requests checked once
        the grid's have been)."""
        self._check_scorers()
        return [self._entry(f) for f in self.findings.values() if f.problem.severity == "error"]

    def warnings(self) -> list[str]:
        """One entry per distinct warning (accepted by the API, worth knowing)."""
        self._check_scorers()
        return [self._entry(f) for f in self.findings.values() if f.problem.severity == "warning"]

    def raise_errors(self, *, sending: bool = False) -> None:
        """A ``ConfigError`` listing every error found, if any."""
        errors = self.errors()
        if errors:
            hint = "the API would refuse these requests" + ("; nothing was sent" if sending else "")
            raise ConfigError(str(self.spec.path), errors, hint=hint)

    # --- where the config sets a request field -------------------------------------------

    @property
    def lines(self) -> ConfigLines:
        if self._lines is None:
            self._lines = ConfigLines(str(self.spec.path), self.spec.text)
        return self._lines

    def _loc(self, model_key: str, variant: str, request_field: str) -> tuple[Any, ...]:
        i = self._model_index.get(model_key, 0)
        j = self._variant_index.get(variant, 0)
        raw = self.lines.raw
        model = _at(raw, "models", i)
        parts = [int(p) if p.isdigit() else p for p in request_field.split(".")]
        top = parts[0]
        if top == "model":
            return ("models", i) if isinstance(model, str) else ("models", i, "model")
        prompt = _at(raw, "prompts", j)
        if top in ("messages", "system"):
            if top == "messages" and isinstance(prompt, dict) and "messages" in prompt:
                return ("prompts", j, "messages", *parts[1:2])
            names = ("system", "system_file") if top == "system" else ("user", "user_file")
            key = next((n for n in names if isinstance(prompt, dict) and n in prompt), None)
            return ("prompts", j, key) if key else ("prompts", j)
        variant_key = _VARIANT_KEYS.get(top, ())
        key = next((n for n in variant_key if isinstance(prompt, dict) and n in prompt), None)
        if key is not None:  # set by the variant (tools, tool_choice, output schema)
            return ("prompts", j, key, *(parts[1:] if key != "tools_file" else ()))
        own = model.get("params") if isinstance(model, dict) else None
        if isinstance(own, dict) and top in own:
            return ("models", i, "params", *parts)
        shared = raw.get("params")
        if isinstance(shared, dict) and top in shared:
            return ("params", *parts)
        return ("models", i)

    def _scorer_loc(self, k: int, request_field: str) -> tuple[Any, ...]:
        raw = _at(self.lines.raw, "scorers", k)
        options = next(iter(raw.values()), None) if isinstance(raw, dict) and len(raw) == 1 else raw
        parts = [int(p) if p.isdigit() else p for p in request_field.split(".")]
        params = options.get("params") if isinstance(options, dict) else None
        if parts[0] == "model":
            return ("scorers", k, "model")
        if isinstance(params, dict) and parts[0] in params:
            return ("scorers", k, "params", *parts)
        return ("scorers", k)

    def _entry(self, found: Finding) -> str:
        p = found.problem
        where = _cells(found)
        if p.severity == "error":
            what = f"{p.message} [{p.status} {p.error_type}; {where}]"
        else:
            what = f"{p.message} [{where}]"
        return self.lines.entry(found.loc, what, p.hint)


_VARIANT_KEYS = {
    "tools": ("tools", "tools_file"),
    "tool_choice": ("tool_choice",),
}
"""Request fields a prompt variant may set, and the variant's keys that set them."""


def _varies_per_row(variant: Any) -> bool:
    """Whether a variant's requests differ by row in more than rendered strings."""
    slots = any(m.kind == "conversation" for m in variant.messages or ())
    return slots or variant.tools_field is not None


def _row_shape(params: dict[str, Any]) -> tuple[Any, ...]:
    """What the rules read of a row's own messages and tools: the last role (prefill)
    and how many blocks carry ``cache_control``."""
    messages = params.get("messages") or [{}]
    return (messages[-1].get("role"), _count_breakpoints(params))


def _config_message(request_field: str, params: dict[str, Any], spec: Any, name: str) -> str:
    """``messages.N...`` of a request as ``messages.K``, K the variant's entry that made
    message N (a conversation entry stands for all of its row's messages); other
    fields as they are."""
    parts = request_field.split(".")
    if parts[0] != "messages" or len(parts) < 2 or not parts[1].isdigit():
        return request_field
    variant = next((v for v in spec.prompts if v.name == name), None)
    entries = list(variant.messages or ()) if variant is not None else []
    slots = [k for k, m in enumerate(entries) if m.kind == "conversation"]
    if not slots:
        return request_field
    n, total = int(parts[1]), len(params.get("messages") or ())
    before, after = slots[0], len(entries) - 1 - slots[-1]
    if n < before:
        k = n
    elif n >= total - after:
        k = len(entries) - (total - n)
    else:
        k = slots[0]  # with two conversations, which one holds it is not known here
    return f"messages.{k}"


def _at(raw: Any, section: str, index: int) -> Any:
    items = raw.get(section) if isinstance(raw, dict) else None
    return items[index] if isinstance(items, list) and index < len(items) else None


def _cells(found: Finding) -> str:
    n = found.count
    models = ", ".join(found.models)
    variants = ", ".join(found.variants)
    head = f"{n:,} request{'s' if n != 1 else ''}" if n > 1 else f"request {found.first_id}"
    return f"{head}: model {models}, variant {variants}"


def models_online(client: anthropic.Anthropic, ids: Iterable[str]) -> dict[str, str | None]:
    """Model id -> why the endpoint does not serve it (``None``: it does), asking
    ``GET /v1/models/{id}``. A retired model is reported too."""
    import anthropic

    out: dict[str, str | None] = {}
    for model in dict.fromkeys(ids):
        try:
            info = client.models.retrieve(model)
        except anthropic.NotFoundError as err:
            out[model] = f"not found (404 {_error_type(err)})"
            continue
        lifecycle = getattr(info, "lifecycle", None)
        out[model] = f"retired ({info.id})" if lifecycle == "retired" else None
    return out


def check_models_online(spec: EvalSpec, client: anthropic.Anthropic, endpoint: str) -> None:
    """Ask ``endpoint`` (through ``client``) whether every model of the config exists:
    those of ``models:`` and the judges'. Raises ``ConfigError`` naming each one it does
    not serve, with its YAML line."""
    lines = ConfigLines(str(spec.path), spec.text)
    where: dict[str, tuple[Any, ...]] = {}
    for i, m in enumerate(spec.models):
        raw = _at(lines.raw, "models", i)
        where.setdefault(m.model, ("models", i) if isinstance(raw, str) else ("models", i, "model"))
    for k, scorer in enumerate(spec.build_scorers()):
        model = getattr(scorer, "model", None)
        if isinstance(model, str):
            where.setdefault(model, ("scorers", k, "model"))
    errors = []
    for model, why in models_online(client, where).items():
        if why is not None:
            errors.append(lines.entry(where[model], f"model {model}: {why} at {endpoint}"))
    if errors:
        raise ConfigError(
            str(spec.path), errors, hint="GET /v1/models lists the models the endpoint serves"
        )


def _error_type(err: Any) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(inner.get("type", "not_found_error"))
