"""The lab's own topology: its sections (`[load_balancer]`, `[gateways]`, `[cache]`,
`[database]`, `[worker]`, `[microservice]`) as components of the graph.

This is the one place outside the lab's scenarios and tests that names the lab's
components: a load balancer over the gateways; each gateway reads `/data` through the
cache in front of the database, hands `/longtask` to the worker and `/process` to the
microservice. Declared callees first, which is the lab's start order.
"""

from __future__ import annotations

from typing import Any

from .graph import Component, Endpoint, Step


def lab_components(
    load_balancer: Any, gateways: Any, cache: Any, database: Any, worker: Any, microservice: Any
) -> dict[str, Component]:
    """The lab's components from its sections' settings (`config.py`'s classes)."""
    # Without the cache (`use_cache = false`) every /data is a miss that reads the database.
    cached = "cache" if gateways.use_cache else ""
    read = Step(
        "read_through",
        target=cached,
        key=gateways.data_key,
        source=Step("call", target="database", path="/db"),
    )
    gateway_endpoints = (
        Endpoint("GET", "/data", (read,)),
        Endpoint("POST", "/longtask", (Step("enqueue", target="worker"),)),
        Endpoint("GET", "/process", (Step("call", target="microservice", path="/process"),)),
    )
    components = [
        Component("database", "database", (database.port,), database),
        Component("cache", "cache", (cache.port,), cache),
        Component(
            "microservice",
            "microservice",
            (microservice.port,),
            microservice,
            endpoints=(Endpoint("GET", "/process", message="Business logic executed"),),
        ),
        Component("worker", "worker", (worker.port,), worker),
        Component(
            "gateway",
            "gateway",
            gateways.ports,
            gateways,
            endpoints=gateway_endpoints,
            replicated=True,
        ),
        Component(
            "load-balancer",
            "load_balancer",
            (load_balancer.port,),
            load_balancer,
            backends=("gateway",),
        ),
    ]
    return {c.name: c for c in components}
