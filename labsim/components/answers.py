"""JSON answers: the error a handler raises, and the request body a handler reads.

Used by every component's middleware and by the dashboard, so both answer alike.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ..http import DownstreamError


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


def answer_for(request: web.Request, e: Exception) -> web.StreamResponse | None:
    """The JSON answer to an error a handler raised; None for an unexpected one (a bug)."""
    if isinstance(e, JSONError):
        return web.json_response(e.body, status=e.status, headers=e.headers)
    if isinstance(e, DownstreamError):
        return error_response(e.status, str(e), e.headers, component=e.component)
    if isinstance(e, web.HTTPException):
        if e.status < 400:
            return e  # a redirect is an answer, not a failure
        return _http_exception(request, e)
    if isinstance(e, RequestPayloadError | HttpProcessingError):  # e.g. a body that is not gzip
        return error_response(400, "bad request body: " + " ".join(str(e).split()))
    return None


def _http_exception(request: web.Request, e: web.HTTPException) -> web.Response:
    headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow", "retry-after")}
    if e.status == 404:
        message = f"not found: {request.method} {request.path}"
    elif e.status == 405:
        message = f"method {request.method} not allowed on {request.path}"
    elif e.status == 413:
        message = "request body too large"
    else:
        message = e.reason.lower()
    return error_response(e.status, message, headers)


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
