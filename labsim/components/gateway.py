"""An API gateway: logs users in, then serves `/data` (through the cache), `/longtask`
(handed to the worker) and `/process` (the microservice).

It reaches the other components only over HTTP, at the URLs in its context.
"""

from __future__ import annotations

from aiohttp import web

from ..auth import Auth, TokenError, token_from_header
from .context import Context
from .middleware import JSONError, base_app, json_body

_CHALLENGE = 'Bearer realm="labsim"'


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    settings, client, counters = ctx.settings, ctx.client, ctx.metrics.counters
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
        cache_url = ctx.url("cache", cache_path)
        value = (await client.request("cache", "GET", cache_url)).json().get("value")
        if value is not None:
            counters["hits"] += 1
            return web.json_response({"cached": True, "data": value})
        counters["misses"] += 1
        reply = await client.request("database", "GET", ctx.url("database", "/db"))
        value = reply.json().get("message")
        await client.request("cache", "POST", cache_url, json_body={"value": value})
        return web.json_response({"cached": False, "data": value})

    async def longtask(request: web.Request) -> web.Response:
        authenticate(request)
        payload = await json_body(request, empty={})
        reply = await client.request(
            "worker", "POST", ctx.url("worker", "/task"), json_body=payload
        )
        task_id = reply.json().get("task_id")
        return web.json_response({"status": "Task queued", "task_id": task_id}, status=202)

    async def process(request: web.Request) -> web.Response:
        authenticate(request)
        reply = await client.request("microservice", "GET", ctx.url("microservice", "/process"))
        return web.json_response(reply.json(), status=reply.status)

    app.router.add_post("/login", login)
    app.router.add_get("/data", data)
    app.router.add_post("/longtask", longtask)
    app.router.add_get("/process", process)
    return app
