"""The admin API every component has: its faults, read and changed with the admin token.

`GET /admin/faults`, `POST /admin/faults` (some of latency, jitter, error_rate, down,
hang) and `POST /admin/reset`, each with `Authorization: Bearer <admin token>`. The admin
API itself is never faulted, so a component that is down can always be brought back. It
answers only to the host names labsim was bound to (`check_host`), as the dashboard does.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from ..model.faults import Faults, check_changes
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


def check_host(request: web.Request, bound: str) -> None:
    """Refuse (403) a request whose Host names another site: a DNS-rebinding page.

    A page on evil.example whose name is made to resolve to 127.0.0.1 reaches labsim with
    `Host: evil.example`. Allowed: an IP address, `localhost`, and the name bound to.
    """
    name = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    name = name.strip("[]").lower()
    if not name or name == bound.lower() or name == "localhost" or name.endswith(".localhost"):
        return
    try:
        ipaddress.ip_address(name)
    except ValueError:
        raise JSONError(
            403,
            f"host {name[:100]!r} is not allowed here: use an IP address or localhost",
        ) from None


def add_routes(app: web.Application, component: str, faults: Faults, token: str, host: str) -> None:
    """`/admin/faults` and `/admin/reset`, for callers with `Authorization: Bearer <token>`."""

    def answer() -> web.Response:
        return web.json_response({"component": component, "faults": faults.as_dict()})

    async def show(request: web.Request) -> web.Response:
        check_host(request, host)
        authorize(request, token)
        return answer()

    async def change(request: web.Request) -> web.Response:
        check_host(request, host)
        authorize(request, token)
        try:
            faults.update(check_changes(await json_body(request)))
        except ValueError as e:
            raise JSONError(400, str(e)) from None
        return answer()

    async def reset(request: web.Request) -> web.Response:
        check_host(request, host)
        authorize(request, token)
        faults.reset()
        return answer()

    app.router.add_get("/admin/faults", show)
    app.router.add_post("/admin/faults", change)
    app.router.add_post("/admin/reset", reset)
