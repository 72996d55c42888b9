"""An API gateway: logs users in, then serves `/data` (through the cache), `/longtask`
(handed to the worker) and `/process` (the microservice).

It reaches the other components only over HTTP, at the URLs in its context. It can also
rate limit each client, skip the cache altogether (`use_cache = false`), and refresh a
stale cache entry in the background when the cache hands it the lease to.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..auth import Auth, TokenError, token_from_header
from ..http import DownstreamError, Reply
from ..rate_limit import RateLimiter, client_key
from .answers import JSONError, json_body, too_many_requests
from .context import Context
from .middleware import Handler, base_app

_CHALLENGE = 'Bearer realm="labsim"'


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    settings, client, counters = ctx.settings, ctx.client, ctx.counters
    auth = Auth(ctx.topology.secret, ctx.topology.users, settings.token_ttl)
    cache_path = f"/cache/{settings.data_key}"

    def authenticate(request: web.Request) -> dict:
        token = token_from_header(request.headers.get("Authorization"))
        if token is None:
            raise JSONError(
                401,
                "missing token",
                headers={"WWW-Authenticate": _CHALLENGE},
                message="Token is missing",
            )
        try:
            return auth.verify(token)
        except TokenError as e:
            challenge = f'{_CHALLENGE}, error="invalid_token", error_description="{e}"'
            raise JSONError(401, str(e), headers={"WWW-Authenticate": challenge}) from None

    async def login(request: web.Request) -> web.Response:
        body = await json_body(request)
        username = body.get("username") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(username, str) or not isinstance(password, str):
            raise JSONError(400, 'body must be {"username": "...", "password": "..."}')
        user = auth.check_credentials(username, password)
        if user is None:
            counters["login_failures"] += 1
            raise JSONError(401, "invalid_credentials", message="Invalid credentials")
        return web.json_response({"token": auth.issue(user)})

    async def data(request: web.Request) -> web.Response:
        authenticate(request)
        if not settings.use_cache:
            counters["misses"] += 1
            return web.json_response({"cached": False, "data": await read_database()})
        looked_up = (await call("cache", "GET", cache_path)).object()
        value = looked_up.get("value")
        if value is not None:
            counters["hits"] += 1
            if looked_up.get("lease"):  # stale, and ours to refresh: answer now, refresh after
                refresh = asyncio.create_task(refresh_cache(cache_path))
                refreshing.add(refresh)
                refresh.add_done_callback(refreshing.discard)
            return web.json_response({"cached": True, "data": value})
        counters["misses"] += 1
        return web.json_response({"cached": False, "data": await fill_cache(cache_path)})

    topology = ctx.topology
    # How long a gateway waits for each component it calls, on the clock: then a 504
    # that names the one that did not answer.
    waits = {
        "cache": topology.cache.timeout,
        "database": topology.database.timeout,
        "worker": topology.worker.timeout,
        "microservice": topology.microservice.timeout,
    }

    async def call(component: str, method: str, path: str, body: object = None) -> Reply:
        return await client.request(
            component,
            method,
            ctx.url(component, path),
            json_body=body,
            within=waits[component],
        )

    async def read_database() -> object:
        return (await call("database", "GET", "/db")).object().get("message")

    async def fill_cache(cache_path: str) -> object:
        value = await read_database()
        await call("cache", "POST", cache_path, {"value": value})
        return value

    async def refresh_cache(cache_path: str) -> None:
        try:
            await fill_cache(cache_path)
        except DownstreamError as e:  # nobody waits for this answer: the log is its reader
            ctx.log.warning("%s: background refresh of %s failed: %s", ctx.id, cache_path, e)

    refreshing: set[asyncio.Task[None]] = set()

    async def stop_refreshing(app: web.Application) -> None:
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)

    limit = settings.rate_limit
    if limit.rate:
        limiter = RateLimiter(limit.rate, limit.burst, ctx.clock.now)

        @web.middleware
        async def rate_limited(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(("/health", "/admin/")):
                return await handler(request)
            verdict = limiter.check(client_key(request.headers, request.remote, auth))
            if not verdict.allowed:
                counters["rate_limited"] += 1
                raise too_many_requests(verdict.headers, ctx.id)
            response = await handler(request)
            response.headers.update(verdict.headers)
            return response

        app.middlewares.append(rate_limited)

    async def longtask(request: web.Request) -> web.Response:
        authenticate(request)
        payload = await json_body(request, empty={})
        task_id = (await call("worker", "POST", "/task", payload)).object().get("task_id")
        return web.json_response({"status": "Task queued", "task_id": task_id}, status=202)

    async def process(request: web.Request) -> web.Response:
        authenticate(request)
        reply = await call("microservice", "GET", "/process")
        return web.json_response(reply.json(), status=reply.status)

    app.on_shutdown.append(stop_refreshing)
    app.router.add_post("/login", login)
    app.router.add_get("/data", data)
    app.router.add_post("/longtask", longtask)
    app.router.add_get("/process", process)
    return app
