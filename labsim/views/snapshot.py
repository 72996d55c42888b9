"""What the dashboard shows at each tick: every component's figures, read in-process.

A `Sampler` reads each component's context (request counters, time spent, requests
dropped and in flight, faults) and its station (its own kind's figures), and turns the
change since its previous reading into rates. It only reads; nothing here changes a
component, and only the components of other processes are read over HTTP (`remote.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..components.balancing import Backend
from ..components.capacity import CapacityFigures
from ..components.cluster import Cluster
from ..components.context import DURATION_BUCKETS, Context, Station
from ..components.load_balancer import LoadBalancer
from ..model.faults import Faults
from ..model.rate_limit import reporting
from . import remote as remote_figures


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
    # Answers at or below each bound of `DURATION_BUCKETS`, then all: `/metrics`' histogram.
    buckets: tuple[int, ...] = ()


def read(ctx: Context[Any]) -> Reading:
    by_class: Counter[int] = Counter()
    for (route, status), n in ctx.requests.items():
        if not reporting(route):
            by_class[status // 100] += n
    seconds = sum(s for route, s in ctx.seconds.items() if not reporting(route))
    dropped = sum(n for (route, _), n in ctx.dropped.items() if not reporting(route))
    buckets = tuple(ctx.latency.cumulative())
    return Reading(sum(by_class.values()), by_class[4], by_class[5], seconds, dropped, buckets)


def quantile_ms(before: tuple[int, ...], now: tuple[int, ...], q: float) -> float | None:
    """The q-quantile (0 to 1) of the answers between two readings, in ms, estimated from
    the histogram's buckets as Prometheus' `histogram_quantile` does: linearly within the
    bucket it falls in, and the top bound for any answer above it. None without answers."""
    if not before:
        before = (0,) * len(now)
    counts = [n - b for n, b in zip(now, before, strict=True)]
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, at_most in zip(DURATION_BUCKETS, counts, strict=False):
        if at_most >= rank:
            inside = at_most - below
            share = (rank - below) / inside if inside else 1.0
            return round((lower + (bound - lower) * share) * 1000, 3)
        lower, below = bound, at_most
    return DURATION_BUCKETS[-1] * 1000


def state(faults: Faults, in_rotation: bool = True) -> str:
    """A component's state by its own faults: "down" (down or hung), "degraded" (slower,
    or failing some requests) or "up"; "out" for a gateway the load balancer skips."""
    if faults.down or faults.hang:
        return "down"
    if not in_rotation:
        return "out"  # answering, but the load balancer sends it nothing
    return "degraded" if faults.active() else "up"


def _state_of(faults: dict[str, Any], in_rotation: bool) -> str:
    """`state` for a component of another process, from its faults as JSON."""
    if faults.get("down") or faults.get("hang"):
        return "down"
    if not in_rotation:
        return "out"
    active = faults.get("latency") or faults.get("jitter") or faults.get("error_rate")
    return "degraded" if active else "up"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class Sampler:
    """Snapshots of one cluster; rates are over the time since the previous snapshot."""

    def __init__(self, cluster: Cluster, reader: remote_figures.Reader | None = None) -> None:
        self.cluster = cluster
        self._last: dict[str, Reading] = {}
        self._last_time: float | None = None
        self._busy: dict[str, float] = {}  # busy slot-seconds at the previous snapshot
        # Components another process serves (`up --only`), read over HTTP by `refresh`.
        self._reader = reader
        self._remote: dict[str, remote_figures.Seen | remote_figures.Unreadable | None] = {}

    async def refresh(self) -> None:
        """Read the figures of the components other processes serve (none: nothing to do)."""
        remote = self.cluster.remote()
        if not remote or self._reader is None:
            return
        token, settings = self.cluster.topology.admin_token, self.cluster.settings()
        reads = [self._reader.read(settings[cid][0], url, token) for cid, url in remote.items()]
        self._remote = dict(zip(remote, await asyncio.gather(*reads), strict=True))

    def snapshot(self) -> dict[str, Any]:
        now = self.cluster.clock.now()
        interval = None if self._last_time is None else now - self._last_time
        components = self.cluster.components
        balancer = components.get(self.cluster.topology.graph().entry_replica())
        lb = balancer.station if balancer and isinstance(balancer.station, LoadBalancer) else None
        out: dict[str, Any] = {}
        for cid, component in components.items():
            ctx = component.context
            reading = read(ctx)
            figures = _rates(reading, self._last.get(cid), interval)
            figures["kind"] = component.kind
            figures["in_flight"] = ctx.in_flight
            figures["faults"] = ctx.faults.as_dict()
            route = lb.backend(cid) if lb else None
            available = route.available(now) if route else True
            figures["state"] = state(ctx.faults, available)
            figures |= own_figures(component.station)
            figures |= _derived(component.kind, component.context.settings, figures, route, now)
            if ctx.capacity is not None:
                figures["capacity"] = self._capacity(cid, ctx.capacity.figures(), interval)
            self._last[cid] = reading
            out[cid] = figures
        for cid, seen in self._remote.items():
            out[cid] = self._elsewhere(cid, seen, interval, lb.backend(cid) if lb else None, now)
        self._last_time = now
        return {
            "interval_s": None if interval is None else round(interval, 3),
            "components": out,
        }

    def _elsewhere(
        self,
        cid: str,
        seen: remote_figures.Seen | remote_figures.Unreadable | None,
        interval: float | None,
        route: Backend | None,
        now: float,
    ) -> dict[str, Any]:
        """A component of another process, as its `/metrics` and `/admin/faults` say;
        "down" if they cannot be read, "unreadable" (and why) if they make no sense."""
        kind, settings = self.cluster.settings()[cid]
        available = route.available(now) if route else True
        if isinstance(seen, remote_figures.Seen):
            traffic = seen.traffic
            reading = Reading(
                traffic["requests"],
                traffic["client_errors"],
                traffic["errors"],
                traffic["seconds"],
                traffic["dropped"],
                traffic["buckets"],
            )
            before = self._last.get(cid)
            if before is not None and reading.requests < before.requests:
                before = None  # its counters started again: that process restarted
            figures = _rates(reading, before, interval)
            self._last[cid] = reading
            figures |= {"kind": kind, "in_flight": traffic["in_flight"], "faults": seen.faults}
            figures["state"] = _state_of(seen.faults, available)
            figures |= seen.figures
        else:  # none of its figures, and its rates start again once it is read
            self._last.pop(cid, None)
            figures = _rates(Reading(), None, None)
            figures |= {"kind": kind, "in_flight": 0, "faults": {}, "state": "down"}
            figures |= remote_figures.kind_figures(kind, {})
            if seen is not None:
                figures |= {"state": "unreadable", "problem": str(seen)}
        return figures | _derived(kind, settings, figures, route, now)

    def _capacity(self, cid: str, now: CapacityFigures, interval: float | None) -> dict[str, Any]:
        """A station's slots and line now; its utilization since the previous snapshot."""
        before = self._busy.get(cid)
        self._busy[cid] = now.busy_slot_seconds
        utilization = None
        if before is not None and interval:
            utilization = round((now.busy_slot_seconds - before) / (now.slots * interval), 4)
        return {
            "slots": now.slots,
            "busy": now.busy_now,
            "utilization": utilization,
            "queue_length": now.queue_length_now,
            "queue_size": now.queue_size,
            "rejected": now.rejected,
        }


def _rates(now: Reading, before: Reading | None, interval: float | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "requests": now.requests,
        "rate": None,
        "errors": None,
        "client_errors": None,
        "latency_ms": None,
        "p50_ms": None,
        "p99_ms": None,
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
    figures["p50_ms"] = quantile_ms(before.buckets, now.buckets, 0.5)
    figures["p99_ms"] = quantile_ms(before.buckets, now.buckets, 0.99)
    return figures


def own_figures(station: Station[Any, Any]) -> dict[str, int]:
    """A station's own kind's figures, by the names its `/metrics` gives them: one
    reading, the same as `remote.kind_figures` makes of another process's component."""
    figures = station.figures.counts()
    for labels, more in station.more_figures():
        if not labels:  # the load balancer's figures per backend are its page's business
            figures |= dataclasses.asdict(more)
    return figures


def _derived(
    kind: str, settings: Any, figures: dict[str, Any], route: Backend | None, now: float
) -> dict[str, Any]:
    """What the page shows beside a component's own figures: how the load balancer
    clients come in at sees it (when it is one of its backends), and by kind, the
    figures made of the others (a cache's hit ratio) and the settings they are read
    against (its size; a worker's slots)."""
    derived: dict[str, Any] = {}
    if route is not None:
        derived |= {
            "in_rotation": route.available(now),
            "healthy": route.healthy,
            "ejected_for": route.ejected_for(now),
            "routed": route.sent,
        }
    if kind == "cache":
        # Lookups answered with a value: fresh, stale, or filled by another caller
        # meanwhile (a coalesced lookup was first counted as a miss).
        lookups = figures["hits"] + figures["stale"] + figures["misses"]
        answered = figures["hits"] + figures["stale"] + figures["coalesced"]
        derived |= {"hit_ratio": _share(answered, lookups), "maxsize": settings.maxsize}
    elif kind == "worker":
        derived |= {"concurrency": settings.concurrency, "queue_size": settings.queue_size}
    return derived
