"""The business-logic microservice: `GET /process`, naming the instance that answered
(`service_id`). It has no figures of its own."""

from __future__ import annotations

from aiohttp import web

from ..model.config import MicroserviceConfig
from .context import Context, Station
from .figures import Figures
from .middleware import base_app


def make_app(ctx: Context[MicroserviceConfig]) -> web.Application:
    app = base_app(ctx, Station(ctx, Figures()))

    async def process(request: web.Request) -> web.Response:
        return web.json_response({"message": "Business logic executed", "service_id": ctx.id})

    app.router.add_get("/process", process)
    return app
