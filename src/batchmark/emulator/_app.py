"""The HTTP surface: Starlette routes for the Messages and Message Batches endpoints.

Every answer carries a ``request-id`` header; errors use the API's envelope. The order
of checks for each call: auth (401), ``anthropic-version`` (400), injected HTTP faults,
then the endpoint's own validation. Every answer past auth reports the rate limits
(``_ratelimits``); a 429 carries ``retry-after`` in whole seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from batchmark.config._tokens import request_prefix_tokens
from batchmark.emulator._creates import CreateCall
from batchmark.emulator._faults import HTTP_FAULTS
from batchmark.emulator._http import ApiError, error_body, json_response
from batchmark.emulator._messages import build_message, count_tokens_error, params_error
from batchmark.emulator._models import model_page, retrieve
from batchmark.emulator._responders import ResponderError
from batchmark.emulator._results import chunked, result_lines

if TYPE_CHECKING:
    from batchmark.emulator._emulator import Emulator

__all__ = ["build_app"]

API_VERSIONS = ("2023-06-01", "2026-10-21")
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
PATTERN_TEXT = "^[a-zA-Z0-9_-]{1,64}$"

Handler = Callable[[Request, str, str], Awaitable[Any]]


class _Jsonl:
    """A streamed ``application/x-jsonl`` answer; with ``complete=False`` the stream is
    cut off (no terminating chunk), as a dropped connection looks to the client."""

    def __init__(self, chunks: Iterator[bytes], request_id: str, complete: bool) -> None:
        self.chunks = chunks
        self.complete = complete
        self.headers = [
            (b"content-type", b"application/x-jsonl"),
            (b"request-id", request_id.encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnect = asyncio.ensure_future(_disconnected(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            for chunk in self.chunks:
                if disconnect.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if self.complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            disconnect.cancel()


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _Routes:
    """The endpoint handlers of one emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def endpoint(self, group: str, handler: Handler) -> Callable[[Request], Awaitable[Any]]:
        """Wrap a handler with request ids, auth, version check, faults and errors."""

        async def run(request: Request) -> Any:
            request_id = self.emu.seeded.request_id()
            try:
                _check_auth(request)
                version = _check_version(request)
                self._inject_fault(group)
                response = await handler(request, request_id, version)
            except ApiError as err:
                body = error_body(err.error_type, err.message, request_id)
                headers = err.headers
                if err.status != 401:  # the rate limits of an authenticated caller
                    headers = {**self.emu.rate_limits.answered(group), **headers}
                return json_response(body, request_id, err.status, headers)
            limits = self.emu.rate_limits.answered(group)
            if isinstance(response, _Jsonl):
                response.headers += [(k.encode(), v.encode()) for k, v in limits.items()]
            else:
                response.headers.update(limits)
            return response

        return run

    def _inject_fault(self, group: str) -> None:
        status = self.emu.fault_state.http_status(group)
        if status is None:
            return
        error_type, message = HTTP_FAULTS[status]
        faults = self.emu.faults
        headers = self.emu.rate_limits.limited(group, faults.retry_after) if status == 429 else {}
        if faults.retry_after_ms is not None:
            headers["retry-after-ms"] = str(faults.retry_after_ms)
        raise ApiError(status, error_type, message, headers)

    @contextmanager
    def _counting_transient_404(self, batch_id: str) -> Iterator[None]:
        """Count a 404 of an existing batch (``not_found_after_create``) in ``fired``."""
        try:
            left = self.emu.store.get(batch_id).not_found_left
        except ApiError:
            left = 0  # no such batch: a true 404, not a fault
        try:
            yield
        except ApiError as err:
            if left > 0 and err.status == 404:
                self.emu.fault_state.count("not_found_after_create")
            raise

    async def messages(self, request: Request, request_id: str, version: str) -> Response:
        params = _object(await _read_json(request, self.emu.max_message_bytes), "body")
        problem = params_error(params, version, in_batch=False)
        if problem:
            raise ApiError(400, "invalid_request_error", problem)
        refused = self.emu.rules.refusal(params, version)  # the model catalog's rules
        if refused is not None:
            raise refused
        tool_ids = (self.emu.seeded.ident("toolu", request_id, n) for n in itertools.count())
        try:
            message = build_message(
                params,
                self.emu.responder,
                message_id=self.emu.seeded.ident("msg", request_id),
                tool_id=tool_ids.__next__,
                cache=self.emu.cache.usage(params),
                service_tier="standard",
                catalog=self.emu.catalog,
            )
        except ResponderError as err:
            raise ApiError(500, "api_error", str(err)) from err
        usage = message["usage"]  # cache reads do not count against input limits [docs]
        uncached = usage["input_tokens"] + (usage.get("cache_creation_input_tokens") or 0)
        self.emu.rate_limits.spend_tokens(uncached, usage["output_tokens"])
        return json_response(message, request_id)

    async def models(self, request: Request, request_id: str, version: str) -> Response:
        query = request.query_params
        after_id, before_id = query.get("after_id"), query.get("before_id")
        if after_id and before_id:
            raise ApiError(400, "invalid_request_error", "give at most one of after_id, before_id")
        page = model_page(
            self.emu.rules.catalog,
            limit=_limit(query.get("limit", "20")),
            after_id=after_id or None,
            before_id=before_id or None,
            lifecycles=query.getlist("lifecycle[]") or query.getlist("lifecycle"),
            today=self.emu.rules.today(),
        )
        return json_response(page, request_id)

    async def model(self, request: Request, request_id: str, version: str) -> Response:
        rules = self.emu.rules
        info = retrieve(rules.catalog, request.path_params["model_id"], rules.today())
        return json_response(info, request_id)

    async def count_tokens(self, request: Request, request_id: str, version: str) -> Response:
        params = _object(await _read_json(request, self.emu.max_message_bytes), "body")
        problem = count_tokens_error(params)
        if problem:
            raise ApiError(400, "invalid_request_error", problem)
        tokens = sum(t for t, _ in request_prefix_tokens(params))
        return json_response({"input_tokens": tokens}, request_id)

    async def create(self, request: Request, request_id: str, version: str) -> Response:
        emu = self.emu
        creates = emu.creates
        started = time.monotonic()
        creates.begin()
        try:
            raw = await _read_body(request, emu.max_batch_bytes)
            requests = _batch_requests(_object(_parse_json(raw), "body"))
            if emu.create_latency > 0:
                await asyncio.sleep(emu.create_latency)  # other calls are served meanwhile
            try:
                batch = emu.store.create(
                    requests,
                    anthropic_version=version,
                    processing_seconds=emu.processing_seconds,
                    ttl_seconds=emu.batch_ttl_seconds,
                    faults=emu.fault_state.for_batch(),
                    queue_limit=emu.queue_limit,
                )
            except ApiError as err:
                if err.status == 429:
                    creates.refuse(len(requests))
                raise
            creates.record(
                CreateCall(
                    batch_id=batch["id"],
                    n_requests=len(requests),
                    body_bytes=len(raw),
                    content_length=request.headers.get("content-length"),
                    transfer_encoding=request.headers.get("transfer-encoding"),
                    started=started,
                    ended=time.monotonic(),
                )
            )
            return json_response(batch, request_id)
        finally:
            creates.end()

    async def list(self, request: Request, request_id: str, version: str) -> Response:
        query = request.query_params
        limit = _limit(query.get("limit", "20"))
        after_id, before_id = query.get("after_id"), query.get("before_id")
        if after_id and before_id:
            raise ApiError(400, "invalid_request_error", "give at most one of after_id, before_id")
        page = self.emu.store.page(limit, after_id or None, before_id or None, _base(request))
        return json_response(page, request_id)

    async def retrieve(self, request: Request, request_id: str, version: str) -> Response:
        batch_id = request.path_params["batch_id"]
        with self._counting_transient_404(batch_id):
            batch = self.emu.store.retrieve(batch_id, _base(request))
        return json_response(batch, request_id)

    async def cancel(self, request: Request, request_id: str, version: str) -> Response:
        batch_id = request.path_params["batch_id"]
        return json_response(self.emu.store.cancel(batch_id, _base(request)), request_id)

    async def delete(self, request: Request, request_id: str, version: str) -> Response:
        batch_id = request.path_params["batch_id"]
        return json_response(self.emu.store.delete(batch_id), request_id)

    async def results(self, request: Request, request_id: str, version: str) -> _Jsonl:
        emu = self.emu
        batch_id = request.path_params["batch_id"]
        with self._counting_transient_404(batch_id):
            batch = emu.store.ended(batch_id)
        lines: Iterator[bytes] = result_lines(batch, emu.seeded, emu.responder, emu.catalog)
        drop = emu.fault_state.drop_results(batch.id)
        if drop:
            keep = batch.faults.drop_after_lines
            keep = len(batch.requests) // 2 if keep is None else keep
            lines = itertools.islice(lines, keep)
        return _Jsonl(chunked(lines), request_id, complete=not drop)


def _check_auth(request: Request) -> None:
    bearer = request.headers.get("authorization", "")
    scheme, _, token = bearer.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return
    if request.headers.get("x-api-key", "").strip():
        return
    raise ApiError(401, "authentication_error", "invalid x-api-key")


def _check_version(request: Request) -> str:
    version = request.headers.get("anthropic-version")
    if version is None:
        raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise ApiError(
            400, "invalid_request_error", f"anthropic-version: {version!r} is not a valid version"
        )
    return version


async def _read_json(request: Request, limit: int) -> Any:
    """The JSON body; 413 when it exceeds ``limit`` bytes (the body is drained first)."""
    return _parse_json(await _read_body(request, limit))


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 when it exceeds ``limit`` bytes (the body is drained first)."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        too_large = too_large or size > limit
        if too_large:
            chunks.clear()
        else:
            chunks.append(chunk)
    if too_large:
        raise ApiError(
            413, "request_too_large", f"Request exceeds the maximum size ({limit} bytes)"
        )
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "invalid_request_error", f"invalid JSON body: {err}") from err


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_request_error", f"{where}: Input should be an object")
    return value


def _custom_id_error(custom_id: Any) -> str | None:
    if not isinstance(custom_id, str):
        return "Field required" if custom_id is None else "Input should be a valid string"
    if len(custom_id) > 64:
        return "String should have at most 64 characters"
    if not custom_id:
        return "String should have at least 1 character"
    if not CUSTOM_ID.fullmatch(custom_id):
        return f"String should match pattern '{PATTERN_TEXT}'"
    return None


def _batch_requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelope check of a create: ``requests`` and each ``custom_id`` / ``params``."""
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise ApiError(400, "invalid_request_error", "requests: Field required (a list)")
    if not 1 <= len(requests) <= MAX_REQUESTS:
        bound = "at least 1 item" if not requests else f"at most {MAX_REQUESTS} items"
        message = f"requests: List should have {bound} after validation, not {len(requests)}"
        raise ApiError(400, "invalid_request_error", message)
    seen: dict[str, int] = {}
    for i, item in enumerate(requests):
        item = _object(item, f"requests.{i}")
        problem = _custom_id_error(item.get("custom_id"))
        if problem:
            raise ApiError(400, "invalid_request_error", f"requests.{i}.custom_id: {problem}")
        params = item.get("params")
        if not isinstance(params, dict):
            problem = "Field required" if params is None else "Input should be an object"
            raise ApiError(400, "invalid_request_error", f"requests.{i}.params: {problem}")
        first = seen.setdefault(item["custom_id"], i)
        if first != i:
            message = (
                f"requests.{i}.custom_id: duplicate custom_id {item['custom_id']!r} "
                f"(also at requests.{first}.custom_id); custom_ids must be unique in a batch"
            )
            raise ApiError(400, "invalid_request_error", message)
    return requests


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "invalid_request_error", "limit: must be an integer from 1 to 1000")
    return int(raw)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _unhandled(request: Request, exc: Exception) -> Response:
    """Unknown routes (404/405) and emulator bugs (500), still in the API's envelope."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error_type = "not_found_error" if status in (404, 405) else "api_error"
    request_id = request.app.state.emulator.seeded.request_id()
    message = (
        f"{request.method} {request.url.path} is not an emulated endpoint"
        if status != 500
        else f"emulator bug: {exc!r}"
    )
    return json_response(error_body(error_type, message, request_id), request_id, status)


def build_app(emu: Emulator) -> Starlette:
    """The ASGI application serving ``emu``."""
    r = _Routes(emu)
    base = "/v1/messages/batches"
    routes = [
        Route("/v1/messages", r.endpoint("messages", r.messages), methods=["POST"]),
        Route(
            "/v1/messages/count_tokens",
            r.endpoint("count_tokens", r.count_tokens),
            methods=["POST"],
        ),
        Route("/v1/models", r.endpoint("models", r.models), methods=["GET"]),
        Route("/v1/models/{model_id}", r.endpoint("models", r.model), methods=["GET"]),
        Route(base, r.endpoint("create", r.create), methods=["POST"]),
        Route(base, r.endpoint("list", r.list), methods=["GET"]),
        Route(base + "/{batch_id}", r.endpoint("retrieve", r.retrieve), methods=["GET"]),
        Route(base + "/{batch_id}", r.endpoint("delete", r.delete), methods=["DELETE"]),
        Route(base + "/{batch_id}/cancel", r.endpoint("cancel", r.cancel), methods=["POST"]),
        Route(base + "/{batch_id}/results", r.endpoint("results", r.results), methods=["GET"]),
    ]
    handlers = {HTTPException: _unhandled, Exception: _unhandled}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.emulator = emu
    return app
