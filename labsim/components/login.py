"""A login service (the course's Lab 5): `POST /login` checks a user's credentials and
issues a token; `POST /validate_token` says whether the request's bearer token is valid,
for the gateways that hand it their checks (`auth = "<this component>"`).

Tokens follow the topology's rules (`auth.py`: HS256 with expiry, or the guide's profile);
credentials are compared in constant time. It calls nobody.
"""

from __future__ import annotations

from aiohttp import web

from ..model.auth import TokenError, gateway_auth, token_from_header
from ..model.config import LoginConfig
from .answers import JSONError, credentials, json_body
from .context import Context, Station
from .figures import LoginFigures
from .middleware import base_app

FIGURES = LoginFigures


class Login(Station[LoginConfig, LoginFigures]):
    def __init__(self, ctx: Context[LoginConfig]) -> None:
        super().__init__(ctx, LoginFigures())
        self.auth = gateway_auth(ctx.topology, ctx.settings.token_ttl)

    async def login(self, request: web.Request) -> web.Response:
        username, password = await credentials(request)
        user = self.auth.check_credentials(username, password)
        if user is None:
            self.figures.login_failures += 1
            raise JSONError(401, "invalid_credentials", message="Invalid credentials")
        self.figures.tokens_issued += 1
        return web.json_response({"token": self.auth.issue(user)})

    async def validate(self, request: web.Request) -> web.Response:
        # The guide's gateways send `{"token": ...}`; labsim's send the bearer header.
        body = await json_body(request, empty={}) if request.can_read_body else {}
        given = body.get("token") if isinstance(body, dict) else None
        token = given if isinstance(given, str) and given else None
        token = token or token_from_header(request.headers.get("Authorization"))
        if token is None:
            raise JSONError(400, "token is missing: send Authorization: Bearer <token>")
        try:
            claims = self.auth.verify(token)
        except TokenError as e:
            self.figures.tokens_refused += 1
            raise JSONError(403, f"invalid token: {e}") from None
        return web.json_response({"valid": True, "username": claims.get("username")})


def make_app(ctx: Context[LoginConfig]) -> web.Application:
    login = Login(ctx)
    app = base_app(ctx, login)
    app.router.add_post("/login", login.login)
    app.router.add_post("/validate_token", login.validate)
    return app
