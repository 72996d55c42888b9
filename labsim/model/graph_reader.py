"""Reads a scenario's `[components.NAME]` tables into the graph, and checks a graph.

A table holds its `kind`, its `port` (one replica named NAME) or `ports` (one replica per
port, named NAME-PORT), the kind's settings (as the lab's sections take them), and, by
kind, `endpoints` (a "METHOD /path" key per endpoint, each a list of steps), `backends`
(a load balancer's: the components whose replicas it spreads requests over) and `auth`
(a gateway's: the login component it hands token checks to). Every mistake is one
ConfigError naming the key; see docs/scenarios.md for the syntax.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from .graph import STEP_KINDS, Component, Endpoint, Graph, Step
from .kinds import KINDS
from .schema import ConfigError, build, latency_value

MAX_COMPONENTS = 500
MAX_ENDPOINTS = 64
MAX_STEPS = 32
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ROUTE = re.compile(r"(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_.\-/]{0,200})")
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_GRAPH_KEYS = {"kind", "port", "ports", "endpoints", "backends", "auth"}
_STEP_KEYS = {
    "cpu": {"cpu"},
    "io": {"io"},
    "call": {"call", "method", "path"},
    "read_through": {"read_through", "key", "source"},
    "enqueue": {"enqueue", "ignore_status"},
}


def read_components(data: Any, source: str) -> dict[str, Component]:
    """The components of a `[components]` table, in the file's order."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: components: must be a table of [components.NAME] tables")
    if len(data) > MAX_COMPONENTS:
        raise ConfigError(f"{source}: components: at most {MAX_COMPONENTS} components")
    out = {}
    for name, table in data.items():
        where = f"components.{name}"
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{source}: {where}: a name is 1 to 40 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        out[name] = _component(name, table, source, where)
    return out


def _component(name: str, table: Any, source: str, where: str) -> Component:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {where}: must be a table")
    kind_name = table.get("kind")
    if kind_name not in KINDS:
        raise ConfigError(
            f"{source}: {where}.kind: must be one of {', '.join(KINDS)} (got {kind_name!r})"
        )
    kind = KINDS[kind_name]
    ports, replicated = _ports(table, source, where)
    settings_table = {k: v for k, v in table.items() if k not in _GRAPH_KEYS}
    has_port = "port" in {f.name for f in dataclasses.fields(kind.settings)}
    settings = build(
        kind.settings,
        settings_table,
        source,
        where,
        exclude={"port", "ports", "each"},
        read_elsewhere=_GRAPH_KEYS,
    )
    if has_port:
        settings = dataclasses.replace(settings, port=ports[0])
    else:
        settings = dataclasses.replace(settings, ports=ports)
    endpoints: tuple[Endpoint, ...] = ()
    if "endpoints" in table:
        if not kind.endpoints:
            raise ConfigError(f"{source}: {where}.endpoints: a {kind.name} takes no endpoints")
        endpoints = _endpoints(table["endpoints"], source, f"{where}.endpoints")
    elif kind.endpoints:
        raise ConfigError(f"{source}: {where}.endpoints: required for a {kind.name}")
    backends: tuple[str, ...] = ()
    if kind.name == "load_balancer":
        backends = _names(table.get("backends"), source, f"{where}.backends")
    elif "backends" in table:
        raise ConfigError(f"{source}: {where}.backends: only a load balancer has backends")
    auth = table.get("auth", "")
    if auth and kind.name != "gateway":
        raise ConfigError(f"{source}: {where}.auth: only a gateway hands its token checks on")
    if not isinstance(auth, str):
        raise ConfigError(f"{source}: {where}.auth: must name a login component")
    return Component(name, kind.name, ports, settings, endpoints, backends, auth, replicated)


def _ports(table: dict[str, Any], source: str, where: str) -> tuple[tuple[int, ...], bool]:
    if ("port" in table) == ("ports" in table):
        raise ConfigError(f"{source}: {where}: give `port` (one replica) or `ports` (one each)")
    given = table.get("port", table.get("ports"))
    replicated = "ports" in table
    ports = given if replicated else [given]
    key = f"{where}.{'ports' if replicated else 'port'}"
    if not isinstance(ports, list) or not 1 <= len(ports) <= MAX_COMPONENTS:
        raise ConfigError(f"{source}: {key}: must list 1 to {MAX_COMPONENTS} ports")
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"{source}: {key}: {port!r} is not a port from 0 to 65535")
    if len({p for p in ports if p}) != len([p for p in ports if p]):
        raise ConfigError(f"{source}: {key}: a port is listed twice")
    return tuple(ports), replicated


def _names(value: Any, source: str, key: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{source}: {key}: must name a component or list components")
    return tuple(names)


def _endpoints(value: Any, source: str, where: str) -> tuple[Endpoint, ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f'{source}: {where}: must be a table of "METHOD /path" = [steps]')
    if len(value) > MAX_ENDPOINTS:
        raise ConfigError(f"{source}: {where}: at most {MAX_ENDPOINTS} endpoints")
    out = []
    for route, steps in value.items():
        key = f'{where}."{route}"'
        match = _ROUTE.fullmatch(route)
        if match is None:
            raise ConfigError(f'{source}: {key}: must be "METHOD /path", e.g. "GET /data"')
        method, path = match.groups()
        message = "done"
        if isinstance(steps, dict):  # { steps = [...], message = "..." }
            extra = set(steps) - {"steps", "message"}
            if extra:
                raise ConfigError(
                    f"{source}: {key}.{sorted(extra)[0]}: unknown key (known: message, steps)"
                )
            message = steps.get("message", message)
            if not isinstance(message, str) or len(message) > 200:
                raise ConfigError(
                    f"{source}: {key}.message: must be text of at most 200 characters"
                )
            steps = steps.get("steps", [])
        if not isinstance(steps, list) or len(steps) > MAX_STEPS:
            raise ConfigError(f"{source}: {key}: must be a list of at most {MAX_STEPS} steps")
        parsed = tuple(_step(s, source, f"{key}[{i}]", path) for i, s in enumerate(steps))
        out.append(Endpoint(method, path, parsed, message))
    return tuple(out)


def _step(raw: Any, source: str, key: str, path: str) -> Step:
    kinds = [k for k in STEP_KINDS if isinstance(raw, dict) and k in raw]
    if len(kinds) != 1:
        raise ConfigError(
            f"{source}: {key}: a step is a table with one of {', '.join(STEP_KINDS)}, "
            'e.g. { call = "database", path = "/db" }'
        )
    kind = kinds[0]
    extra = set(raw) - _STEP_KEYS[kind]
    if extra:
        known = ", ".join(sorted(_STEP_KEYS[kind]))
        raise ConfigError(f"{source}: {key}.{sorted(extra)[0]}: unknown key (known: {known})")
    if kind in ("cpu", "io"):
        return Step(kind, time=latency_value(raw[kind], source, f"{key}.{kind}"))
    target = raw[kind]
    if not isinstance(target, str):
        raise ConfigError(f"{source}: {key}.{kind}: must name a component")
    if kind == "call":
        method = raw.get("method", "GET")
        if method not in _METHODS:
            raise ConfigError(f"{source}: {key}.method: must be one of {', '.join(_METHODS)}")
        called = raw.get("path", path)
        if not isinstance(called, str) or not _ROUTE.fullmatch(f"GET {called}"):
            raise ConfigError(f"{source}: {key}.path: must be a path such as /data")
        return Step("call", target=target, method=method, path=called)
    if kind == "read_through":
        cache_key = raw.get("key", "my_data")
        if not isinstance(cache_key, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", cache_key):
            raise ConfigError(
                f"{source}: {key}.key: must be 1 to 64 letters, digits, '_', '.' or '-'"
            )
        if "source" not in raw:
            raise ConfigError(
                f"{source}: {key}.source: required: the call a miss makes, "
                '{ call = "database", path = "/db" } for example'
            )
        miss = _step(raw["source"], source, f"{key}.source", path)
        if miss.kind != "call":
            raise ConfigError(f"{source}: {key}.source: must be a call step")
        return Step("read_through", target=target, key=cache_key, source=miss)
    ignore = raw.get("ignore_status", False)
    if not isinstance(ignore, bool):
        raise ConfigError(f"{source}: {key}.ignore_status: must be true or false")
    return Step("enqueue", target=target, ignore_status=ignore)


def check_graph(graph: Graph, source: str) -> list[str]:
    """ConfigError naming the key for a call that cannot be made; the warnings otherwise
    (a component nobody calls, other than where clients come in)."""
    components = graph.components
    for name, component in components.items():
        where = f"components.{name}"
        for backend in component.backends:
            _known(graph, backend, source, f"{where}.backends")
        if component.auth:
            _known(graph, component.auth, source, f"{where}.auth")
            if components[component.auth].kind != "login":
                raise ConfigError(
                    f"{source}: {where}.auth: {component.auth!r} is a "
                    f"{components[component.auth].kind}, not a login component"
                )
        for endpoint in component.endpoints:
            for i, step in enumerate(endpoint.steps):
                _check_step(graph, step, source, f'{where}.endpoints."{endpoint.route}"[{i}]')
    cycle = graph.cycle()
    if cycle:
        raise ConfigError(f"{source}: components: calls go round in a circle: {' -> '.join(cycle)}")
    entry = graph.entry()
    return [
        f"{source}: components.{name}: nobody calls it (clients send to {entry}), "
        "so it gets no requests"
        for name in graph.entries()
        if name != entry
    ]


def _known(graph: Graph, name: str, source: str, key: str) -> None:
    if name not in graph.components:
        known = ", ".join(graph.components)
        raise ConfigError(f"{source}: {key}: no component {name!r} (known: {known})")


def _check_step(graph: Graph, step: Step, source: str, key: str) -> None:
    if step.kind in ("cpu", "io") or not step.target:
        return
    _known(graph, step.target, source, f"{key}.{step.kind}")
    target = graph.components[step.target]
    wanted = {"read_through": "cache", "enqueue": "worker"}.get(step.kind)
    if wanted and target.kind != wanted:
        raise ConfigError(
            f"{source}: {key}.{step.kind}: {step.target!r} is a {target.kind}, not a {wanted}"
        )
    if step.kind == "call" and not serves(graph, step.target, step.method, step.path):
        raise ConfigError(
            f"{source}: {key}.path: {step.target} does not serve {step.method} {step.path}"
        )
    if step.source is not None:
        _check_step(graph, step.source, source, f"{key}.source")


def serves(
    graph: Graph, name: str, method: str, path: str, seen: frozenset[str] = frozenset()
) -> bool:
    """Whether `method path` sent to `name` is answered: by its endpoints or its kind's own
    routes, or, for a load balancer, by every one of its backends."""
    component = graph.components[name]
    if name in seen:
        return False
    if component.kind == "load_balancer":
        return all(
            b in graph.components and serves(graph, b, method, path, seen | {name})
            for b in component.backends
        )
    if component.endpoint(method, path) is not None:
        return True
    return KINDS[component.kind].serves_route(method, path)
