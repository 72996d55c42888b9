"""Lab 3's "limit exposure": only the components meant to call the internal ones may.

Under `exposure = "gateways-only"`, the internal components (the kinds `kinds.py` marks
internal, such as the lab's cache, database, worker and microservice, and any load
balancer clients do not come in at) answer a request only if it carries the run's
internal credential (`X-Labsim-Internal`). It is a random value made per run, never read
from a file, logged or put in an answer; the HTTP client of every component that calls an
internal one sends it (the lab's gateways; and the dashboard's, which reads the `/metrics`
of a component another process serves), and no user ever sees it. Anyone else gets 403
naming the rule. `/health` stays open for liveness checks, and `/admin/` has its own token.
With a public `--host`, only the load balancer clients come in at (and gateways with
`public = true`) listen on it; the internal components listen on loopback.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from ..core.http import INTERNAL_HEADER
from ..model.config import Topology
from ..model.graph import Graph
from ..model.kinds import KINDS
from .answers import JSONError

LOOPBACK = "127.0.0.1"
_OPEN_PATHS = ("/health", "/admin/")


def _anyone(request: web.Request) -> None:
    pass


def limited(topology: Topology) -> bool:
    return topology.exposure == "gateways-only"


def _guarded(graph: Graph, name: str) -> bool:
    """Whether component `name` answers only callers with the credential: an internal
    kind (`kinds.py`), or a load balancer clients do not come in at."""
    component = graph.components[name]
    if component.kind == "load_balancer":
        return name not in graph.entries()
    return not KINDS[component.kind].public


def bind_host(topology: Topology, kind: str, component: str) -> str:
    """The address a replica listens on (its own in `hosts` first): the public one for the
    load balancer clients come in at and for public gateways, else loopback."""
    if component in topology.hosts or not limited(topology):
        return topology.host_of(component)
    graph = topology.graph()
    name = graph.component_of(component).name
    settings = graph.components[name].settings
    if kind == "load_balancer" and name in graph.entries():
        return topology.host
    if kind == "gateway" and settings.public:
        return topology.host
    return LOOPBACK


def credential(topology: Topology, kind: str, component: str = "") -> dict[str, str]:
    """Headers a replica sends with every call: the key, where it calls a guarded
    component (the lab's gateways; the dashboard, which reads every component)."""
    if not limited(topology):
        return {}
    if kind != "dashboard":
        graph = topology.graph()
        name = graph.component_of(component).name
        if not any(_guarded(graph, callee) for callee in graph.calls(name)):
            return {}
    return {INTERNAL_HEADER: topology.internal_token}


def guard(topology: Topology, kind: str, component: str) -> Callable[[web.Request], None]:
    """What refuses a caller without the credential (JSONError 403); a no-op where anyone
    may call."""
    if not limited(topology):
        return _anyone
    graph = topology.graph()
    if not _guarded(graph, graph.component_of(component).name):
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
