"""A scenario's topology: read from its file, moved and changed by the command line, and
checked as a whole (ports given once, one weight per gateway, both halves of a rate limit,
a TTL within its maximum, known gateways, unique users, no waiting line without slots).

Validation happens once, here, and every error names the file and the key. This module
reads files; it never reads the environment (the CLI does).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from .config import (
    GATEWAY_PORT_STEP,
    MAX_GATEWAYS,
    RateLimitConfig,
    StationConfig,
    Topology,
)
from .graph import Component
from .graph_reader import check_graph, read_components
from .latency import LatencyModel
from .rate_limit import reporting
from .schema import ConfigError, build, read_toml

_NOT_FROM_FILE = {"secret", "admin_token", "internal_token", "port_offset", "components"}
# The lab's own sections: with `[components]`, the topology is described there instead.
_LAB_SECTIONS = ("load_balancer", "gateways", "cache", "database", "worker", "microservice")
log = logging.getLogger("labsim")


def _moved(topology: Topology, offset: int) -> Topology:
    """Every configured port `offset` higher (0, a free port, stays 0); ids stay."""
    top = max(topology.ports().values())
    if top + offset > 65535:
        raise ConfigError(
            f"--port-offset {offset}: port {top} would become {top + offset}, past 65535"
        )

    def up(port: int) -> int:
        return port + offset if port else 0

    sections = {
        name: dataclasses.replace(getattr(topology, name), port=up(getattr(topology, name).port))
        for name in ("load_balancer", "cache", "database", "worker", "microservice")
    }
    gateways = topology.gateways
    sections["gateways"] = dataclasses.replace(gateways, ports=tuple(up(p) for p in gateways.ports))
    components = {
        name: _component_moved(c, tuple(up(p) for p in c.ports))
        for name, c in topology.components.items()
    }
    return dataclasses.replace(
        topology, **sections, components=components, port_offset=topology.port_offset + offset
    )


def _component_moved(component: Component, ports: tuple[int, ...]) -> Component:
    settings = component.settings
    if hasattr(settings, "port"):
        settings = dataclasses.replace(settings, port=ports[0])
    else:
        settings = dataclasses.replace(settings, ports=ports)
    return dataclasses.replace(component, ports=ports, settings=settings)


def load_topology(path: str | Path | None) -> Topology:
    """The scenario file's topology (the lab's defaults when `path` is None)."""
    if path is None:
        return validate(Topology(), "defaults")
    data = read_toml(path)
    # A scenario's load, expectations, faults and variants are read by `scenario.py`.
    return topology_from_dict(data, str(path), ignore={"load", "expect", "faults", "variants"})


def topology_from_dict(
    data: dict[str, Any], source: str, ignore: AbstractSet[str] = frozenset()
) -> Topology:
    """Build and validate a Topology; `ignore` names top-level keys another layer reads."""
    known = {k: v for k, v in data.items() if k not in ignore and k != "components"}
    topology = build(
        Topology, known, source, "", exclude=_NOT_FROM_FILE, read_elsewhere={*ignore, "components"}
    )
    if "components" in data:
        lab = [k for k in _LAB_SECTIONS if k in data]
        if lab:
            raise ConfigError(
                f"{source}: {lab[0]}: the lab's sections describe the lab's topology; with "
                "[components], describe every component there instead"
            )
        components = read_components(data["components"], source)
        topology = dataclasses.replace(topology, components=components)
    for warning in check_graph(topology.graph(), source) if topology.components else ():
        log.warning("labsim: %s", warning)
    return validate(topology, source)


def with_overrides(
    topology: Topology,
    *,
    gateways: int | None = None,
    db_latency: float | None = None,
    host: str | None = None,
    seed: int | None = None,
    port_offset: int = 0,
) -> Topology:
    """Apply the CLI's overrides (already checked for type and sign by argparse)."""
    if port_offset:
        topology = _moved(topology, port_offset)
    if gateways is not None:
        if gateways > MAX_GATEWAYS:
            raise ConfigError(f"--gateways {gateways}: at most {MAX_GATEWAYS}")
        first = topology.gateways.ports[0]
        last = first + GATEWAY_PORT_STEP * (gateways - 1)
        if first and last > 65535:
            raise ConfigError(
                f"--gateways {gateways}: the ports from {first}, {GATEWAY_PORT_STEP} apart, "
                f"would end at {last}, past 65535"
            )
        ports = tuple(first + GATEWAY_PORT_STEP * i if first else 0 for i in range(gateways))
        topology = dataclasses.replace(
            topology, gateways=dataclasses.replace(topology.gateways, ports=ports)
        )
    if db_latency is not None:
        database = dataclasses.replace(topology.database, latency=LatencyModel.fixed(db_latency))
        topology = dataclasses.replace(topology, database=database)
    if host is not None:
        topology = dataclasses.replace(topology, host=host)
    if seed is not None:
        topology = dataclasses.replace(topology, seed=seed)
    return validate(topology, "command line")


def _port_key(topology: Topology, component: str) -> str:
    if topology.components:
        name = topology.graph().component_of(component).name
        replicated = topology.components[name].replicated
        return f"components.{name}.{'ports' if replicated else 'port'}"
    if component.startswith("gateway-"):
        return f"gateways.ports[{topology.gateway_ids().index(component)}]"
    return f"{component.replace('-', '_')}.port"


def validate(topology: Topology, source: str) -> Topology:
    """`topology` if its sections agree with each other; ConfigError naming the key if not."""
    if not topology.host.strip():
        raise ConfigError(f"{source}: host: must name an address, e.g. 127.0.0.1")
    seen: dict[int, str] = {}
    for component, port in topology.ports().items():
        if port and port in seen:
            raise ConfigError(
                f"{source}: {_port_key(topology, component)}: port {port} is already "
                f"given to {seen[port]}"
            )
        seen[port] = component
    graph = topology.graph()
    if topology.components:
        check_graph(graph, source)
    for name, node in graph.components.items():
        weights = getattr(node.settings, "weights", ())
        replicas = sum(len(graph.replicas(b)) for b in node.backends)
        if weights and len(weights) != replicas and topology.components:
            raise ConfigError(
                f"{source}: components.{name}.weights: {len(weights)} weights for {replicas} "
                "backends (give one per backend replica, in order)"
            )
    weights = topology.load_balancer.weights
    if weights and len(weights) != len(topology.gateways.ports):
        raise ConfigError(
            f"{source}: load_balancer.weights: {len(weights)} weights for "
            f"{len(topology.gateways.ports)} gateways (give one per gateway, in port order)"
        )
    for key, section, limit in _rate_limits(topology):
        _check_rate_limit(f"{source}: {key}.rate_limit", section, limit)
    cache = topology.cache
    if cache.ttl > cache.max_ttl:
        raise ConfigError(
            f"{source}: cache.ttl: {cache.ttl:g} is above cache.max_ttl ({cache.max_ttl:g})"
        )
    if cache.coalesce and cache.lease_timeout >= cache.timeout:
        raise ConfigError(
            f"{source}: cache.lease_timeout: {cache.lease_timeout:g} s must be below "
            f"cache.timeout ({cache.timeout:g} s), or coalesced callers time out first"
        )
    for gateway in topology.gateways.each:
        if gateway not in topology.gateway_ids():
            known = ", ".join(topology.gateway_ids())
            raise ConfigError(
                f"{source}: gateways.each.{gateway}: no such gateway (known: {known})"
            )
    for component, address in topology.hosts.items():
        if component not in topology.ports():
            known = ", ".join(topology.ports())
            raise ConfigError(f"{source}: hosts.{component}: no such component (known: {known})")
        if not isinstance(address, str) or not address.strip() or len(address) > 253:
            raise ConfigError(f"{source}: hosts.{component}: must name an address, e.g. 127.0.0.2")
    for key, station in _stations(topology):
        default = next(f.default for f in dataclasses.fields(station) if f.name == "queue_size")
        if not station.concurrency and station.queue_size != default:
            raise ConfigError(
                f"{source}: {key}.queue_size: {station.queue_size} has no effect without "
                f"{key}.concurrency (no slots: nobody waits); give concurrency above 0 too, "
                "or drop queue_size"
            )
    names = [u.username for u in topology.users]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: users: a username is listed twice")
    return topology


def _stations(topology: Topology) -> list[tuple[str, StationConfig]]:
    """(key, settings) of every station table, `gateways.each.<id>` ones included."""
    each = topology.gateways.each.items()
    return [
        ("load_balancer", topology.load_balancer),
        ("gateways", topology.gateways),
        *((f"gateways.each.{gateway}", station) for gateway, station in each),
        ("cache", topology.cache),
        ("database", topology.database),
        ("microservice", topology.microservice),
        *(
            (f"components.{name}", c.settings)
            for name, c in topology.components.items()
            if isinstance(c.settings, StationConfig)
        ),
    ]


_MAX_PATH = 256


def _rate_limits(topology: Topology) -> list[tuple[str, str, RateLimitConfig]]:
    """(key, section, rate_limit) of every component's table, `gateways.each.<id>` and
    `components.NAME` ones included; the section says whether a token bucket may be kept."""
    each = topology.gateways.each.items()
    lab = [
        ("load_balancer", topology.load_balancer.rate_limit),
        ("gateways", topology.gateways.rate_limit),
        *((f"gateways.each.{gateway}", station.rate_limit) for gateway, station in each),
        ("cache", topology.cache.rate_limit),
        ("database", topology.database.rate_limit),
        ("worker", topology.worker.rate_limit),
        ("microservice", topology.microservice.rate_limit),
    ]
    sections = {"load_balancer": "load_balancer", "gateway": "gateways"}
    return [(key, key, limit) for key, limit in lab] + [
        (f"components.{name}", sections.get(c.kind, c.kind), c.settings.rate_limit)
        for name, c in topology.components.items()
    ]


def _check_rate_limit(where: str, section: str, limit: RateLimitConfig) -> None:
    """ConfigError naming the key unless each form of `limit` is given whole, or not at all."""
    if limit.rate > 0 or limit.burst > 0:
        if section.startswith("gateways.each."):
            raise ConfigError(
                f"{where}.rate: the gateways keep one token bucket per client for all of "
                "them ([gateways] rate_limit); limit one gateway with requests and window"
            )
        if (limit.rate > 0) != (limit.burst > 0):
            raise ConfigError(f"{where}: give both rate and burst above 0 (or neither)")
    if (limit.requests > 0) != (limit.window > 0):
        raise ConfigError(
            f"{where}: give both requests (at least 1) and window (seconds above 0), or neither"
        )
    if limit.paths and not limit.requests:
        raise ConfigError(
            f"{where}.paths: limits the count per window only: give requests and window too"
        )
    for i, path in enumerate(limit.paths):
        if not path.startswith("/") or len(path) > _MAX_PATH or not path.isprintable():
            raise ConfigError(
                f'{where}.paths[{i}]: must start with "/", printable, at most {_MAX_PATH} '
                f"characters (got {path[:_MAX_PATH]!r})"
            )
        if reporting(path):
            raise ConfigError(
                f"{where}.paths[{i}]: {path} is never rate limited (/health, /metrics, "
                "/admin/ and /status report on the component)"
            )
