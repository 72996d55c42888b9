"""An API gateway: logs users in, then serves `/data` (through the cache, `?key=` for a
key of the caller's choice), `/longtask` (handed to the worker) and `/process` (the
microservice). Every answer names the gateway (`gateway_id`). Under the course guide's
profile (`guide.py`) it checks tokens as the guide's gateway does: 403 for a missing or bad
token, and compact JSON as Flask writes it.

It reaches the other components only over HTTP, at the URLs in its context. It can also
rate limit each client, skip the cache altogether (`use_cache = false`), and refresh a
stale cache entry in the background when the cache hands it the lease to.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import Any

from aiohttp import web

from ..core import forwarding
from ..core.http import DownstreamError, Reply
from ..core.tasks import cancel_all
from ..model.auth import TokenError, gateway_auth, token_from_header
from ..model.config import GatewayConfig
from ..model.rate_limit import RateLimiter, client_key
from .answers import JSONError, json_body, too_many_requests
from .context import Context, Station
from .figures import GatewayFigures
from .middleware import Handler, base_app

_CHALLENGE = 'Bearer realm="labsim"'

# A cache key a client may name in `GET /data?key=`; `stats` and `flush` are the cache's own.
KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
RESERVED_KEYS = frozenset({"stats", "flush"})


def make_app(ctx: Context[GatewayConfig]) -> web.Application:
    gateway = Gateway(ctx)
    app = base_app(ctx, gateway)
    if gateway.limiter is not None:
        app.middlewares.append(gateway.rate_limited)
    app.on_shutdown.append(gateway.stop_refreshing)
    app.router.add_post("/login", gateway.login)
    app.router.add_get("/data", gateway.data)
    app.router.add_post("/longtask", gateway.longtask)
    app.router.add_get("/process", gateway.process)
    return app


class Gateway(Station[GatewayConfig, GatewayFigures]):
    """A gateway's state: its users' tokens, its rate limiter, its refreshes under way."""

    def __init__(self, ctx: Context[GatewayConfig]) -> None:
        super().__init__(ctx, GatewayFigures())
        topology, settings, self.client = ctx.topology, ctx.settings, ctx.client
        self.auth = gateway_auth(topology, settings.token_ttl)
        self.guide = topology.auth.mode == "guide"
        self.token_required = topology.auth.required
        # The guide's gateway answers through Flask's jsonify: `{"token":"..."}`, no spaces.
        self.dumps = (
            functools.partial(json.dumps, separators=(",", ":")) if self.guide else json.dumps
        )
        self.cache_path = f"/cache/{settings.data_key}"
        limit = settings.rate_limit
        self.limiter = RateLimiter(limit.rate, limit.burst, ctx.clock.now) if limit.rate else None
        # Behind the load balancer, the client is the one it forwards (`forwarding.py`).
        self.forwarder = forwarding.proof(topology.admin_token)
        # How long a gateway waits for each component it calls, on the clock: then a 504
        # that names the one that did not answer.
        self.waits = {
            "cache": topology.cache.timeout,
            "database": topology.database.timeout,
            "worker": topology.worker.timeout,
            "microservice": topology.microservice.timeout,
        }
        self.refreshing: set[asyncio.Task[None]] = set()

    def authenticate(self, request: web.Request) -> dict[str, Any]:
        if not self.token_required:
            return {}
        token = token_from_header(request.headers.get("Authorization"))
        if token is None:
            if self.guide:
                raise JSONError(403, "missing token", message="Token is missing")
            raise JSONError(
                401,
                "missing token",
                headers={"WWW-Authenticate": _CHALLENGE},
                message="Token is missing",
            )
        try:
            return self.auth.verify(token)
        except TokenError as e:
            if self.guide:
                raise JSONError(403, str(e), message="Token is invalid") from None
            challenge = f'{_CHALLENGE}, error="invalid_token", error_description="{e}"'
            raise JSONError(401, str(e), headers={"WWW-Authenticate": challenge}) from None

    def answer(self, body: dict[str, Any], status: int = 200) -> web.Response:
        """`body` as JSON, with this gateway's id in it."""
        body["gateway_id"] = self.ctx.id
        return web.json_response(body, status=status, dumps=self.dumps)

    def cache_path_of(self, request: web.Request) -> str:
        """The cache key to read: `?key=` if given (checked), else the configured one."""
        key = request.query.get("key")
        if key is None:
            return self.cache_path
        if not KEY.fullmatch(key):
            raise JSONError(400, "key must be 1 to 64 letters, digits, '_', '.' or '-'")
        if key in RESERVED_KEYS:
            raise JSONError(400, f"key {key!r} is reserved: the cache answers /cache/{key} itself")
        return f"/cache/{key}"

    @web.middleware
    async def rate_limited(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.limiter is None or request.path.startswith(("/health", "/admin/")):
            return await handler(request)
        client = forwarding.client_address(request, self.forwarder)
        verdict = self.limiter.check(client_key(request.headers, client, self.auth))
        if not verdict.allowed:
            self.figures.rate_limited += 1
            raise too_many_requests(verdict.headers, self.ctx.id)
        response = await handler(request)
        response.headers.update(verdict.headers)
        return response

    async def login(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        username = body.get("username") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(username, str) or not isinstance(password, str):
            raise JSONError(400, 'body must be {"username": "...", "password": "..."}')
        user = self.auth.check_credentials(username, password)
        if user is None:
            self.figures.login_failures += 1
            raise JSONError(401, "invalid_credentials", message="Invalid credentials")
        return self.answer({"token": self.auth.issue(user)})

    async def data(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        cache_path = self.cache_path_of(request)
        if not self.settings.use_cache:
            self.figures.misses += 1
            return self.answer({"cached": False, "data": await self.read_database()})
        looked_up = (await self.call("cache", "GET", cache_path)).object()
        value = looked_up.get("value")
        if value is not None:
            self.figures.hits += 1
            if looked_up.get("lease"):  # stale, and ours to refresh: answer now, refresh after
                refresh = asyncio.create_task(self.refresh_cache(cache_path))
                self.refreshing.add(refresh)
                refresh.add_done_callback(self.refreshing.discard)
            return self.answer({"cached": True, "data": value})
        self.figures.misses += 1
        value = await self.fill_cache(cache_path)
        return self.answer({"cached": False, "data": value})

    async def longtask(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        payload = await json_body(request, empty={})
        task_id = (await self.call("worker", "POST", "/task", payload)).object().get("task_id")
        return self.answer({"status": "Task queued", "task_id": task_id}, status=202)

    async def process(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        reply = await self.call("microservice", "GET", "/process")
        return self.answer(reply.object(), status=reply.status)

    async def call(self, component: str, method: str, path: str, body: object = None) -> Reply:
        return await self.client.request(
            component,
            method,
            self.ctx.url(component, path),
            json_body=body,
            within=self.waits[component],
        )

    async def read_database(self) -> object:
        return (await self.call("database", "GET", "/db")).object().get("message")

    async def fill_cache(self, cache_path: str) -> object:
        value = await self.read_database()
        await self.call("cache", "POST", cache_path, {"value": value})
        return value

    async def refresh_cache(self, cache_path: str) -> None:
        try:
            await self.fill_cache(cache_path)
        except DownstreamError as e:  # nobody waits for this answer: the log is its reader
            self.ctx.log.warning(
                "%s: background refresh of %s failed: %s", self.ctx.id, cache_path, e
            )

    async def stop_refreshing(self, app: web.Application) -> None:
        await cancel_all(self.refreshing)
