"""JSON answers: the error a handler raises, and the request body a handler reads."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class JSONError(Exception):
    """Raise from a handler to answer `{"error": message, **extra}` with `status`."""

    def __init__(
        self, status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = headers or {}


def too_many_requests(headers: dict[str, str], component: str) -> JSONError:
    """The 429 a rate limiter answers, with its `Retry-After` and `RateLimit-*` headers."""
    return JSONError(429, "rate limit exceeded", headers=headers, component=component)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


async def json_body(request: web.Request, *, empty: Any = None) -> Any:
    """The request's JSON body; `empty` when there is none; 400 when it is not JSON."""
    raw = await request.read()
    if not raw.strip():
        if empty is not None:
            return empty
        raise JSONError(400, "request body must be JSON")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise JSONError(400, f"request body is not valid JSON: {e}") from None
