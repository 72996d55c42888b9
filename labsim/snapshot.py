"""What the dashboard shows at each tick: every component's figures, read in-process.

A `Sampler` reads each component's context (request counters, time spent, requests
dropped and in flight, counters, faults, details) and turns the change since its previous
reading into rates. It only reads; nothing here changes a component or talks to one over
HTTP.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .components.context import Context
from .components.middleware import UNTIMED_PREFIXES
from .faults import Faults


@dataclass(frozen=True)
class Reading:
    """A component's work so far: requests by status class, and seconds spent on them.

    Work is every request but the reporting ones (`/health`, `/metrics`, `/admin/...`):
    the load balancer's health checks would otherwise keep an idle gateway busy.
    """

    requests: int = 0  # answered
    client_errors: int = 0  # 4xx
    errors: int = 0  # 5xx
    seconds: float = 0.0
    dropped: int = 0  # no answer: dropped by the down fault, or the caller had gone


def read(ctx: Context) -> Reading:
    by_class: Counter[int] = Counter()
    for (route, status), n in ctx.requests.items():
        if not route.startswith(UNTIMED_PREFIXES):
            by_class[status // 100] += n
    seconds = sum(s for route, s in ctx.seconds.items() if not route.startswith(UNTIMED_PREFIXES))
    dropped = sum(
        n for (route, _), n in ctx.dropped.items() if not route.startswith(UNTIMED_PREFIXES)
    )
    return Reading(sum(by_class.values()), by_class[4], by_class[5], seconds, dropped)


def state(faults: Faults, in_rotation: bool = True) -> str:
    """A component's state by its own faults: "down" (down or hung), "degraded" (slower,
    or failing some requests) or "up"; "out" for a gateway the load balancer skips."""
    if faults.down or faults.hang:
        return "down"
    if not in_rotation:
        return "out"  # answering, but the load balancer sends it nothing
    return "degraded" if faults.active() else "up"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class Sampler:
    """Snapshots of one cluster; rates are over the time since the previous snapshot."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._last: dict[str, Reading] = {}
        self._last_time: float | None = None

    def snapshot(self) -> dict[str, Any]:
        now = self.cluster.clock.now()
        interval = None if self._last_time is None else now - self._last_time
        components = self.cluster.components
        balancer = components.get("load-balancer")
        routing = balancer.context.details().get("gateways", {}) if balancer else {}
        out: dict[str, Any] = {}
        for cid, component in components.items():
            ctx = component.context
            reading = read(ctx)
            figures = _rates(reading, self._last.get(cid), interval)
            figures["kind"] = component.kind
            figures["in_flight"] = ctx.in_flight
            figures["faults"] = ctx.faults.as_dict()
            figures["state"] = state(ctx.faults)
            figures |= _extra(ctx, balancer.context if balancer else None, routing.get(cid))
            self._last[cid] = reading
            out[cid] = figures
        self._last_time = now
        return {
            "interval_s": None if interval is None else round(interval, 3),
            "components": out,
        }


def _rates(now: Reading, before: Reading | None, interval: float | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "requests": now.requests,
        "rate": None,
        "errors": None,
        "client_errors": None,
        "latency_ms": None,
        "dropped": now.dropped,
        "dropped_rate": None,
    }
    if before is None or not interval:
        return figures
    done = now.requests - before.requests
    figures["rate"] = round(done / interval, 2)
    figures["dropped_rate"] = round((now.dropped - before.dropped) / interval, 2)
    figures["errors"] = _share(now.errors - before.errors, done)
    figures["client_errors"] = _share(now.client_errors - before.client_errors, done)
    if done:
        figures["latency_ms"] = round((now.seconds - before.seconds) / done * 1000, 3)
    return figures


def _extra(
    ctx: Context, balancer: Context | None, routing: dict[str, Any] | None
) -> dict[str, Any]:
    """The figures only this kind of component has."""
    c = ctx.counters
    if ctx.kind == "load_balancer":
        return {
            name: c[name]
            for name in ("retries", "ejections", "health_ejections", "readmissions", "rate_limited")
        }
    if ctx.kind == "gateway":
        available = routing["available"] if routing else True
        return {
            "state": state(ctx.faults, available),
            "in_rotation": available,
            "healthy": routing["healthy"] if routing else True,
            "ejected_for": routing["ejected_for"] if routing else 0.0,
            "routed": balancer.counters[f"to:{ctx.id}"] if balancer else 0,
            "hits": c["hits"],
            "misses": c["misses"],
            "rate_limited": c["rate_limited"],
        }
    if ctx.kind == "cache":
        # Lookups answered with a value: fresh, stale, or filled by another caller meanwhile
        # (a coalesced lookup was first counted as a miss).
        lookups = c["hits"] + c["stale"] + c["misses"]
        answered = c["hits"] + c["stale"] + c["coalesced"]
        return {
            "hits": c["hits"],
            "misses": c["misses"],
            "stale": c["stale"],
            "coalesced": c["coalesced"],
            "hit_ratio": _share(answered, lookups),
            "size": ctx.details().get("size", 0),
            "maxsize": ctx.settings.maxsize,
        }
    if ctx.kind == "database":
        return {"db_calls": c["db_calls"]}
    if ctx.kind == "worker":
        return {
            name: c[name] for name in ("submitted", "queued", "running", "completed", "rejected")
        } | {"concurrency": ctx.settings.concurrency, "queue_size": ctx.settings.queue_size}
    return {}
