"""The load balancer: a reverse proxy that sends each request to the next gateway.

Any method, path, query string, headers (less hop-by-hop ones) and body go to the gateway
picked round robin; its status, headers and body come back unchanged. A gateway that
cannot be reached gives a JSON 502 naming it, and the next request goes to the next one.
"""

from __future__ import annotations

import itertools

from aiohttp import web
from multidict import CIMultiDict

from ..http import EXCHANGE_HEADER
from .context import Context
from .middleware import base_app

# RFC 9110 §7.6.1 hop-by-hop headers, plus those the proxy recomputes itself.
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
        EXCHANGE_HEADER,
    )
)


def _end_to_end(headers: CIMultiDict[str] | object) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP)


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    gateways = ctx.topology.gateway_ids()
    turn = itertools.cycle(gateways)
    counters = ctx.metrics.counters

    async def proxy(request: web.Request) -> web.Response:
        gateway = next(turn)
        headers = _end_to_end(request.headers)
        if request.remote:
            headers.add("X-Forwarded-For", request.remote)
        counters[f"to:{gateway}"] += 1
        reply = await ctx.client.request(
            gateway,
            request.method,
            ctx.url(gateway, request.path_qs),
            headers=headers,
            data=await request.read(),
            check=False,
        )
        return web.Response(
            status=reply.status, headers=_end_to_end(reply.headers), body=reply.body
        )

    app.router.add_route("*", "/{tail:.*}", proxy)
    return app
