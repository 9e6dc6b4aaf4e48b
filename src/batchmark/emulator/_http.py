"""Wire helpers shared by the routes: the error envelope and JSON responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["ApiError", "error_body", "json_response"]


class ApiError(Exception):
    """An HTTP error answer: status, ``error.type``, message and extra headers."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = dict(headers or {})


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """The API's error envelope (also the payload of an ``errored`` result)."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def json_response(
    body: Any, request_id: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response carrying the ``request-id`` header."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"request-id": request_id, **(headers or {})},
    )
