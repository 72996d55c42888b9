"""JSON answers: the error a handler raises, and the request body a handler reads.

Used by every component's middleware and by the dashboard, so both answer alike.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ..core.http import DownstreamError
from ..model.config import LimitsConfig


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


# Every app that reads bodies (each component's and the dashboard's) carries its limits.
LIMITS = web.AppKey("limits", LimitsConfig)


async def read_body(request: web.Request) -> bytes:
    """The whole request body, within the app's size limit (413) and time limit (408)."""
    if not request.body_exists:
        return b""  # most requests (every GET of the lab): no timer needed
    limits = request.app[LIMITS]
    try:
        # Wall time, on either clock: a slow sender is a real socket, not simulated work.
        async with asyncio.timeout(limits.body_timeout):
            return await request.read()
    except TimeoutError:
        raise JSONError(408, f"request body not received within {limits.body_timeout:g}s") from None
    except ConnectionError:  # the client hung up mid-body: this answer reaches nobody
        raise JSONError(400, "connection closed before the whole body arrived") from None


async def json_body(request: web.Request, *, empty: Any = None) -> Any:
    """The request's JSON body; `empty` when there is none.

    A body must come as `Content-Type: application/json` (415 otherwise: a page on another
    site can send text/plain without asking, but not JSON), be JSON (400), and nest no
    deeper than the app's limit (400), which also keeps the parser's recursion bounded.
    """
    raw = await read_body(request)
    if not raw.strip():
        if empty is not None:
            return empty
        raise JSONError(400, "request body must be JSON")
    check_json_type(request)
    depth = request.app[LIMITS].max_json_depth
    if json_depth(raw, depth) > depth:
        raise JSONError(400, f"request body nests deeper than {depth} levels")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise JSONError(400, f"request body is not valid JSON: {e}") from None


def check_json_type(request: web.Request) -> None:
    """415 unless the request says its body is JSON."""
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type", "none")
        raise JSONError(
            415,
            f"request body must be sent as Content-Type: application/json (got {given[:100]})",
        )


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes, limit: int) -> int:
    """How deep `raw`'s arrays and objects nest (strings skipped), counted up to past `limit`."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the usual body: no need to look closer
        return 0
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", raw)):
        if bracket in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


async def credentials(request: web.Request) -> tuple[str, str]:
    """The username and password of a `POST /login` body; 400 unless both are text."""
    body = await json_body(request)
    username = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(username, str) or not isinstance(password, str):
        raise JSONError(400, 'body must be {"username": "...", "password": "..."}')
    return username, password
