"""The business-logic microservice: `GET /process`."""

from __future__ import annotations

from aiohttp import web

from .context import Context
from .middleware import base_app


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)

    async def process(request: web.Request) -> web.Response:
        return web.json_response({"message": "Business logic executed"})

    app.router.add_get("/process", process)
    return app
