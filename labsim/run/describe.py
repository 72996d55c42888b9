"""A run's topology in words and numbers that need no run: the settings rows of a report,
and the `/data` latencies the latency models predict. Plain functions, no I/O."""

from __future__ import annotations

from ..model.config import Topology


def predicted_latencies(topology: Topology) -> dict[str, float]:
    """Mean `/data` latency in seconds for a hit and a miss, from the latency models."""
    entry = topology.load_balancer.latency.mean() + topology.gateways.latency.mean()
    cache = topology.cache.latency.mean()
    hit = entry + cache
    miss = hit + topology.database.latency.mean() + cache
    return {"hit": hit, "miss": miss}


def describe_topology(topology: Topology) -> dict[str, str]:
    """The settings a reader needs to make sense of a run, one line of text each."""
    lb, gateways, cache, worker = (
        topology.load_balancer,
        topology.gateways,
        topology.cache,
        topology.worker,
    )

    def switch(on: bool, text: str) -> str:
        return text if on else "off"

    latency = {
        "load balancer": lb.latency,
        "gateways": gateways.latency,
        "cache": cache.latency,
        "database": topology.database.latency,
        "worker": worker.latency,
        "microservice": topology.microservice.latency,
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
        "database": topology.database.rate_limit,
        "worker": worker.rate_limit,
        "microservice": topology.microservice.rate_limit,
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
        "cache": f"TTL {cache.ttl:g} s, up to {cache.maxsize} entries, coalescing "
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
