"""A run's topology in words and numbers that need no run: the settings rows of a report,
and the `/data` latencies the latency models predict. Plain functions, no I/O."""

from __future__ import annotations

from ..model.config import Topology
from ..model.graph import Visit
from ..model.lab import lab_rows


def predicted_latencies(topology: Topology) -> dict[str, float]:
    """Mean `/data` latency in seconds for a hit and a miss, from the latency models of
    the components its route visits."""
    graph = topology.graph()

    def delay(visit: Visit) -> float:
        model = visit.step or graph.components[visit.component].settings.latency
        mean: float = model.mean()
        return mean

    return {
        "hit": sum(delay(v) for v in graph.route("GET", "/data", hit=True)),
        "miss": sum(delay(v) for v in graph.route("GET", "/data", hit=False)),
    }


def describe_topology(topology: Topology) -> dict[str, str]:
    """The settings a reader needs to make sense of a run, one line of text each."""
    if not topology.components:
        return lab_rows(*topology.lab_sections())
    graph = topology.graph()

    def replicas(name: str) -> str:
        n = len(graph.replicas(name))
        return f"{n} replica{'s' * (n != 1)}"

    components = graph.components.values()
    limits = [
        f"{c.name} {c.settings.rate_limit.rate:g}/s (burst {c.settings.rate_limit.burst})"
        for c in components
        if getattr(getattr(c.settings, "rate_limit", None), "rate", 0) > 0
    ]
    limits += [
        f"{c.name} {c.settings.rate_limit.requests} per {c.settings.rate_limit.window:g} s"
        + (f" on {', '.join(c.settings.rate_limit.paths)}" if c.settings.rate_limit.paths else "")
        for c in components
        if getattr(getattr(c.settings, "rate_limit", None), "requests", 0) > 0
    ]
    return {
        "components": ", ".join(f"{c.name} ({c.kind}, {replicas(c.name)})" for c in components),
        "service times": ", ".join(f"{c.name} {c.settings.latency.describe()}" for c in components),
        "rate limits": ", ".join(limits) or "off",
    }
