"""What an endpoint does, step by step, for the kinds whose endpoints are steps (gateways
and services): hold a slot for a service time, wait, call another component, read
through a cache, hand a task to a worker.

The last call, read or task decides the answer: a call's reply as it came (a 4xx
passes on unchanged, as a proxy's would; a 5xx or no answer becomes a 502/503/504 naming
the component), `{"cached": ..., "data": ...}` for a read, 202 `{"status": "Task
queued", "task_id": ...}` for a task; an endpoint that calls nobody answers its message.
It reaches others only over HTTP, at the URLs of the cluster (`Context.url`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..core.http import DownstreamError, Reply, refusal
from ..core.tasks import cancel_all
from ..model.graph import Endpoint, Step
from .answers import JSONError, json_body
from .context import Context
from .middleware import Handler

# A cache key a client may name in `?key=`; `stats` and `flush` are the cache's own.
KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
RESERVED_KEYS = frozenset({"stats", "flush"})
_DEFAULT_WAIT = 30.0  # for a callee whose settings name no timeout
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


Answer = tuple[dict[str, Any], int, dict[str, str]]
# What a refusal passed on keeps of its headers: when to try again, and the limit's state.
_PASSED_ON = ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def passed_on(reply: Reply) -> dict[str, str]:
    """The headers of `reply` that an answer made of it carries on."""
    return {name: reply.headers[name] for name in _PASSED_ON if name in reply.headers}


def add_endpoint(app: web.Application, endpoint: Endpoint, handler: Handler) -> None:
    """Route `endpoint` to `handler`; a GET answers HEAD too, as aiohttp's `add_get` does."""
    if endpoint.method == "GET":
        app.router.add_get(endpoint.path, handler)
    else:
        app.router.add_route(endpoint.method, endpoint.path, handler)


async def forwarded(request: web.Request) -> bytes:
    """The request's JSON body, checked (`json_body`), as the bytes it came in: sent on
    unchanged, never re-encoded larger (`json.dumps` would escape "é" into six bytes).
    An empty body is `{}`."""
    await json_body(request, empty={})
    raw = await request.read()
    return raw if raw.strip() else b"{}"


class Steps:
    """Runs endpoints' steps for one replica; counts its reads' hits and misses in
    `figures` when it has them (a gateway's)."""

    def __init__(self, ctx: Context[Any], figures: Any) -> None:
        self.ctx, self.figures = ctx, figures
        self.client, self.clock = ctx.client, ctx.clock
        graph = ctx.graph
        # How long to wait for each component called, on the clock: then a 504 naming it.
        self.waits = {
            name: getattr(c.settings, "timeout", _DEFAULT_WAIT)
            for name, c in graph.components.items()
        }
        # A component of several replicas called directly (no load balancer between):
        # its replicas in turn.
        self.turns = {
            name: itertools.cycle([r.id for r in graph.replicas(name)]) for name in graph.components
        }
        self.use_cache = getattr(ctx.settings, "use_cache", True)
        self.draws: dict[int, Callable[[], float]] = {}
        self.refreshing: set[asyncio.Task[None]] = set()

    def replica(self, component: str) -> str:
        return next(self.turns[component])

    async def run(self, endpoint: Endpoint, request: web.Request) -> Answer:
        """The endpoint's answer: a JSON object, its status, and the headers a refusal
        passed on carries (`Retry-After`, `RateLimit-*`)."""
        answer: Answer | None = None
        for step in endpoint.steps:
            if step.kind in ("cpu", "io"):
                await self.spend(step)
            elif step.kind == "call":
                raw = await forwarded(request) if step.method in _WITH_BODY else None
                reply = await self.call(step.target, step.method, step.path, check=False, raw=raw)
                answer = (reply.object(), reply.status, passed_on(reply))
                if reply.status >= 400:  # a refusal ends the endpoint
                    return answer
            elif step.kind == "read_through":
                answer = (*await self.read_through(step, request), {})
            else:
                answer = (*await self.enqueue(step, request), {})
        return answer or ({"message": endpoint.message}, 200, {})

    async def enqueue(self, step: Step, request: web.Request) -> tuple[dict[str, Any], int]:
        raw = await forwarded(request)
        if step.ignore_status:  # as Lab 5's gateway: the worker's answer is not read
            await self.call(step.target, "POST", "/task", check=False, any_status=True, raw=raw)
            return {"status": "Task queued"}, 202
        reply = await self.call(step.target, "POST", "/task", raw=raw)
        return {"status": "Task queued", "task_id": reply.object().get("task_id")}, 202

    async def spend(self, step: Step) -> None:
        draw = self.draws.get(id(step))
        if draw is None:
            draw = self.draws[id(step)] = self.ctx.sampler(step.time)
        capacity = self.ctx.capacity
        if step.kind == "cpu" and capacity is not None and capacity.for_service_only:
            await capacity.spend(draw())  # a slot for the step's time only
        else:
            # With `holds = "request"` the middleware holds the request's slot throughout,
            # io steps included; without slots, both are delays on the clock.
            await self.clock.sleep(draw())

    async def call(
        self,
        component: str,
        method: str,
        path: str,
        body: object = None,
        check: bool = True,
        headers: dict[str, str] | None = None,
        any_status: bool = False,
        raw: bytes | None = None,
    ) -> Reply:
        """`method path` on a replica of `component`. With `check`, an error status
        raises DownstreamError; without, a 4xx is returned and a 5xx raises, unless
        `any_status`. `raw`: a JSON body to send as it came (`forwarded`)."""
        replica = self.replica(component)
        if raw is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        reply = await self.client.request(
            replica,
            method,
            self.ctx.url(replica, path),
            headers=headers,
            data=raw,
            json_body=body,
            within=self.waits[component],
            check=check,
        )
        if not check and not any_status and reply.status >= 500:
            raise refusal(reply)
        return reply

    def cache_path(self, step: Step, request: web.Request) -> str:
        """The cache key to read: `?key=` if given (checked), else the step's."""
        key = request.query.get("key")
        if key is None:
            return f"/cache/{step.key}"
        if not KEY.fullmatch(key):
            raise JSONError(400, "key must be 1 to 64 letters, digits, '_', '.' or '-'")
        if key in RESERVED_KEYS:
            raise JSONError(400, f"key {key!r} is reserved: the cache answers /cache/{key} itself")
        return f"/cache/{key}"

    async def read_through(self, step: Step, request: web.Request) -> tuple[dict[str, Any], int]:
        cache_path = self.cache_path(step, request)
        assert step.source is not None
        if not step.target or not self.use_cache:
            self.count("misses")
            return {"cached": False, "data": await self.read_source(step.source)}, 200
        looked_up = (await self.call(step.target, "GET", cache_path)).object()
        value = looked_up.get("value")
        if value is not None:
            self.count("hits")
            if looked_up.get("lease"):  # stale, and ours to refresh: answer now, refresh after
                refresh = asyncio.create_task(self.refresh(step, cache_path))
                self.refreshing.add(refresh)
                refresh.add_done_callback(self.refreshing.discard)
            return {"cached": True, "data": value}, 200
        self.count("misses")
        return {"cached": False, "data": await self.fill(step, cache_path)}, 200

    def count(self, figure: str) -> None:
        if hasattr(self.figures, figure):
            setattr(self.figures, figure, getattr(self.figures, figure) + 1)

    async def read_source(self, source: Step) -> object:
        reply = await self.call(source.target, source.method, source.path)
        return reply.object().get("message")

    async def fill(self, step: Step, cache_path: str) -> object:
        assert step.source is not None
        value = await self.read_source(step.source)
        await self.call(step.target, "POST", cache_path, {"value": value})
        return value

    async def refresh(self, step: Step, cache_path: str) -> None:
        try:
            await self.fill(step, cache_path)
        except DownstreamError as e:  # nobody waits for this answer: the log is its reader
            self.ctx.log.warning(
                "%s: background refresh of %s failed: %s", self.ctx.id, cache_path, e
            )

    async def stop(self, app: web.Application) -> None:
        await cancel_all(self.refreshing)
