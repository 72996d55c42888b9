"""What the model engine reproduces today, and the one line that refuses the rest.

`unsupported(topology, options, faults)` is None for a run the model engine gives
exactly as the HTTP engine does, else one line naming the first feature it does not yet
reproduce. Some features only show while a run goes (a timeout, more requests in flight
between two components than one connection pool holds): the engine
raises `Unsupported` with the same kind of line then, never a different answer. Plain
data in, a string out: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model.config import StationConfig, Topology, replica_settings
from ..model.graph import Graph
from ..model.kinds import KINDS
from ..model.load import DIRECT, ENDPOINTS
from ..model.scenario import Fault
from .session import BenchError, BenchOptions

PREFIX = "the model engine does not yet reproduce: "
# Kinds a request of the supported load may reach, and the steps it may take there.
# Kinds by the module that serves them (the lab's microservice is a service).
MODULES = ("load_balancer", "gateway", "service", "cache", "database", "worker")
STEPS = ("call", "cpu", "io", "read_through", "enqueue")
STRATEGIES = ("round_robin", "random", "least_connections", "power_of_two", "weighted")


class Unsupported(BenchError):
    """The model engine cannot reproduce this run exactly: the message names why."""


def refuse(feature: str) -> Unsupported:
    return Unsupported(PREFIX + feature)


def unsupported(
    topology: Topology, options: BenchOptions, faults: Sequence[Fault] = ()
) -> str | None:
    """None when the model engine reproduces this run; else the one line saying why not."""
    reason = _load(options, faults) or _topology(topology, options)
    return None if reason is None else PREFIX + reason


def _load(options: BenchOptions, faults: Sequence[Fault]) -> str | None:
    if options.target is not None:
        return "--target (a topology served elsewhere)"
    if not options.virtual:
        return "the real clock (clock = real)"
    if faults:
        return "[[faults]] (faults on a schedule)"
    if options.flows:
        return "[[flows]] (user flows)"
    if options.auth != "login":
        return f'auth = "{options.auth}" (only a token from /login)'
    if options.verbose:
        return "--verbose (a line per request)"
    return None


def _topology(topology: Topology, options: BenchOptions) -> str | None:
    if topology.status_tracker:
        return "status_tracker (the status log)"
    graph = topology.graph()
    for name, component in graph.components.items():
        for replica in graph.replicas(name):
            reason = _settings(replica.id, replica_settings(component, replica.id))
            if reason:
                return reason
    reason = _caches(graph, options.keys.count)
    if reason:
        return reason
    reason = _route(graph, graph.entry(), "POST", "/login", set())
    if reason:
        return reason
    for name, weight in options.mix.items():
        if not weight:
            continue
        method, path, _, _ = ENDPOINTS[name]
        kind = DIRECT.get(name)
        if kind is None:
            reason = _route(graph, graph.entry(), method, path, set())
        elif topology.exposure != "open":
            reason = f'the {name!r} endpoint under exposure = "{topology.exposure}"'
        else:  # straight to the first component of that kind, past the entry
            reason = _route(
                graph, graph.component_of(graph.of_kind(kind)[0]).name, method, path, set()
            )
        if reason:
            return reason
    return None


def _caches(graph: Graph, drawn: int) -> str | None:
    """The engine keeps a cache's entries as the cache does (`Entries`), but not their
    values' bytes: refused where bytes could decide an eviction (its entries, the load's
    `drawn` keys counted, could fill `max_bytes`), or where its TTL is refused."""
    keys: dict[str, set[str]] = {}
    for component in graph.components.values():
        for endpoint in component.endpoints:
            for step in endpoint.steps:
                if step.kind == "read_through" and step.target:
                    keys.setdefault(step.target, set()).add(step.key)
    for name, read in keys.items():
        settings = graph.components[name].settings
        count = min(len(read) + drawn, settings.maxsize)
        if count * _ENTRY_BYTES > settings.max_bytes:
            return f"[{name}] an entry evicted for bytes (max_bytes {settings.max_bytes:,})"
        if settings.ttl > settings.max_ttl:
            return f"[{name}] ttl above max_ttl (its fills refused)"
    return None


# Bytes a cache entry of a read may cost at most, with its value (a component's message).
_ENTRY_BYTES = 4096


def _settings(replica: str, settings: object) -> str | None:
    if getattr(settings, "status_name", ""):
        return f"[{replica}] status_name (the status log)"
    limit = getattr(settings, "rate_limit", None)
    if limit is not None and (limit.rate > 0 or limit.requests > 0):
        return f"[{replica}] rate_limit"
    station = settings if isinstance(settings, StationConfig) else None
    if station is not None and station.concurrency > 0 and station.discipline != "fifo":
        return f'[{replica}] discipline = "{station.discipline}"'
    if getattr(settings, "coalesce", False):
        return f"[{replica}] coalesce (coalescing cache misses)"
    if getattr(settings, "stale_while_revalidate", 0) > 0:
        return f"[{replica}] stale_while_revalidate"
    strategy = getattr(settings, "strategy", None)
    if strategy is not None:
        if strategy not in STRATEGIES:
            return f'[{replica}] strategy = "{strategy}"'
        if settings.health_check.interval > 0:  # type: ignore[attr-defined]
            return f"[{replica}] health_check"
        if settings.outlier.consecutive_failures > 0:  # type: ignore[attr-defined]
            return f"[{replica}] outlier (ejection)"
        if settings.retry.attempts > 0:  # type: ignore[attr-defined]
            return f"[{replica}] retry"
    return None


def _route(
    graph: Graph, name: str, method: str, path: str, seen: set[str], token: bool = True
) -> str | None:
    """Why a request `method path` at component `name` is beyond the engine, or None.
    `token`: whether it carries the bench's token (a step's call carries none)."""
    component = graph.components[name]
    if KINDS[component.kind].module not in MODULES:
        return f"requests to a {component.kind} ({name})"
    if name in seen:
        return f"a circle of calls through {name}"
    seen = seen | {name}
    if component.kind == "load_balancer":
        for backend in component.backends:
            reason = _route(graph, backend, method, path, seen, token)
            if reason:
                return reason
        return None if component.backends else f"a load balancer with no backends ({name})"
    if component.kind == "gateway" and not token:
        return f"a gateway called by a step, with no token ({name})"
    if component.kind == "gateway" and component.auth:
        return f"a login service checking the gateway's tokens ({component.auth})"
    if component.kind == "gateway" and (method, path) == ("POST", "/login"):
        return None
    own = {"database": ("GET", "/db"), "worker": ("POST", "/task")}.get(component.kind)
    if own is not None or component.kind == "cache":
        if component.kind == "cache" or own == (method, path):
            return None
        return f"{method} {path} at {name}, which has no such endpoint (a 404)"
    endpoint = component.endpoint(method, path)
    if endpoint is None:
        return f"{method} {path} at {name}, which has no such endpoint (a 404)"
    for step in endpoint.steps:
        if step.kind not in STEPS:
            return f"{step.kind} steps ({name} {method} {path})"
        if step.kind == "read_through":
            assert step.source is not None
            if step.target and graph.components[step.target].kind != "cache":
                return f"a read through a {graph.components[step.target].kind} ({name})"
            step = step.source  # the miss's call, checked as any call
        if step.kind == "enqueue":
            if graph.components[step.target].kind != "worker":
                return f"a task handed to a {graph.components[step.target].kind} ({name})"
            continue
        if step.kind == "call":
            reason = _route(graph, step.target, step.method, step.path, seen, token=False)
            if reason:
                return reason
    return None
