"""Helpers for the emulator tests: strict round-trip checks and SDK conveniences.

``assert_strict``: every key of the JSON must be a declared field of the SDK model (no
unknown fields) and every declared field must be present (nulls emitted explicitly),
recursively; unions are resolved by their ``type`` discriminator.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, Union

import anthropic
import httpx2
from anthropic import BaseModel
from anthropic.types.messages import MessageBatchIndividualResponse
from pydantic import TypeAdapter

__all__ = ["assert_strict", "read_results", "sdk_client", "small_requests", "strict_lines"]

HEADERS = {"authorization": "Bearer test", "anthropic-version": "2023-06-01"}


def small_requests(n: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    """``n`` small batch requests with custom_ids ``{prefix}{i}``."""
    base = {"model": "claude-sonnet-4-6", "max_tokens": 64, **params}
    return [
        {
            "custom_id": f"{prefix}{i}",
            "params": {**base, "messages": [{"role": "user", "content": f"question {i}"}]},
        }
        for i in range(n)
    ]


@contextmanager
def sdk_client(base_url: str, **kwargs: Any) -> Iterator[anthropic.Anthropic]:
    """An SDK client on ``base_url``, closed afterwards (no unclosed-socket warnings)."""
    kwargs.setdefault("max_retries", 2)
    client = anthropic.Anthropic(base_url=base_url, api_key="test", **kwargs)
    try:
        yield client
    finally:
        client.close()


def read_results(
    client: anthropic.Anthropic, batch_id: str
) -> list[MessageBatchIndividualResponse]:
    """All result lines of a batch through the SDK, closing the decoder in any case."""
    decoder = client.messages.batches.results(batch_id)
    try:
        return list(decoder)
    finally:
        decoder.close()


def strict_lines(client: anthropic.Anthropic, batch_id: str) -> list[dict[str, Any]]:
    """The raw JSONL result lines of a batch, each checked strictly against the SDK type."""
    url = client.messages.batches.retrieve(batch_id).results_url
    assert url is not None
    with httpx2.Client() as http:
        response = http.get(url, headers={**HEADERS, "accept": "application/binary"})
    assert response.headers["content-type"] == "application/x-jsonl"
    assert response.headers["request-id"].startswith("req_")
    body = response.content
    assert body.endswith(b"\n") and b"\r" not in body and b"\n\n" not in body
    lines = [json.loads(line) for line in body.split(b"\n")[:-1]]
    for line in lines:
        assert_strict(line, MessageBatchIndividualResponse)
    return lines


_PRIMITIVES: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
}


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _type_literals(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    if field is None:
        return ()
    annotation = _unwrap(field.annotation)
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()


def _pick_member(data: Any, members: list[Any], path: str) -> Any:
    if len(members) == 1:
        return members[0]
    assert isinstance(data, dict), f"{path}: expected an object, got {data!r}"
    chosen = [m for m in members if data.get("type") in _type_literals(m)]
    assert len(chosen) == 1, f"{path}: type {data.get('type')!r} matches {chosen} of {members}"
    return chosen[0]


def assert_strict(data: Any, annotation: Any, path: str = "$") -> None:
    """Fail unless ``data`` has exactly the fields ``annotation`` (an SDK type) declares."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if annotation in (Any, object):
        return
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if data is None:
            assert len(members) < len(typing.get_args(annotation)), f"{path}: null not allowed"
            return
        members = [_unwrap(m) for m in members]
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            assert_strict(data, _pick_member(data, members, path), path)
        else:
            _assert_any(data, members, path)
    elif origin is Literal:
        assert data in typing.get_args(annotation), f"{path}: {data!r} not in {annotation}"
    elif origin in (list, typing.List):  # noqa: UP006
        assert isinstance(data, list), f"{path}: expected a list, got {data!r}"
        (item,) = typing.get_args(annotation)
        for i, value in enumerate(data):
            assert_strict(value, item, f"{path}[{i}]")
    elif origin in (dict, typing.Dict):  # noqa: UP006
        assert isinstance(data, dict), f"{path}: expected an object, got {data!r}"
        _, value_type = typing.get_args(annotation)
        for key, value in data.items():
            assert_strict(value, value_type, f"{path}.{key}")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _assert_model(data, annotation, path)
    elif annotation is datetime:
        assert isinstance(data, str) and data.endswith("Z"), f"{path}: not an RFC 3339 Z time"
        TypeAdapter(datetime).validate_python(data)
    elif annotation in _PRIMITIVES:
        ok = isinstance(data, _PRIMITIVES[annotation]) and not (
            annotation is not bool and isinstance(data, bool)
        )
        assert ok, f"{path}: expected {annotation.__name__}, got {data!r}"
    else:
        raise AssertionError(f"{path}: unsupported annotation {annotation!r}")


def _assert_any(data: Any, members: list[Any], path: str) -> None:
    failures = []
    for member in members:
        try:
            assert_strict(data, member, path)
            return
        except AssertionError as err:
            failures.append(str(err))
    raise AssertionError(f"{path}: {data!r} matches no member: {failures}")


def _assert_model(data: Any, model: type[BaseModel], path: str) -> None:
    assert isinstance(data, dict), f"{path}: expected a {model.__name__} object, got {data!r}"
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    unknown = sorted(set(data) - set(fields))
    missing = sorted(set(fields) - set(data))
    assert not unknown, f"{path}: fields unknown to {model.__name__}: {unknown}"
    assert not missing, f"{path}: {model.__name__} fields missing: {missing}"
    for key, field in fields.items():
        assert_strict(data[key], field.annotation, f"{path}.{key}")
