"""The slow database: `GET /db` answers after the database's service time (lab: 2 s).

It counts its calls (`db_calls`), the figure the cache exists to keep low.
"""

from __future__ import annotations

from aiohttp import web

from .context import Context
from .middleware import base_app

ANSWER = "Fetched fresh data from DB"


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)

    async def read(request: web.Request) -> web.Response:
        ctx.counters["db_calls"] += 1
        return web.json_response({"message": ANSWER})

    app.router.add_get("/db", read)
    return app
