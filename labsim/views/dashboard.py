"""The live dashboard of `labsim up`: one page, its event stream, and its buttons.

- `GET /`, `/dashboard.js`, `/dashboard.css`: plain files from `static/`, with no build
  step and nothing fetched from anywhere else;
- `GET /api/topology`: the components and the arrows between them;
- `GET /api/events`: server-sent events, a snapshot of every component each `interval`
  (see `snapshot.py`), then an `end` event when labsim stops. One snapshot a tick is
  taken for every page watching (`_Feed`), so the components, those of other processes
  included, are read once a tick however many pages watch;
- with the admin token: `POST /api/faults/<component>` and `POST /api/reset/<component>`,
  passed on to that component's own admin API over HTTP, and `POST /api/bench`, a short
  bench run through the load balancer;
- `GET /api/load` and, with the admin token, `POST /api/load/{start,rate,stop}`: an open
  load at a rate that can change while it runs, of a mix or of one of the scenario's
  user flows (`steering.py`).

It reads the cluster in-process and changes it only through HTTP requests, as a user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from ..components import exposure
from ..components.admin import authorize, check_host
from ..components.answers import (
    LIMITS,
    JSONError,
    answer_for,
    check_json_type,
    error_response,
    json_body,
    read_body,
)
from ..components.cluster import Cluster, serve_app, service_time
from ..core.http import HttpClient
from ..core.numbers import within
from ..core.tasks import cancel_all
from ..model.flows import Flow
from ..run import BenchError, BenchOptions, BenchResult, run_bench
from . import remote
from .snapshot import Sampler
from .steering import Steering

log = logging.getLogger("labsim")

INTERVAL = 0.5  # seconds between two snapshots on the event stream
BENCH_REQUESTS, BENCH_MAX, BENCH_CONCURRENCY = 100, 1000, 10
_RETRY_MS = 1000  # how soon a page reconnects when the stream drops

# The page loads nothing but its own script and style, and talks only to its own origin.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_FILES = {
    "/": ("dashboard.html", "text/html"),
    "/dashboard.js": ("dashboard.js", "text/javascript"),
    "/dashboard.css": ("dashboard.css", "text/css"),
    # The page names it; a browser asks for /favicon.ico only where a page names none.
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/favicon.ico": ("favicon.svg", "image/svg+xml"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    cluster: Cluster, *, interval: float = INTERVAL, flows: tuple[Flow, ...] = ()
) -> web.Application:
    """The dashboard's application for a started `cluster`; its load may run `flows`
    (the scenario's `[[load.flows]]`)."""
    limits = cluster.topology.limits
    app = web.Application(
        middlewares=[_json_errors, _same_host(cluster.topology.host)],
        client_max_size=limits.max_body,
    )
    app[LIMITS] = limits
    panel = _Panel(cluster, interval, flows)
    app.on_shutdown.append(panel.stop)
    app.on_cleanup.append(panel.close)
    for path, (name, content_type) in _FILES.items():
        app.router.add_get(path, _static(name, content_type))
    app.router.add_get("/api/topology", panel.topology)
    app.router.add_get("/api/events", panel.events)
    app.router.add_post("/api/faults/{component}", panel.faults)
    app.router.add_post("/api/reset/{component}", panel.reset)
    app.router.add_post("/api/bench", panel.bench)
    panel.steering.add_routes(app.router)
    return app


def _static(name: str, content_type: str) -> Handler:
    body = resources.files("labsim").joinpath("static", name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if content_type == "text/html":
        headers |= {"Content-Security-Policy": _POLICY, "Referrer-Policy": "no-referrer"}

    async def send(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    return send


class _Panel:
    """The dashboard's handlers and what they share: the cluster, a client, a bench run."""

    def __init__(self, cluster: Cluster, interval: float, flows: tuple[Flow, ...]) -> None:
        self.cluster, self.interval = cluster, interval
        self.token = cluster.topology.admin_token
        # Labsim's own reader: under `exposure = "gateways-only"` it may read the internal
        # components' /metrics when they are in another process.
        credential = exposure.credential(cluster.topology, "dashboard")
        self.client = HttpClient(cluster.clock, headers=credential)
        self.reader = remote.Reader(credential)
        self.stopping = asyncio.Event()
        self.benches: set[asyncio.Task[BenchResult]] = set()  # at most one at a time
        self.steering = Steering(cluster, flows)
        self.feed = _Feed(cluster, self.reader, interval, self.stopping, self._bench_state)

    async def topology(self, request: web.Request) -> web.Response:
        described = _describe(self.cluster) | {"load": self.steering.limits()}
        return web.json_response(described | {"interval_s": self.interval})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await response.write(f"retry: {_RETRY_MS}\n\n".encode())
            async with contextlib.aclosing(self.feed.events()) as events:
                async for event in events:
                    await response.write(event)
            await response.write(_event("end", {"reason": "labsim is stopping"}))
        except ConnectionResetError:
            pass  # the page went away
        return response

    def _bench_state(self) -> dict[str, Any]:
        return {"bench": {"running": bool(self.benches)}, "load": self.steering.figures()}

    async def faults(self, request: web.Request) -> web.Response:
        return await self._pass_on(request, "/admin/faults")

    async def reset(self, request: web.Request) -> web.Response:
        return await self._pass_on(request, "/admin/reset")

    async def _pass_on(self, request: web.Request, path: str) -> web.Response:
        authorize(request, self.token)
        component = request.match_info["component"]
        if component not in self.cluster.urls:  # served here or by another process
            known = ", ".join(self.cluster.urls)
            raise JSONError(404, f"no component {component!r} (known: {known})")
        body = await read_body(request)
        # The component checks the token again: the dashboard has no power of its own.
        headers = {"Authorization": request.headers["Authorization"]}
        if body.strip():
            check_json_type(request)
            headers["Content-Type"] = "application/json"
        url = self.cluster.urls[component] + path
        reply = await self.client.request(
            component, "POST", url, headers=headers, data=body, check=False
        )
        shown = " ".join(body.decode(errors="replace").split())  # one line in the log
        log.info("dashboard: %s %s %s -> %d", component, path, shown[:200], reply.status)
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    async def bench(self, request: web.Request) -> web.Response:
        """A short bench run through the load balancer, as `bench --target` would make."""
        authorize(request, self.token)
        requests = _bench_requests(await json_body(request, empty={}))
        if self.benches:
            raise JSONError(409, "a bench run is already going; wait for its result")
        url = self.cluster.url
        options = BenchOptions(
            requests=requests,
            concurrency=min(BENCH_CONCURRENCY, requests),
            clock="real",
            target=url,
        )
        log.info("dashboard: bench of %d requests through %s", requests, url)
        run = asyncio.create_task(run_bench(self.cluster.topology, options))
        self.benches.add(run)
        try:
            # Waited for, not awaited: cancelling the run must not look like our own
            # cancellation.
            await asyncio.wait({run})
        finally:
            self.benches.discard(run)
        if run.cancelled():
            raise JSONError(503, "labsim is stopping; the bench run was cancelled")
        problem = run.exception()
        if isinstance(problem, BenchError):
            raise JSONError(502, str(problem))
        if problem is not None:
            raise problem
        return web.json_response(run.result().as_dict())

    async def stop(self, app: web.Application) -> None:
        self.stopping.set()
        await self.feed.stop()
        await cancel_all(self.benches)
        await self.steering.shutdown()

    async def close(self, app: web.Application) -> None:
        await self.client.close()
        await self.reader.close()


class _Feed:
    """The snapshot event of each tick, for every page watching.

    Ticks run while some page watches; each reads the cluster once, and the components of
    other processes once (over HTTP), and encodes the event once, however many pages
    watch. A page is sent the latest event at once, then each new one; a page too slow
    to take every one skips to the latest. A tick that fails is logged and skipped: no
    page's stream ends for it.
    """

    def __init__(
        self,
        cluster: Cluster,
        reader: remote.Reader,
        interval: float,
        stopping: asyncio.Event,
        extra: Callable[[], dict[str, Any]],
    ) -> None:
        self.cluster, self.reader, self.interval = cluster, reader, interval
        self.stopping, self.extra = stopping, extra
        self.tick = 0  # events made so far; the latest is `latest` ("" between runs)
        self.latest = b""
        self.changed = asyncio.Condition()
        self.watching = 0
        self.ticks: asyncio.Task[None] | None = None

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The latest event, then each new one, until labsim stops."""
        self.watching += 1
        if self.ticks is None or self.ticks.done():
            self.ticks = asyncio.create_task(self._run())
        try:
            seen = 0
            while not self.stopping.is_set():
                async with self.changed:
                    await self.changed.wait_for(self._after(seen))
                if self.latest and self.tick > seen:
                    seen = self.tick
                    yield self.latest
        finally:
            self.watching -= 1

    def _after(self, seen: int) -> Callable[[], bool]:
        return lambda: (bool(self.latest) and self.tick > seen) or self.stopping.is_set()

    async def _run(self) -> None:
        sampler = Sampler(self.cluster, self.reader)  # rates from this run of ticks on
        failed = False
        while self.watching and not self.stopping.is_set():
            try:
                await sampler.refresh()  # the components other processes serve, if any
                event = _event("snapshot", sampler.snapshot() | self.extra())
            except Exception as e:  # a bug: say so once, and keep every page's stream
                if not failed:
                    log.error("dashboard: a snapshot failed", exc_info=e)
                failed = True
            else:
                failed = False
                async with self.changed:
                    self.tick, self.latest = self.tick + 1, event
                    self.changed.notify_all()
            await _wait(self.stopping, self.interval)
        self.latest = b""  # stale by the time a page watches again

    async def stop(self) -> None:
        """End every page's stream (`stopping` is set) and the ticks."""
        async with self.changed:
            self.changed.notify_all()
        if self.ticks is not None:
            await cancel_all([self.ticks])


def _describe(cluster: Cluster) -> dict[str, Any]:
    """The components (this process's and those others serve), and the arrows of the data
    path between them."""
    components = []
    graph = cluster.topology.graph()
    for cid, (kind, settings) in cluster.settings().items():
        here = cluster.components.get(cid)
        capacity = here.context.capacity if here else None
        slots = capacity.slots if capacity else getattr(settings, "concurrency", 0)
        components.append(
            {
                "id": cid,
                "kind": kind,
                "group": graph.component_of(cid).name,
                "url": cluster.urls[cid],
                "service_time": service_time(settings),
                "slots": slots if kind != "worker" else 0,
            }
        )
    edges = [list(edge) for edge in graph.edges()]
    topology = cluster.topology
    return {
        "name": topology.name,
        "description": topology.description,
        "components": components,
        "edges": edges,
        "bench": {"requests": BENCH_REQUESTS, "max": BENCH_MAX},
    }


def _bench_requests(body: Any) -> int:
    problem = f'body must be {{"requests": N}} with N from 1 to {BENCH_MAX}, or empty'
    if not isinstance(body, dict) or set(body) - {"requests"}:
        raise JSONError(400, problem)
    requests = body.get("requests", BENCH_REQUESTS)
    if not isinstance(requests, int) or not within(requests, 1, BENCH_MAX):
        raise JSONError(400, f"{problem} (got {requests!r})")
    return requests


def _event(name: str, data: Any) -> bytes:
    # No NaN or Infinity, which are not JSON: the page could not read the event.
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return f"event: {name}\ndata: {text}\n\n".encode()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed, whichever comes first."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as e:
        answer = answer_for(request, e)
        if answer is not None:
            return answer
        log.error("dashboard: unhandled error on %s %s", request.method, request.path, exc_info=e)
        return error_response(500, "internal error in the dashboard")


def _same_host(bound: str) -> Any:
    @web.middleware
    async def same_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_host(request, bound)  # a DNS-rebinding page must not read the topology
        return await handler(request)

    return same_host


@dataclass
class Dashboard:
    """The dashboard, served on its own port."""

    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(
    cluster: Cluster, port: int, *, interval: float = INTERVAL, flows: tuple[Flow, ...] = ()
) -> Dashboard:
    """Serve the dashboard of a started `cluster` on `port` (0: a free one) of its host;
    its load may run `flows`.

    A port that cannot be bound raises ClusterError naming it, with nothing left listening.
    """
    app = make_app(cluster, interval=interval, flows=flows)
    topology = cluster.topology
    runner, url = await serve_app(app, "the dashboard", topology.host, port, topology.limits)
    return Dashboard(url, runner)
