"""What every component shares: the base app, and the middlewares around every handler.

Outermost first:
  track_exchange  tells the clock when a request has fully arrived and when its reply leaves
  observe         request id, access log line, metrics, `X-Served-By`
  errors_as_json  every failure becomes JSON `{"error": ...}` with the right status
  inject_latency  sleeps the component's service time on the shared clock
A component module adds only its own routes. This module touches nothing but the request,
the response and the component's own context.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..http import EXCHANGE_HEADER, REQUEST_ID_HEADER, DownstreamError, request_id
from .context import Context

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes that report on a component rather than do its work: no injected latency.
UNTIMED_PREFIXES = ("/health", "/metrics", "/admin/")


class JSONError(Exception):
    """Raise from a handler to answer `{"error": message, **extra}` with `status`."""

    def __init__(
        self, status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = headers or {}


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


def base_app(ctx: Context) -> web.Application:
    """An application with the shared middlewares and `GET /health`."""
    app = web.Application(
        middlewares=[
            _track_exchange(ctx),
            _observe(ctx),
            _errors_as_json(ctx),
            _inject_latency(ctx),
        ]
    )

    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "component": ctx.id, "counters": dict(ctx.metrics.counters)}
        )

    app.router.add_get("/health", health)
    return app


def _track_exchange(ctx: Context) -> Any:
    clock = ctx.clock

    @web.middleware
    async def track_exchange(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get(EXCHANGE_HEADER)
        if header is None or not header.isdigit():
            return await handler(request)
        exchange = int(header)
        await request.read()  # the body is part of the arrival: it must not be in transit
        clock.exchange_arrived(exchange)
        try:
            return await handler(request)
        finally:
            clock.exchange_replying(exchange)

    return track_exchange


def _observe(ctx: Context) -> Any:
    clock, log, metrics = ctx.clock, ctx.log, ctx.metrics

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get(REQUEST_ID_HEADER) or ctx.new_request_id()
        request_id.set(rid)
        start = clock.now()
        response = await handler(request)
        elapsed = clock.now() - start
        response.headers[REQUEST_ID_HEADER] = rid
        response.headers.setdefault("X-Served-By", ctx.id)
        route = request.match_info.route.resource
        metrics.observe(route.canonical if route else "other", response.status, elapsed)
        if log.isEnabledFor(20):  # logging.INFO, without a lookup per request
            log.info(
                "%-14s %s %s %s %d %.1fms",
                ctx.id,
                rid,
                request.method,
                request.path_qs,
                response.status,
                elapsed * 1000,
            )
        return response

    return observe


def _errors_as_json(ctx: Context) -> Any:
    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except JSONError as e:
            return web.json_response(e.body, status=e.status, headers=e.headers)
        except DownstreamError as e:
            return error_response(e.status, str(e), e.headers, component=e.component)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _http_exception(request, e)
        except Exception:
            ctx.log.exception("%s: unhandled error on %s %s", ctx.id, request.method, request.path)
            return error_response(500, f"internal error in {ctx.id}", component=ctx.id)

    return errors_as_json


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


def _inject_latency(ctx: Context) -> Any:
    @web.middleware
    async def inject_latency(request: web.Request, handler: Handler) -> web.StreamResponse:
        routed = request.match_info.http_exception is None  # 404 and 405 answer at once
        if routed and not request.path.startswith(UNTIMED_PREFIXES):
            seconds = ctx.service_time()
            if seconds > 0:  # a zero service time costs no trip around the event loop
                await ctx.clock.sleep(seconds)
        return await handler(request)

    return inject_latency
