"""Watching a run: the timeline sampled on its clock, the worker's drain, the final read.

The sampler sleeps in the background (`background=True`), so watching a run never keeps
the simulation going or changes its figures. In-process topologies are read directly,
not over HTTP: a component the run left down still has its figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..components.cluster import CapacityFigures, Cluster
from ..components.middleware import answered, status_name
from ..core.timeline import Timeline
from .session import Session
from .tally import Tally

# How often (simulated seconds) an in-process virtual run checks that the worker is done.
_DRAIN_POLL = 0.5
_DRAIN_LIMIT = 24 * 3600.0


@dataclass
class Observed:
    """What the run read from the topology's components (in-process runs only)."""

    counters: dict[str, dict[str, int]]
    statuses: dict[str, dict[str, int]]  # component -> status -> requests served
    kinds: dict[str, str]
    # Components with slots: their figures when the load began and when it ended.
    capacity: dict[str, tuple[CapacityFigures, CapacityFigures]]
    # The status log (service -> status code -> answers), when the topology asks for it.
    status: dict[str, dict[str, int]] | None = None


class Sampler:
    """The run's figures over time, every `timeline.next_at()` seconds from `start`."""

    def __init__(self, session: Session, tally: Tally, start: float) -> None:
        self.timeline = Timeline()
        self._session, self._tally, self._start = session, tally, start

    async def run(self) -> None:
        clock = self._session.clock
        while True:
            self.take()
            wake = self._start + self.timeline.next_at() - clock.now()
            await clock.sleep(wake, background=True)

    def take(self) -> None:
        tally, cluster = self._tally, self._session.cluster
        values = {
            "ok": tally.ok,
            "failed": tally.failed,
            "hits": tally.hits,
            "misses": tally.misses,
        }
        for component, figures in capacities(cluster).items():
            values[f"queue {component}"] = figures.queue_length_now
        if cluster is not None:
            worker = cluster.summed("worker")
            values |= {
                "worker_queued": worker.get("queued", 0),
                "worker_running": worker.get("running", 0),
            }
        self.timeline.add(self._session.clock.now() - self._start, values)


async def drain_worker(session: Session) -> None:
    """Let an in-process worker finish its tasks: free on the virtual clock."""
    cluster = session.cluster
    assert cluster is not None
    waited = 0.0
    while waited < _DRAIN_LIMIT:
        counters = cluster.summed("worker")
        if counters.get("queued", 0) + counters.get("running", 0) == 0:
            return
        await session.clock.sleep(_DRAIN_POLL)
        waited += _DRAIN_POLL


def capacities(cluster: Cluster | None) -> dict[str, CapacityFigures]:
    """The figures of every component that has slots, read now."""
    if cluster is None:
        return {}
    read = {c: cluster.capacity(c) for c in cluster.urls}
    return {c: figures for c, figures in read.items() if figures is not None}


def observe(
    cluster: Cluster, began: dict[str, CapacityFigures], ended: dict[str, CapacityFigures]
) -> Observed:
    """Every component's counters and the statuses it served, read in this process;
    the stations' figures when the load `began` and `ended`."""
    return Observed(
        counters={c: cluster.counters(c) for c in cluster.urls},
        statuses={c: _statuses(cluster, c) for c in cluster.urls},
        kinds={c: cluster.components[c].kind for c in cluster.urls},
        capacity={c: (began[c], ended[c]) for c in began},
        status=status_log(cluster) if tracks_status(cluster) else None,
    )


def tracks_status(cluster: Cluster) -> bool:
    """Whether the run reports the status log: the scenario says `status_tracker = true`,
    or names a component for it (`status_name`)."""
    named = (getattr(c.context.settings, "status_name", "") for c in cluster.components.values())
    return cluster.topology.status_tracker or any(named)


def status_log(cluster: Cluster) -> dict[str, dict[str, int]]:
    """The course's Lab 5 `status_log.json`, read from every component in this process:
    service -> status code (a string) -> answers, merged over the components that share a
    service name (the gateways, all `APIGATEWAY`). Services from the entry inwards (the
    load balancer first, then the gateways in port order, ...), each one's codes in order;
    one that answered nothing is there, empty."""
    components = list(cluster.components.values())  # in start order: the entry last
    kinds = list(dict.fromkeys(c.kind for c in components))
    inwards = sorted(components, key=lambda c: -kinds.index(c.kind))  # stable in a kind
    log: dict[str, Counter[str]] = {}
    for component in inwards:
        ctx = component.context
        log.setdefault(status_name(ctx), Counter()).update(answered(ctx))
    return {service: dict(sorted(codes.items())) for service, codes in log.items()}


def _statuses(cluster: Cluster, component_id: str) -> dict[str, int]:
    ctx = cluster.components[component_id].context
    served: Counter[str] = Counter()
    for (_, status), n in ctx.requests.items():
        served[str(status)] += n
    # Requests that got no answer (down, or the caller gave up first): not statuses.
    served["dropped"] += sum(ctx.dropped.values())
    return {status: n for status, n in sorted(served.items()) if n}
