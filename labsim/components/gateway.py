"""An API gateway: logs users in (itself, or through a login service), checks each
request's token, then runs the endpoint's steps (`steps.py`): in the lab, `/data` through
the cache (`?key=` for a key of the caller's choice), `/longtask` handed to the worker and
`/process` to the microservice. Every answer names the gateway (`gateway_id`). Under the
course guide's profile (`guide.py`) it checks tokens as the guide's gateway does: 403 for a
missing or bad token, and compact JSON as Flask writes it.

It reaches the other components only over HTTP, at the URLs in its context. It can also
rate limit each client, skip the cache altogether (`use_cache = false`), and refresh a
stale cache entry in the background when the cache hands it the lease to.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

from ..core import forwarding
from ..model.auth import TokenError, gateway_auth, token_from_header
from ..model.config import GatewayConfig
from ..model.graph import Endpoint
from ..model.rate_limit import RateLimiter, client_key, reporting
from .answers import JSONError, credentials, too_many_requests
from .context import Context, Station
from .figures import GatewayFigures
from .middleware import Handler, base_app
from .steps import Steps, add_endpoint, passed_on

FIGURES = GatewayFigures

_CHALLENGE = 'Bearer realm="labsim"'


def make_app(ctx: Context[GatewayConfig]) -> web.Application:
    gateway = Gateway(ctx)
    app = base_app(ctx, gateway)
    if gateway.limiter is not None:
        app.middlewares.append(gateway.rate_limited)
    app.on_shutdown.append(gateway.steps.stop)
    app.router.add_post("/login", gateway.login)
    for endpoint in ctx.component.endpoints:
        add_endpoint(app, endpoint, gateway.serve(endpoint))
    return app


class Gateway(Station[GatewayConfig, GatewayFigures]):
    """A gateway's state: its users' tokens, its rate limiter, its endpoints' steps."""

    def __init__(self, ctx: Context[GatewayConfig]) -> None:
        super().__init__(ctx, GatewayFigures())
        topology, settings = ctx.topology, ctx.settings
        self.auth = gateway_auth(topology, settings.token_ttl)
        # A login service that checks tokens for it (Lab 5), or none: it checks them itself.
        self.login_service = ctx.component.auth
        self.guide = topology.auth.mode == "guide"
        self.token_required = topology.auth.required
        # The guide's gateway answers through Flask's jsonify: `{"token":"..."}`, no spaces.
        self.dumps = (
            functools.partial(json.dumps, separators=(",", ":")) if self.guide else json.dumps
        )
        limit = settings.rate_limit
        self.limiter = RateLimiter(limit.rate, limit.burst, ctx.clock.now) if limit.rate else None
        # Behind the load balancer, the client is the one it forwards (`forwarding.py`).
        self.forwarder = forwarding.proof(topology.admin_token)
        self.steps = Steps(ctx, self.figures)

    def serve(self, endpoint: Endpoint) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            await self.authenticate(request)
            body, status, headers = await self.steps.run(endpoint, request)
            return self.answer(body, status, headers)

        return handle

    async def authenticate(self, request: web.Request) -> dict[str, Any]:
        if not self.token_required:
            return {}
        header = request.headers.get("Authorization")
        if self.login_service:
            return await self.validate_elsewhere(header)
        token = token_from_header(header)
        if token is None:
            if self.guide:
                raise JSONError(403, "missing token", message="Token is missing")
            raise JSONError(
                401,
                "missing token",
                headers={"WWW-Authenticate": _CHALLENGE},
                message="Token is missing",
            )
        try:
            return self.auth.verify(token)
        except TokenError as e:
            if self.guide:
                raise JSONError(403, str(e), message="Token is invalid") from None
            challenge = f'{_CHALLENGE}, error="invalid_token", error_description="{e}"'
            raise JSONError(401, str(e), headers={"WWW-Authenticate": challenge}) from None

    async def validate_elsewhere(self, header: str | None) -> dict[str, Any]:
        """The login service's verdict on the request's bearer token: 403 unless it says
        the token is valid (as Lab 5's gateway asks it)."""
        if token_from_header(header) is None:
            raise JSONError(403, "missing or invalid token: send Authorization: Bearer <token>")
        reply = await self.steps.call(
            self.login_service,
            "POST",
            "/validate_token",
            headers={"Authorization": header or ""},
            check=False,
        )
        if reply.status != 200:
            raise JSONError(403, f"{self.login_service} refused the token ({reply.status})")
        return reply.object()

    def answer(
        self, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        """`body` as JSON, with this gateway's id in it."""
        body["gateway_id"] = self.ctx.id
        return web.json_response(body, status=status, headers=headers, dumps=self.dumps)

    @web.middleware
    async def rate_limited(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.limiter is None or reporting(request.path):
            return await handler(request)
        client = forwarding.client_address(request, self.forwarder)
        verdict = self.limiter.check(client_key(request.headers, client, self.auth))
        if not verdict.allowed:
            self.figures.rate_limited += 1
            raise too_many_requests(verdict.headers, self.ctx.id)
        response = await handler(request)
        response.headers.update(verdict.headers)
        return response

    async def login(self, request: web.Request) -> web.Response:
        username, password = await credentials(request)
        if self.login_service:  # its users and tokens are the login service's
            reply = await self.steps.call(
                self.login_service,
                "POST",
                "/login",
                {"username": username, "password": password},
                check=False,
            )
            if reply.status != 200:
                self.figures.login_failures += reply.status == 401
                return web.json_response(
                    reply.object(), status=reply.status, headers=passed_on(reply), dumps=self.dumps
                )
            return self.answer(reply.object())
        user = self.auth.check_credentials(username, password)
        if user is None:
            self.figures.login_failures += 1
            raise JSONError(401, "invalid_credentials", message="Invalid credentials")
        return self.answer({"token": self.auth.issue(user)})
