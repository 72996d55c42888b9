"""The cache: `GET /cache/<key>` and `POST /cache/<key>`, each entry with its own TTL.

A bounded `cachetools.TLRUCache` whose timer is the shared clock, so entries expire in
simulated time exactly as they would in real time.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from cachetools import TLRUCache

from .context import Context
from .middleware import JSONError, base_app, json_body


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    default_ttl = ctx.settings.ttl
    # Values are (value, ttl); the cache asks each entry when it expires.
    store: TLRUCache[str, tuple[Any, float]] = TLRUCache(
        maxsize=ctx.settings.maxsize,
        ttu=lambda _key, entry, now: now + entry[1],
        timer=ctx.clock.now,
    )

    async def get(request: web.Request) -> web.Response:
        entry = store.get(request.match_info["key"])
        ctx.metrics.count("misses" if entry is None else "hits")
        return web.json_response({"value": None if entry is None else entry[0]})

    async def put(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict) or "value" not in body:
            raise JSONError(400, 'body must be a JSON object with a "value" key')
        ttl = body.get("ttl", default_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
            raise JSONError(400, f"ttl must be a positive number of seconds (got {ttl!r})")
        store[request.match_info["key"]] = (body["value"], float(ttl))
        ctx.metrics.count("sets")
        return web.json_response({"status": "ok", "expires_in": ttl})

    app.router.add_get("/cache/{key}", get)
    app.router.add_post("/cache/{key}", put)
    return app
