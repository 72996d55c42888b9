"""The admin API every component has: its faults, read and changed with the admin token.

`GET /admin/faults`, `POST /admin/faults` (some of latency, jitter, error_rate, down,
hang) and `POST /admin/reset`, each with `Authorization: Bearer <admin token>`. The admin
API itself is never faulted, so a component that is down can always be brought back.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ..faults import Faults, check_changes
from .answers import JSONError, json_body


def authorize(request: web.Request, token: str) -> None:
    """Raise a JSON 401 unless the request has `Authorization: Bearer <token>`."""
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    given_token = value.strip().encode("utf-8", "surrogatepass")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given_token, token.encode()):
        raise JSONError(
            401,
            "admin token required (Authorization: Bearer <LABSIM_ADMIN_TOKEN>)",
            headers={"WWW-Authenticate": 'Bearer realm="labsim-admin"'},
        )


def add_routes(app: web.Application, component: str, faults: Faults, token: str) -> None:
    """`/admin/faults` and `/admin/reset`, for callers with `Authorization: Bearer <token>`."""

    def answer() -> web.Response:
        return web.json_response({"component": component, "faults": faults.as_dict()})

    async def show(request: web.Request) -> web.Response:
        authorize(request, token)
        return answer()

    async def change(request: web.Request) -> web.Response:
        authorize(request, token)
        try:
            faults.update(check_changes(await json_body(request)))
        except ValueError as e:
            raise JSONError(400, str(e)) from None
        return answer()

    async def reset(request: web.Request) -> web.Response:
        authorize(request, token)
        faults.reset()
        return answer()

    app.router.add_get("/admin/faults", show)
    app.router.add_post("/admin/faults", change)
    app.router.add_post("/admin/reset", reset)
