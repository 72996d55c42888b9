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


def lab_rows(
    lb: Any, gateways: Any, cache: Any, database: Any, worker: Any, microservice: Any
) -> dict[str, str]:
    """The lab's settings a reader needs to make sense of a run, one line of text each."""

    def switch(on: bool, text: str) -> str:
        return text if on else "off"

    latency = {
        "load balancer": lb.latency,
        "gateways": gateways.latency,
        "cache": cache.latency,
        "database": database.latency,
        "worker": worker.latency,
        "microservice": microservice.latency,
    }
    strategy = lb.strategy + (f" {list(lb.weights)}" if lb.weights else "")
    rate_limits = [
        f"{where} {r.rate:g}/s (burst {r.burst})"
        for where, r in (("load balancer", lb.rate_limit), ("gateways", gateways.rate_limit))
        if r.rate > 0
    ]
    windows = {
        "load balancer": lb.rate_limit,
        "each gateway": gateways.rate_limit,
        "cache": cache.rate_limit,
        "database": database.rate_limit,
        "worker": worker.rate_limit,
        "microservice": microservice.rate_limit,
    }
    rate_limits += [
        f"{where} {r.requests} per {r.window:g} s"
        + (f" on {', '.join(r.paths)}" if r.paths else "")
        for where, r in windows.items()
        if r.requests > 0
    ]
    return {
        "gateways": f"{len(gateways.ports)}, balanced by {strategy}",
        "service times": ", ".join(f"{k} {v.describe()}" for k, v in latency.items()),
        "cache": f"TTL {cache.ttl:g} s, up to {cache.maxsize} entries"
        + (f" ({cache.eviction} eviction)" if cache.eviction else "")
        + ", coalescing "
        f"{switch(cache.coalesce, 'on')}, stale-while-revalidate "
        f"{switch(cache.stale_while_revalidate > 0, f'{cache.stale_while_revalidate:g} s')}"
        + ("" if gateways.use_cache else " (not used by the gateways)"),
        "worker": f"{worker.concurrency} tasks at once, queue of {worker.queue_size}, "
        f"tasks take {worker.task_duration.describe()}",
        "health checks": switch(
            lb.health_check.interval > 0, f"every {lb.health_check.interval:g} s"
        ),
        "outlier ejection": switch(
            lb.outlier.consecutive_failures > 0,
            f"after {lb.outlier.consecutive_failures} failures in a row",
        ),
        "retries": switch(lb.retry.attempts > 0, f"{lb.retry.attempts}"),
        "rate limits": ", ".join(rate_limits) or "off",
    }
