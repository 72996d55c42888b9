"""Lab 3's "limit exposure": only the gateways may call the internal components.

Under `exposure = "gateways-only"`, the cache, database, worker and microservice answer a
request only if it carries the run's internal credential (`X-Labsim-Internal`). It is a
random value made per run, never read from a file, logged or put in an answer; the
gateways' HTTP client sends it (and the dashboard's, which reads the `/metrics` of a
component another process serves), and no user ever sees it. Anyone else gets 403 naming the rule.
`/health` stays open for liveness checks, and `/admin/` has its own token. With a public
`--host`, only the load balancer (and the gateways, with `[gateways] public = true`)
listen on it; the internal components listen on loopback.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from ..core.http import INTERNAL_HEADER
from ..model.config import Topology
from .answers import JSONError

INTERNAL_KINDS = frozenset({"cache", "database", "worker", "microservice"})
LOOPBACK = "127.0.0.1"
_OPEN_PATHS = ("/health", "/admin/")


def _anyone(request: web.Request) -> None:
    pass


def limited(topology: Topology) -> bool:
    return topology.exposure == "gateways-only"


def bind_host(topology: Topology, kind: str, component: str) -> str:
    """The address a component of `kind` listens on (its own in `hosts` first)."""
    if component in topology.hosts or not limited(topology):
        return topology.host_of(component)
    if kind == "load_balancer" or (kind == "gateway" and topology.gateways.public):
        return topology.host
    return LOOPBACK


def credential(topology: Topology, kind: str) -> dict[str, str]:
    """Headers a component of `kind` sends with every call: the gateways carry the key."""
    if limited(topology) and kind in ("gateway", "dashboard"):
        return {INTERNAL_HEADER: topology.internal_token}
    return {}


def guard(topology: Topology, kind: str, component: str) -> Callable[[web.Request], None]:
    """What refuses a caller without the credential (JSONError 403); a no-op where anyone
    may call."""
    if not limited(topology) or kind not in INTERNAL_KINDS:
        return _anyone
    expected = topology.internal_token.encode()
    refusal = f'{component} answers only the gateways (exposure = "gateways-only")'

    def check(request: web.Request) -> None:
        if request.path.startswith(_OPEN_PATHS):
            return
        given = request.headers.get(INTERNAL_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            raise JSONError(403, refusal, component=component)

    return check
