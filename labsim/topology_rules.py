"""The rules that span a topology's sections: ports given once, one weight per gateway,
both halves of a rate limit, a TTL within its maximum, known gateways, unique users, no
waiting line without slots.

Plain checks on a built `Topology`; every error names the source and the key.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .schema import ConfigError

if TYPE_CHECKING:
    from .config import StationConfig, Topology


def _port_key(topology: Topology, component: str) -> str:
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
    weights = topology.load_balancer.weights
    if weights and len(weights) != len(topology.gateways.ports):
        raise ConfigError(
            f"{source}: load_balancer.weights: {len(weights)} weights for "
            f"{len(topology.gateways.ports)} gateways (give one per gateway, in port order)"
        )
    rate_limits = [("load_balancer", topology.load_balancer.rate_limit)]
    rate_limits.append(("gateways", topology.gateways.rate_limit))
    for section, limit in rate_limits:
        if (limit.rate > 0) != (limit.burst > 0):
            raise ConfigError(
                f"{source}: {section}.rate_limit: give both rate and burst above 0 (or neither)"
            )
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
        # The field's own default: config.py, which holds it, imports this module.
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
    ]
