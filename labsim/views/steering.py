"""The dashboard's load: start and stop an open load, and change its rate while it runs.

- `GET /api/load`: the load's figures (the last one's once it stopped), and the limits;
- with the admin token: `POST /api/load/start` `{"rate": R, "mix": {...}, "seed": N,
  "auth": "login"}` (all but `rate` optional), or `"flow": NAME` instead of a mix: each
  arrival then runs the scenario's flow of that name once (`run/steered_flows.py`);
  `POST /api/load/rate` `{"rate": R}` and `POST /api/load/stop`.

The load (`run/steered_load.py`) runs in this process, on its loop and clock, and sends to
the entry (the load balancer) over HTTP as any client would, with a client of its own. One
at a time, at most MAX_RATE arrivals a second and MAX_IN_FLIGHT requests (or runs of a
flow, each one request at a time) in flight; it is stopped when labsim stops. It changes
nothing but its own load.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web

from ..components.admin import authorize
from ..components.answers import JSONError, json_body
from ..components.cluster import Cluster
from ..core.http import HttpClient
from ..core.numbers import within
from ..core.tasks import cancel_all
from ..model.flows import Flow
from ..model.load import AUTH, DIRECT, ENDPOINTS
from ..run import BenchError, BenchOptions
from ..run.driver import credentials
from ..run.session import Session
from ..run.steered_flows import FlowLoad
from ..run.steered_load import SteeredLoad, http_send

log = logging.getLogger("labsim")

MAX_RATE = 500  # arrivals a second
MAX_IN_FLIGHT = 256  # requests in flight; an arrival beyond is dropped, and counted
WINDOW = 5.0  # seconds of answers the load's p50 and p99 are of
REQUEST_TIMEOUT = 10.0  # seconds a request may take; then it failed
STOP_GRACE = 1.0  # seconds a stop gives the requests in flight before it cuts them
MAX_MIX, MAX_PATH, MAX_WEIGHT, MAX_SEED = 16, 200, 1_000_000, 2**63 - 1
KEEP = 10_000  # answers the load's p50 and p99 are of, at most (a flow's: shared by its steps)
START_KEYS = ("rate", "mix", "flow", "seed", "auth")
# The endpoints a mix may name: those of the entry (`db` goes past it, to the database).
NAMED = tuple(name for name in ENDPOINTS if name not in DIRECT)
# A path the entry serves, as a GET: URL characters only, one line, no fragment.
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")


class Steering:
    """The one load of a dashboard, and its handlers."""

    def __init__(self, cluster: Cluster, flows: tuple[Flow, ...] = ()) -> None:
        self.cluster = cluster
        self.flows = {flow.name: flow for flow in flows}  # the scenario's, as `up` read it
        self.token = cluster.topology.admin_token
        self.load: SteeredLoad | None = None  # the running one, or the last
        self.client: HttpClient | None = None  # the running load's own
        self.starting: asyncio.Task[SteeredLoad] | None = None  # logging in
        self.closed = False  # labsim is stopping: no load starts any more

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/load", self.state)
        router.add_post("/api/load/start", self.start)
        router.add_post("/api/load/rate", self.rate)
        router.add_post("/api/load/stop", self.stop)

    def limits(self) -> dict[str, Any]:
        """What a start may ask for: the bounds, the mix's endpoints, the flows."""
        return {
            "max_rate": MAX_RATE,
            "max_in_flight": MAX_IN_FLIGHT,
            "window_s": WINDOW,
            "endpoints": list(NAMED),
            "flows": [
                {"name": flow.name, "steps": flow.step_names(), "requests": flow.requests}
                for flow in self.flows.values()
            ],
        }

    def figures(self) -> dict[str, Any]:
        if self.load is None:
            return {"running": self.starting is not None}
        return self.load.figures()

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(self.figures() | {"limits": self.limits()})

    async def start(self, request: web.Request) -> web.Response:
        authorize(request, self.token)
        body = await json_body(request)
        rate, mix, flow, seed, auth = _start_request(body, self.cluster.topology.seed, self.flows)
        if self.closed:
            raise JSONError(503, "labsim is stopping: no load starts")
        if self.starting is not None or (self.load is not None and self.load.running):
            raise JSONError(409, "a load is already running: change its rate, or stop it")
        self.starting = asyncio.create_task(self._new_load(rate, mix, flow, seed, auth))
        try:
            # Waited for, not awaited: its cancellation at shutdown is not ours.
            await asyncio.wait({self.starting})
            if self.starting.cancelled() or self.closed:
                await self._close_client()
                raise JSONError(503, "labsim is stopping: no load starts")
            load = self.starting.result()
        finally:
            self.starting = None
        self.load = load
        load.start()
        what = f"flow {flow.name}" if flow is not None else f"mix {mix}"
        log.info("dashboard: load started at %g/s, %s, seed %d", rate, what, seed)
        return web.json_response(self.figures())

    async def _new_load(
        self, rate: float, mix: dict[str, float], flow: Flow | None, seed: int, auth: str
    ) -> SteeredLoad:
        cluster = self.cluster
        # A user's client: no internal credential, a connection for every request in flight.
        client = HttpClient(cluster.clock, pool_size=MAX_IN_FLIGHT)
        options = BenchOptions(
            clock="real",
            target=cluster.url,
            auth=auth,
            timeout=REQUEST_TIMEOUT,
            flows=() if flow is None else (flow,),
        )
        session = Session(cluster.topology, options, cluster.clock, client, cluster.url, None)
        try:
            # A flow that logs in uses its own login's token, never the load's.
            token = None if flow is not None and flow.logs_in else await credentials(session)
        except BenchError as e:
            await client.close()
            raise JSONError(502, f"the load cannot start: {e}") from None
        except BaseException:
            await client.close()
            raise
        self.client = client
        send = http_send(client, session.entry, cluster.url, token, REQUEST_TIMEOUT)
        runs = None
        if flow is not None:
            runs = FlowLoad(session, flow, token, seed=seed, window=WINDOW, keep=KEEP)
        return SteeredLoad(
            cluster.clock,
            send,
            rate=rate,
            mix=mix,
            seed=seed,
            flow=runs,
            max_in_flight=MAX_IN_FLIGHT,
            window=WINDOW,
            keep=KEEP,
        )

    async def rate(self, request: web.Request) -> web.Response:
        authorize(request, self.token)
        body = await json_body(request)
        if not isinstance(body, dict) or set(body) != {"rate"}:
            raise JSONError(400, 'body must be {"rate": R}, R in requests a second')
        rate = _rate(body["rate"])
        load = self._running()
        load.steer(rate)
        log.info("dashboard: load steered to %g/s", rate)
        return web.json_response(self.figures())

    async def stop(self, request: web.Request) -> web.Response:
        authorize(request, self.token)
        load = self._running()
        await self._stop(load, STOP_GRACE)
        return web.json_response(self.figures())

    def _running(self) -> SteeredLoad:
        if self.load is None or not self.load.running:
            raise JSONError(409, "no load is running: start one")
        return self.load

    async def _stop(self, load: SteeredLoad, grace: float) -> None:
        # This load's client, taken now: a load started during the grace has its own.
        client, self.client = self.client, None
        cut = await load.stop(grace)
        if client is not None:
            await client.close()
        c = load.counts
        log.info(
            "dashboard: load stopped: %d sent, %d answered, %d failed, %d dropped; "
            "%d in flight cut after %g s (not answered, not counted as failed)",
            c.sent,
            c.answered,
            c.failed,
            c.dropped,
            cut,
            grace,
        )

    async def _close_client(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def shutdown(self) -> None:
        """When labsim stops: the load stops at once, and what is in flight is cut."""
        self.closed = True
        if self.starting is not None:
            await cancel_all([self.starting])
        if self.load is not None and self.load.running:
            await self._stop(self.load, 0.0)


def _shown(number: float) -> str:
    """A number as a message shows it: an int of 400 digits is no float (`:g` would raise)."""
    text = f"{number:g}" if isinstance(number, float) else str(number)
    return text if len(text) <= 20 else f"{text[:20]}..."


def _rate(value: Any) -> float:
    if within(value, MAX_RATE, float("inf")) and value > MAX_RATE:
        raise JSONError(
            400,
            f"rate {_shown(value)}/s is above the dashboard's limit of {MAX_RATE}/s",
            max_rate=MAX_RATE,
        )
    if not within(value, 0, MAX_RATE):
        raise JSONError(
            400,
            f"rate must be a number of requests a second from 0 to {MAX_RATE} "
            f"(got {str(value)[:50]})",
            max_rate=MAX_RATE,
        )
    return float(value)


def _start_request(
    body: Any, default_seed: int, flows: dict[str, Flow]
) -> tuple[float, dict[str, float], Flow | None, int, str]:
    """(rate, mix, flow, seed, auth) of a start's body, or a JSON 400 naming what is wrong."""
    if not isinstance(body, dict) or "rate" not in body:
        raise JSONError(
            400, 'body must be {"rate": R, "mix": {...}} (mix or flow, seed, auth optional)'
        )
    unknown = [key for key in body if key not in START_KEYS]
    if unknown:
        raise JSONError(400, f"unknown key {unknown[0][:50]!r} (known: {', '.join(START_KEYS)})")
    if "flow" in body and "mix" in body:
        raise JSONError(400, "give mix or flow, not both: a flow says which requests to send")
    rate = _rate(body["rate"])
    flow = _flow(body["flow"], flows) if "flow" in body else None
    mix = _mix(body.get("mix", {"data": 1}))
    seed = body.get("seed", default_seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise JSONError(400, f"seed must be a whole number from 0 to {MAX_SEED}")
    auth = body.get("auth", "login")
    if auth not in AUTH:
        raise JSONError(400, f"auth must be one of {', '.join(AUTH)}")
    return rate, mix, flow, seed, auth


def _flow(name: Any, flows: dict[str, Flow]) -> Flow:
    known = f"known: {', '.join(flows)}" if flows else "the scenario has no [[load.flows]]"
    if not isinstance(name, str):
        raise JSONError(400, f"flow must be the name of one of the scenario's flows ({known})")
    if name not in flows:
        raise JSONError(400, f"no flow {name[:50]!r} ({known})", flows=list(flows))
    return flows[name]


def _mix(mix: Any) -> dict[str, float]:
    what = (
        f"mix must be an object of at most {MAX_MIX} endpoints ({', '.join(NAMED)}, or a "
        f"path the entry serves, such as /data?key=7) and their weights"
    )
    if not isinstance(mix, dict) or not mix or len(mix) > MAX_MIX:
        raise JSONError(400, what)
    for name, weight in mix.items():
        if name not in NAMED and not _is_path(name):
            raise JSONError(
                400,
                f"mix: {name[:60]!r} is neither an endpoint ({', '.join(NAMED)}) nor a path "
                f"of at most {MAX_PATH} URL characters starting with /",
            )
        if not within(weight, 0, MAX_WEIGHT):
            raise JSONError(400, f"mix: the weight of {name[:60]!r} must be from 0 to {MAX_WEIGHT}")
    if not any(mix.values()):
        raise JSONError(400, "mix: at least one weight must be above 0")
    return {name: float(weight) for name, weight in mix.items()}


def _is_path(name: str) -> bool:
    return len(name) <= MAX_PATH and not name.startswith("//") and bool(_PATH.fullmatch(name))
