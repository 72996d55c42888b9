"""The slow database: `GET /db` answers after the database's service time (lab: 2 s).

It counts its calls (`db_calls`), the figure the cache exists to keep low.
"""

from __future__ import annotations

from aiohttp import web

from ..model.config import DatabaseConfig
from .context import Context, Station
from .figures import DatabaseFigures
from .middleware import base_app

FIGURES = DatabaseFigures  # the kind's own figures (`kinds.py`)

ANSWER = "Fetched fresh data from DB"


class Database(Station[DatabaseConfig, DatabaseFigures]):
    async def read(self, request: web.Request) -> web.Response:
        self.figures.db_calls += 1
        return web.json_response({"message": ANSWER})


def make_app(ctx: Context[DatabaseConfig]) -> web.Application:
    database = Database(ctx, DatabaseFigures())
    app = base_app(ctx, database)
    app.router.add_get("/db", database.read)
    return app
