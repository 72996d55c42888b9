"""Builds each component's app, binds its port, starts the components in order, stops them.

Backends start first and the load balancer last, and each component's URL is known to
all before the next one starts, so no request can reach a component before the ones it
calls are listening. With `ephemeral=True` every component binds a free port (for tests
and the bench) but keeps the id its configured port gives it (`gateway-5003`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Any

from aiohttp import web
from yarl import URL

from ..core import descriptors
from ..core.clock import Clock
from ..core.connection_limit import ConnectionLimit
from ..core.connections import OwnSockets
from ..core.http import HttpClient
from ..model.config import NO_TIME, StationConfig, Topology, WorkerConfig, replica_settings
from ..model.graph import Component as GraphComponent
from ..model.kinds import KINDS
from . import exposure
from .capacity import CapacityFigures
from .context import Context, Station
from .middleware import STATION
from .serving import ClusterError, serve_app, url_host

__all__ = ["CapacityFigures", "Cluster", "ClusterError", "Component", "serve_app"]

log = logging.getLogger("labsim")


@dataclass
class Component:
    id: str
    kind: str
    url: str
    context: Context[Any]
    station: Station[Any, Any]  # what only its kind has: its figures and details
    runner: web.AppRunner

    def service_time(self) -> str:
        return service_time(self.context.settings)


def service_time(settings: Any) -> str:
    """A component's service time in words, from its settings: its latency; a worker's
    tasks, or its slots, too."""
    text: str = settings.latency.describe()
    if isinstance(settings, WorkerConfig):
        text += f" (tasks: {settings.task_duration.describe()})"
    elif isinstance(settings, StationConfig):
        if settings.service != NO_TIME:
            text += f" + service {settings.service.describe()}"
        slots = settings.concurrency
        if slots:
            text += f" ({slots} slot{'s' * (slots != 1)}, queue {settings.queue_size})"
    return text


@dataclass(frozen=True)
class Planned:
    """One replica to start: its id, the component it serves, its kind and settings."""

    id: str
    component: GraphComponent
    settings: Any

    @property
    def kind(self) -> str:
        return self.component.kind

    def factory(self) -> ModuleType:
        return import_module(f"{__package__}.{KINDS[self.kind].module}")


def plan(topology: Topology) -> list[Planned]:
    """Each replica of the topology's graph, in start order (callees first)."""
    graph = topology.graph()
    return [
        Planned(
            replica.id, graph.components[name], replica_settings(graph.components[name], replica.id)
        )
        for name in graph.start_order()
        for replica in graph.replicas(name)
    ]


class Cluster:
    """The whole topology, started and stopped as one."""

    def __init__(
        self,
        topology: Topology,
        clock: Clock,
        *,
        ephemeral: bool = False,
        pipes: bool = False,
        only: AbstractSet[str] | None = None,
    ) -> None:
        self.topology = topology
        self.clock = clock
        self.ephemeral = ephemeral
        # With `only`, this process serves just those components; the others are reached
        # at the address and port the scenario gives them (`up --only`).
        self.only = only
        self.urls: dict[str, str] = {}
        # With `pipes`, the components' own calls to each other travel over in-memory pipes
        # (`pipe.py`); their ports are still open to anyone else.
        self.servers: dict[tuple[str, int], Callable[[], asyncio.Protocol]] | None = (
            {} if pipes else None
        )
        self.components: dict[str, Component] = {}
        # labsim's own TCP connections to its servers (its hops; the bench's, when given
        # it): those servers never count or close them (`connection_limit.py`).
        self.own = OwnSockets()

    def remote(self) -> dict[str, str]:
        """Component id -> URL of each component another process serves."""
        return {cid: url for cid, url in self.urls.items() if cid not in self.components}

    def settings(self) -> dict[str, tuple[str, Any]]:
        """Component id -> (kind, settings) of every component of the topology, in start
        order, served here or not."""
        return {p.id: (p.kind, p.settings) for p in plan(self.topology)}

    @property
    def url(self) -> str:
        """The load balancer's URL: where clients send their requests."""
        return self.urls[self.topology.graph().entry_replica()]

    async def start(self) -> None:
        ports = self.topology.ports()
        for component_id, port in ports.items():
            if self.only is not None and component_id not in self.only:
                host = url_host(self.topology.host_of(component_id))
                self.urls[component_id] = f"http://{host}:{port}"
        graph = self.topology.graph()
        planned = [p for p in plan(self.topology) if self.only is None or p.id in self.only]
        connections = ConnectionLimit(self._outside_share(len(planned)), self.own)
        for replica in planned:
            component_id, module, settings = replica.id, replica.factory(), replica.settings
            port = 0 if self.ephemeral else ports[component_id]
            kind = replica.kind
            host = exposure.bind_host(self.topology, kind, component_id)
            client = HttpClient(
                self.clock,
                auto_decompress=kind != "load_balancer",
                keepalive=self.topology.limits.head_timeout / 2,
                servers=self.servers,
                headers=exposure.credential(self.topology, kind, component_id),
                own=self.own,
            )
            ctx = Context(
                id=component_id,
                kind=kind,
                settings=settings,
                clock=self.clock,
                topology=self.topology,
                graph=graph,
                component=replica.component,
                urls=self.urls,
                client=client,
                log=log,
            )
            app = module.make_app(ctx)
            try:
                runner, url = await serve_app(
                    app, component_id, host, port, self.topology.limits, connections
                )
            except ClusterError:
                await client.close()
                await self.stop()
                raise
            self.urls[component_id] = url
            address = URL(url)
            served = (address.host or host, address.port or port)
            self.own.served.add(served)
            if self.servers is not None and runner.server is not None:
                self.servers[served] = runner.server
            self.components[component_id] = Component(
                component_id, ctx.kind, url, ctx, app[STATION], runner
            )

    def _outside_share(self, servers: int) -> int | None:
        """What the process's file descriptors leave for connections from outside to its
        `servers` together; said when that is less than one's `max_connections`."""
        configured = self.topology.limits.max_connections
        # Room for each one's max_connections from outside and as many of its own hops,
        # if the hard limit allows: the soft one is often far below it (1,024).
        descriptors.make_room(descriptors.FILES + servers * (1 + 2 * configured))
        share = descriptors.outside_share(servers)
        # Said when not even one component could take its own max_connections: with
        # many components, sharing the descriptors is the normal case, not news.
        if share is not None and share < configured:
            log.warning(
                "labsim: this process may open %s files (ulimit -n), so its %d components "
                "hold at most %s connections from outside together, not max_connections "
                "%s each; the other descriptors are kept for its own hops",
                f"{descriptors.soft_limit():,}",
                servers,
                f"{share:,}",
                f"{configured:,}",
            )
        return share

    async def stop(self) -> None:
        """Stop every started component: the load balancer first, then all the others.

        The others stop together, so however many components there are, shutdown waits
        for requests in flight in two rounds, each at most a grace period (about a second
        in all when a request hangs, measured).
        """
        components = list(self.components.values())
        self.components.clear()
        entry = [c for c in components if c.kind == "load_balancer"]
        rest = [c for c in components if c.kind != "load_balancer"]
        for tier in (entry, rest):
            await asyncio.gather(*(self._stop_one(c) for c in tier))

    @staticmethod
    async def _stop_one(component: Component) -> None:
        await component.runner.cleanup()
        await component.context.client.close()

    def summed(self, kind: str) -> dict[str, int]:
        """The figures of every component of `kind` in this process, added up."""
        total: dict[str, int] = {}
        for cid in self.topology.graph().of_kind(kind):
            if cid in self.components:
                for name, value in self.counters(cid).items():
                    total[name] = total.get(name, 0) + value
        return total

    def counters(self, component_id: str) -> dict[str, int]:
        """The component's own figures by name (`db_calls`, `queued`, ...), zeros included."""
        return self.components[component_id].station.figures.counts()

    def capacity(self, component_id: str) -> CapacityFigures | None:
        """The component's slots, utilization, queue and waits now; None without slots.

        None for a component with no `concurrency` (the default) and for the worker,
        whose tasks are its `counters`. KeyError for an id that is not in the cluster.
        """
        capacity = self.components[component_id].context.capacity
        return None if capacity is None else capacity.figures()
