"""`labsim up`: serve the topology (and its dashboard) on the real clock until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
from urllib.parse import quote

from ..components.cluster import Cluster, ClusterError
from ..core import loop
from ..core.clock import RealClock
from ..model.config import Topology
from ..model.flows import Flow
from ..model.scenario import load_scenarios
from .common import (
    UsageError,
    announce,
    configure_logging,
    refuse_public_guide,
    topology_from_args,
)
from .ports import free_offset

DASHBOARD_PORT = 8080


def run_up(args: argparse.Namespace) -> int:
    topology = topology_from_args(args)
    flows = scenario_flows(args.scenario)
    refuse_public_guide(topology, args.insecure, "--host" if args.host else "host")
    announce([topology])
    only = None if args.only is None else components(topology, args.only)
    first = DASHBOARD_PORT + (args.port_offset or 0)
    # A split lab's page is served by the part where clients come in, unless asked.
    entry = topology.graph().entry_replica()
    elsewhere = only is not None and entry not in only and args.dashboard_port is None
    dashboard_port = (
        None
        if args.no_dashboard or elsewhere
        else _dashboard_port(topology, args.dashboard_port, first)
    )
    configure_logging(args.quiet)
    try:
        return loop.run(_serve(topology, args.scenario, dashboard_port, only, flows))
    except ClusterError as e:
        moved = None if args.dashboard_port is not None else dashboard_port
        hint = "" if only is not None else _another_offset(topology, args.port_offset, moved)
        raise UsageError(f"{e}{hint}") from None


def scenario_flows(path: str | None) -> tuple[Flow, ...]:
    """The scenario's `[[load.flows]]`, which the dashboard's load may run: those of the
    file's own `[load]` (checked as `bench` checks it), as its topology is the file's own."""
    if path is None:
        return ()
    return load_scenarios(path)[0].load.flows


def _another_offset(topology: Topology, offset: int | None, dashboard: int | None) -> str:
    """When a port is taken: the `--port-offset` that would move the lab to free ports."""
    ports = {port: topology.host_of(cid) for cid, port in topology.ports().items() if port}
    if dashboard is not None:
        ports[dashboard] = topology.host
    suggested = free_offset(ports, offset or 0)
    if suggested is None:
        return ""
    moved = sorted(port + suggested - (offset or 0) for port in ports)
    return f"; --port-offset {suggested} moves the lab to free ports ({moved[0]} to {moved[-1]})"


# What `--only` takes besides replica ids, and the ids each stands for: a component's name
# (all its replicas), a kind, or a kind's plural (`gateways`).
def _kinds(topology: Topology) -> dict[str, list[str]]:
    graph = topology.graph()
    named = {name: [r.id for r in graph.replicas(name)] for name in graph.components}
    kinds = {c.kind: graph.of_kind(c.kind) for c in graph.components.values()}
    return {**{f"{k}s": ids for k, ids in kinds.items()}, **kinds, **named}


def components(topology: Topology, text: str) -> frozenset[str]:
    """The ids `--only` names (ids, or kinds such as `gateways`); UsageError otherwise."""
    ports = topology.ports()
    chosen: set[str] = set()
    for name in (part.strip() for part in text.split(",")):
        if name in ports:
            chosen.add(name)
        elif name in _kinds(topology):
            chosen.update(_kinds(topology)[name])
        else:
            known = ", ".join([*ports, "gateways"])
            raise UsageError(f"--only {name!r}: no such component (known: {known})")
    free = sorted(cid for cid, port in ports.items() if port == 0)
    if free:
        raise UsageError(
            f"--only: {free[0]} has port 0 (a free one): a split lab needs every port fixed, "
            "so that each process can reach the others"
        )
    _check_shared(topology, chosen)
    return frozenset(chosen)


def _check_shared(topology: Topology, chosen: set[str]) -> None:
    """A secret made at random in each process would differ between them: the processes
    of a split lab must be given the ones they share."""
    graph = topology.graph()
    # Who signs or checks tokens with the secret: gateways that check them themselves, and
    # login services.
    holders = {
        r.id
        for c in graph.components.values()
        if c.kind == "login" or (c.kind == "gateway" and not c.auth)
        for r in graph.replicas(c.name)
    }
    needs = {"LABSIM_ADMIN_TOKEN": "the fault API's admin token"}
    if holders & chosen and not holders <= chosen and topology.auth.mode != "guide":
        needs["LABSIM_SECRET"] = "the gateways' token secret"
    if topology.exposure == "gateways-only":
        needs["LABSIM_INTERNAL_TOKEN"] = "the gateways' internal credential"
    for variable, what in needs.items():
        if variable not in os.environ:
            raise UsageError(
                f"--only: set {variable} (at least 32 characters, the same in every process "
                f"of the lab): {what} must be shared"
            )


def _dashboard_port(topology: Topology, asked: int | None, first: int = DASHBOARD_PORT) -> int:
    """The port asked for (not a component's), or the first from `first` no component has."""
    taken = {port: component for component, port in topology.ports().items()}
    if asked is not None:
        if asked in taken:
            raise UsageError(
                f"--dashboard-port {asked}: that is {taken[asked]}'s port; choose another"
            )
        return asked
    port = first
    while port in taken:  # a scenario may put a component on 8080
        port += 1
    return port


async def _serve(
    topology: Topology,
    scenario: str | None,
    dashboard_port: int | None,
    only: frozenset[str] | None = None,
    flows: tuple[Flow, ...] = (),
) -> int:
    cluster = Cluster(topology, RealClock(), only=only)
    await cluster.start()
    panel = None
    if dashboard_port is not None:
        from ..views import dashboard

        try:
            panel = await dashboard.serve(cluster, dashboard_port, flows=flows)
        except ClusterError:
            await cluster.stop()
            raise
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    print(_banner(cluster, scenario, panel.url if panel else None), flush=True)
    await stop.wait()
    print("labsim: stopping ...", flush=True)
    if panel is not None:  # first, so that open pages hear labsim is stopping
        await panel.stop()
    await cluster.stop()
    print("labsim: stopped", flush=True)
    return 0


def _banner(cluster: Cluster, scenario: str | None, dashboard: str | None = None) -> str:
    rows = [("component", "id", "url", "service time")]
    for c in cluster.components.values():
        rows.append((c.kind.replace("_", " "), c.id, c.url, c.service_time()))
    for cid, url in cluster.remote().items():
        rows.append(("elsewhere", cid, url, "(another process)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    user, token = cluster.topology.users[0], cluster.topology.admin_token
    # The scenario's own user, as the lab's README prints its `user1` / `password123`.
    login = {"username": user.username, "password": user.password}
    # In the fragment, which a browser keeps to itself: never in a server's log.
    link = [f"Dashboard: {dashboard}/#token={quote(token, safe='')}"] if dashboard else []
    return "\n".join(
        [
            f"labsim is up: {cluster.topology.name} "
            f"(scenario: {scenario or 'built-in lab defaults'}, clock: real)",
            "",
            *lines,
            "",
            f"Send requests to {cluster.url}, e.g.:",
            f"  curl -s -X POST {cluster.url}/login -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(login))}",
            f"Admin token for the fault API (/admin/faults on every port): {token}",
            *link,
            "Press Ctrl-C to stop.",
        ]
    )
