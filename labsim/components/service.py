"""A service: its endpoints' steps (`steps.py`), each answer naming the replica that
answered (`service_id`). The lab's microservice is one: `GET /process` calls nobody and
answers "Business logic executed". It has no figures of its own, unless it reads through
a cache: then its reads' hits and misses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..model.config import ServiceConfig
from ..model.graph import Endpoint
from .context import Context, Station
from .figures import Figures, ReaderFigures
from .middleware import Handler, base_app
from .steps import Steps, add_endpoint

FIGURES = Figures


def make_app(ctx: Context[ServiceConfig]) -> web.Application:
    reads = any(s.kind == "read_through" for e in ctx.component.endpoints for s in e.steps)
    station = Station(ctx, ReaderFigures() if reads else Figures())
    steps = Steps(ctx, station.figures)
    app = base_app(ctx, station)
    app.on_shutdown.append(steps.stop)

    def serve(endpoint: Endpoint) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            body, status, headers = await steps.run(endpoint, request)
            answer: dict[str, Any] = {**body, "service_id": ctx.id}
            return web.json_response(answer, status=status, headers=headers)

        return handle

    for endpoint in ctx.component.endpoints:
        add_endpoint(app, endpoint, serve(endpoint))
    return app
