"""The model catalog in the emulator: its request rules and the Models API.

``ModelRules.refusal(params, version)`` is the API's answer to a request the real
service refuses for its model (``config._rules.check_request`` with the emulator's
catalog, on the emulator's clock's date): an ``ApiError`` with the real error type,
status and a message close to the real one. ``POST /v1/messages`` answers it
synchronously (400, 404 for an unknown or retired model); inside a batch the request
ends ``errored`` with the same error object.

``GET /v1/models`` and ``GET /v1/models/{id}`` serve the catalog in the SDK's shapes
(``anthropic.types.ModelInfo``; a page ``{data, has_more, first_id, last_id}``, newest
first, ``limit`` 1-1000 with ``after_id`` / ``before_id`` cursors, ``lifecycle[]``
filtering active + deprecated by default). A retrieve resolves an alias to its model;
an unknown id is a 404 ``not_found_error``. ``capabilities`` is null: the catalog does
not hold every capability the type requires [unverified: what the service sends].
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any

from batchmark.config._models import Catalog, ModelFacts
from batchmark.config._rules import Problem, check_request, first_error, refusal_key
from batchmark.emulator._http import ApiError

__all__ = ["ModelRules", "model_info", "model_page", "retrieve"]

LIFECYCLES = ("active", "deprecated", "retired")
_MEMO_SIZE = 4096  # request shapes whose answer the emulator keeps
EPOCH = "1970-01-01T00:00:00Z"  # the API's created_at when the release date is unknown


class ModelRules:
    """The catalog and the clock the emulator's request rules use."""

    def __init__(self, catalog: Catalog, now: Callable[[], float]) -> None:
        self._catalog = catalog
        self._now = now
        self._answers: dict[tuple[Any, ...], Problem | None] = {}

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._catalog = value
        self._answers = {}

    def today(self) -> _dt.date:
        """The emulator's date (its clock may have been advanced)."""
        return _dt.datetime.fromtimestamp(self._now(), _dt.UTC).date()

    def refusal(
        self, params: dict[str, Any], api_version: str, today: _dt.date | None = None
    ) -> ApiError | None:
        """What the API answers to ``params`` when it refuses them for their model.

        Answers are kept by ``refusal_key`` (with the version and the date): a batch's
        requests mostly differ in their text only, and checking each one again cost more
        than the rest of settling a batch. The memo is bounded: it is emptied when full.
        """
        today = today or self.today()
        shape = refusal_key(params)
        if shape is None:
            problem = first_error(check_request(params, self._catalog, api_version, today=today))
        else:
            key = (api_version, today, shape)
            try:
                problem = self._answers[key]
            except KeyError:
                problem = first_error(
                    check_request(params, self._catalog, api_version, today=today)
                )
                if len(self._answers) >= _MEMO_SIZE:
                    self._answers = {}
                self._answers[key] = problem
        if problem is None:
            return None
        return ApiError(problem.status, problem.error_type, problem.message)


def _time(day: _dt.date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00Z"


def model_info(facts: ModelFacts, today: _dt.date) -> dict[str, Any]:
    """One ``ModelInfo``."""
    lifecycle = facts.lifecycle(today)
    return {
        "id": facts.id,
        "type": "model",
        "display_name": facts.display_name or facts.id,
        "created_at": _time(facts.released) or EPOCH,
        "lifecycle": lifecycle,
        "deprecated_at": _time(facts.deprecated_on) if lifecycle != "active" else None,
        "retires_at": _time(facts.retires_on) if lifecycle != "active" else None,
        "line": facts.line,
        "max_input_tokens": facts.context_window,
        "max_tokens": facts.max_output_tokens,
        "capabilities": None,
    }


def retrieve(catalog: Catalog, model_id: str, today: _dt.date) -> dict[str, Any]:
    """``GET /v1/models/{model_id}``: an id or alias; 404 when the catalog has neither."""
    facts = catalog.get(model_id)
    if facts is None:
        raise ApiError(404, "not_found_error", f"model: {model_id}")
    return model_info(facts, today)


def model_page(
    catalog: Catalog,
    *,
    limit: int,
    after_id: str | None,
    before_id: str | None,
    lifecycles: Sequence[str],
    today: _dt.date,
) -> dict[str, Any]:
    """One page of ``GET /v1/models``, newest first, as the SDK's ``SyncPage`` reads it."""
    bad = [x for x in lifecycles if x not in LIFECYCLES]
    if bad or len(lifecycles) > 3:
        raise ApiError(
            400,
            "invalid_request_error",
            "lifecycle: up to 3 of 'active', 'deprecated', 'retired'",
        )
    wanted = set(lifecycles or ("active", "deprecated"))
    infos = [model_info(f, today) for f in catalog.entries()]
    infos = [i for i in infos if i["lifecycle"] in wanted]
    infos.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
    ids = [i["id"] for i in infos]
    if after_id is not None:
        start = _cursor(ids, after_id) + 1
        chosen, has_more = infos[start : start + limit], len(infos) > start + limit
    elif before_id is not None:
        end = _cursor(ids, before_id)
        chosen, has_more = infos[max(0, end - limit) : end], end > limit
    else:
        chosen, has_more = infos[:limit], len(infos) > limit
    return {
        "data": chosen,
        "has_more": has_more,
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
    }


def _cursor(ids: list[str], model_id: str) -> int:
    if model_id not in ids:  # [unverified] the service's answer to a bad cursor
        raise ApiError(400, "invalid_request_error", f"unknown cursor id {model_id!r}")
    return ids.index(model_id)
