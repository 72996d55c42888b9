"""What every component shares: the base app, and the middleware around every handler.

For every request, in order, the middleware
  1. tells the clock when the request has fully arrived (and, last, that the reply leaves),
  2. sleeps the component's latency on the shared clock (a pure delay), then, if the
     component has slots (`capacity.py`), waits for one and holds it for its service
     time and while the handler runs (503 when every slot is busy and the queue full),
  3. turns every failure into JSON `{"error": ...}` with the right status,
  4. counts the request for `/metrics` (an answer, or a request that got none: dropped
     by the `down` fault or left by its caller), writes the access log line, and sets
     `X-Request-Id` and `X-Served-By`.
Before 2's delay, a component with a count per window (`rate_limit.requests` per
`rate_limit.window`, any kind) refuses a request past it at once (after any `down` or
`hang` fault): 429 with `Retry-After`, with no delay, no slot, no handler, as the course's
Lab 5 decorator refuses before the route does its work.
It also keeps the count of work in flight. A component module adds only its own routes.
This module touches nothing but the request, the response and the component's own context
(and reads its station for `/health`, `/metrics` and `/status`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from ..core.clock import Clock
from ..core.http import EXCHANGE_HEADER, REQUEST_ID_HEADER, request_id
from ..model.rate_limit import STATUS_PATH, RateLimiter, covers, reporting
from . import admin, exposure
from .answers import LIMITS, answer_for, error_response, too_many_requests
from .context import Context, Station
from .exposition import CONTENT_TYPE, render

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A client's own X-Request-Id is kept if it is at most this long, in printable ASCII.
MAX_REQUEST_ID = 128

# What the component reports beyond its traffic; the cluster finds it here.
STATION = web.AppKey("station", Station)


def base_app(ctx: Context[Any], station: Station[Any, Any]) -> web.Application:
    """An application with the shared middleware, `GET /health`, `GET /metrics` and
    `GET /status`."""
    limits = ctx.topology.limits
    app = web.Application(middlewares=[_middleware(ctx, station)], client_max_size=limits.max_body)
    app[LIMITS] = limits
    app[STATION] = station

    async def health(request: web.Request) -> web.Response:
        answer = {
            "status": "ok",
            "component": ctx.id,
            "counters": counters(ctx, station),
            **station.details(),
        }
        if ctx.capacity is not None:  # only a component with slots says so
            answer["capacity"] = ctx.capacity.figures().as_dict()
        return web.json_response(answer)

    async def metrics(request: web.Request) -> web.Response:
        text = render(ctx, station, _work_routes(request.app))
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def status(request: web.Request) -> web.Response:
        return web.json_response({status_name(ctx): answered(ctx)})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(STATUS_PATH, status)  # before the load balancer's catch-all route
    topology = ctx.topology
    admin.add_routes(app, ctx.id, ctx.faults, topology.admin_token, topology.host_of(ctx.id))
    return app


def _work_routes(app: web.Application) -> list[str]:
    """The component's own routes, as `/metrics` labels them (not the reporting ones)."""
    routes = (resource.canonical for resource in app.router.resources())
    return sorted({r for r in routes if not reporting(r)})


def counters(ctx: Context[Any], station: Station[Any, Any]) -> dict[str, int]:
    """The component's own figures by name, as `GET /health` shows them; with a count per
    window, its refusals (`rate_limited`) among them."""
    counts = station.figures.counts()
    if ctx.rate_window is not None or ctx.bucket_refused:
        refused = ctx.rate_window.refused if ctx.rate_window is not None else 0
        counts.setdefault("rate_limited", refused + ctx.bucket_refused)
    return counts


def status_name(ctx: Context[Any]) -> str:
    """How the status log names the component: its `status_name`, else its id."""
    return getattr(ctx.settings, "status_name", "") or ctx.id


def answered(ctx: Context[Any]) -> dict[str, int]:
    """The status tracker's counts for the component: its work routes' answers by status
    code (as a string), 429s included; not the reporting routes, not an unknown path."""
    by_code: Counter[int] = Counter()
    for (route, code), n in ctx.requests.items():
        if route != _UNMATCHED and not reporting(route):
            by_code[code] += n
    return {str(code): n for code, n in sorted(by_code.items()) if n}


# Kinds that keep their token bucket per client themselves (the client they forward, a
# token's user); every other kind's is kept here, per caller address.
_OWN_BUCKETS = frozenset({"load_balancer", "gateway"})


def _refuser(
    ctx: Context[Any], station: Station[Any, Any]
) -> Callable[[str, str | None], None] | None:
    """What applies the component's rate limits to a work request for a path, from a
    caller: its count per window, and its token bucket per caller where its kind keeps
    none itself; a 429 past either, counted as `rate_limited` (its kind's own figure, if
    it has one). None when it has neither."""
    window = ctx.rate_window
    limit = getattr(ctx.settings, "rate_limit", None)
    bucket = None
    if limit is not None and limit.rate > 0 and ctx.kind not in _OWN_BUCKETS:
        bucket = RateLimiter(limit.rate, limit.burst, ctx.clock.now)
    if window is None and bucket is None:
        return None
    paths = ctx.settings.rate_limit.paths
    figures = station.figures
    own = isinstance(getattr(figures, "rate_limited", None), int)  # the LB's, a gateway's

    def refuse(path: str, caller: str | None) -> None:
        if bucket is not None:
            verdict = bucket.check(caller or "unknown")
            if not verdict.allowed:
                ctx.bucket_refused += 1
                raise too_many_requests(verdict.headers, ctx.id)
        if window is None or not covers(paths, path):
            return
        verdict = window.check()
        if not verdict.allowed:
            if own:
                figures.rate_limited += 1
            raise too_many_requests(verdict.headers, ctx.id)

    return refuse


def _middleware(ctx: Context[Any], station: Station[Any, Any]) -> Any:
    # One middleware, not one per concern: each aiohttp middleware layer costs a wrapper
    # and a coroutine per request, and four layers cost about 15 % of a hop (measured).
    clock, faults, delay, slots = ctx.clock, ctx.faults, ctx.delay, ctx.capacity
    exchanges = clock.exchanges
    account = _accountant(ctx)
    guard = exposure.guard(ctx.topology, ctx.kind, ctx.id)  # who may call this component
    refuse = _refuser(ctx, station)

    @web.middleware
    async def serve(request: web.Request, handler: Handler) -> web.StreamResponse:
        # 1. The exchange has arrived, body included: the virtual clock may count it out.
        exchange = exchanges.opened(request.headers.get(EXCHANGE_HEADER))
        if exchange is not None:
            # On an error, the handler reads the body again and answers it.
            with suppress(web.HTTPException, RequestPayloadError):
                await request.read()
            exchanges.parked(exchange)
            await exchanges.barrier(exchange)  # same-time arrivals go on in a fixed order
        # Work, not the reporting routes (`/health`, `/metrics`, `/admin/`, `/status`): these
        # take no service time, no rate limit, and are not in flight.
        path = request.path
        work = not reporting(path)
        if work:
            ctx.in_flight += 1
        try:
            rid = request.headers.get(REQUEST_ID_HEADER)
            if not (rid and len(rid) <= MAX_REQUEST_ID and rid.isascii() and rid.isprintable()):
                rid = ctx.new_request_id()  # it goes into every log line and every hop
            request_id.set(rid)
            start = clock.now()
            gone: str | None = None  # why no answer reaches the caller, if none does
            try:
                guard(request)
                # 2. The component's latency and injected faults, on the shared clock; then
                # a slot (if it has slots), held for its service time and the handler.
                routed = request.match_info.http_exception is None  # 404, 405 answer at once
                if routed:
                    seconds = delay() if work else 0.0
                    if faults.active() and not path.startswith("/admin/"):
                        seconds += await _suffer(ctx, request)  # a down component fails /health
                    if refuse is not None and work:  # on arrival: a 429 waits for nothing
                        refuse(path, request.remote)
                    if seconds > 0:  # zero costs no trip around the event loop
                        await clock.sleep(seconds)
                if routed and slots is not None and work:
                    response = await slots.hold(handler, request)
                else:
                    response = await handler(request)
            except _Dropped as e:
                response, gone = e.response, "down"
            except Exception as e:  # 3. every failure becomes a JSON answer
                response = _error_response(ctx, request, e)
            if gone is None and _caller_gone(request, exchange, clock):
                gone = "caller_gone"  # e.g. a caller that timed out while this one hung
            account(request, response, gone, clock.now() - start, rid)
            return response
        finally:
            if work:
                ctx.in_flight -= 1
            if exchange is not None:
                exchanges.moving(exchange)

    return serve


def _accountant(
    ctx: Context[Any],
) -> Callable[[web.Request, web.StreamResponse, str | None, float, str], None]:
    log = ctx.log

    def account(
        request: web.Request,
        response: web.StreamResponse,
        gone: str | None,
        elapsed: float,
        rid: str,
    ) -> None:
        """4. Metrics, the access log, and the headers that let a request be followed."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource else _UNMATCHED
        if gone is None:
            ctx.requests[(route, response.status)] += 1
            ctx.seconds[route] += elapsed
            ctx.latency.add(elapsed)
        else:
            # Not an answer: counted as one, a down gateway looked like the busiest.
            ctx.dropped[(route, gone)] += 1
        response.headers[REQUEST_ID_HEADER] = rid
        response.headers.setdefault("X-Served-By", ctx.id)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%-14s %s %s %s %s %.1fms",
                ctx.id,
                rid,
                request.method,
                request.path_qs,
                response.status if gone is None else _NO_ANSWER[gone],
                elapsed * 1000,
            )

    return account


def _caller_gone(request: web.Request, exchange: int | None, clock: Clock) -> bool:
    if exchange is not None:  # on the virtual clock: decided in simulated time
        return not clock.exchanges.caller_waits(exchange)
    transport = request.transport
    return transport is None or transport.is_closing()


# The route a request that matched none is counted under (a 404, a 405).
_UNMATCHED = "unmatched"

# What the access log says instead of a status when no answer reached the caller.
_NO_ANSWER = {
    "down": "dropped (down: connection closed, no answer)",
    "caller_gone": "dropped (caller gone before the answer)",
}


class _Refused(Exception):
    """An injected fault answers instead of the handler."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


class _Dropped(_Refused):
    """The `down` fault: the connection is closed and nothing answers.

    `response` is only what aiohttp is handed back; it never reaches the caller.
    """


async def _suffer(ctx: Context[Any], request: web.Request) -> float:
    """Apply the component's faults; the extra seconds of latency to add."""
    faults = ctx.faults
    if faults.down:
        if request.transport is not None:
            request.transport.close()  # the caller sees the connection drop, no answer
        raise _Dropped(error_response(503, f"{ctx.id} is down", component=ctx.id))
    if faults.hang:
        await faults.wait_until_unhung()
    if faults.error_rate and ctx.rng.random() < faults.error_rate:
        raise _Refused(error_response(500, f"injected fault in {ctx.id}", component=ctx.id))
    return max(0.0, faults.latency + ctx.rng.uniform(-faults.jitter, faults.jitter))


def _error_response(ctx: Context[Any], request: web.Request, e: Exception) -> web.StreamResponse:
    if isinstance(e, _Refused):
        return e.response
    answer = answer_for(request, e)
    if answer is not None:
        return answer
    ctx.log.error("%s: unhandled error on %s %s", ctx.id, request.method, request.path, exc_info=e)
    return error_response(500, f"internal error in {ctx.id}", component=ctx.id)
