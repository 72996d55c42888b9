"""A topology of 200 components (issue 22): four tiers of 50 replicas read, check and run
under `bench` on the virtual clock. What it costs is measured by
benchmarks/topology_scale.py (figures in benchmarks/README.md); nothing here is timed."""

from __future__ import annotations

import logging
from pathlib import Path

import labsim

CELLS = 50
FIRST_PORT = 20000  # never bound: the bench serves on free ports


def four_tiers(cells: int = CELLS, first_port: int = FIRST_PORT) -> str:
    """edge (load balancer) -> api x cells (gateways) -> svc-lb (load balancer) -> svc-NN,
    each reading through its own cache-NN in front of its own db-NN: the layout of
    benchmarks/topology_scale.py. 4 * cells + 2 components, one port each."""
    names = [f"{i:02d}" for i in range(cells)]
    port = iter(range(first_port, first_port + 4 * cells + 2))
    edge = next(port)
    gateways = ", ".join(str(next(port)) for _ in names)
    services = ", ".join(f'"svc-{n}"' for n in names)
    text = f"""
name = "four-tiers"
seed = 1

[components.edge]
kind = "load_balancer"
port = {edge}
backends = "api"

[components.api]
kind = "gateway"
ports = [{gateways}]
endpoints."GET /data" = [{{ call = "svc-lb" }}]

[components.svc-lb]
kind = "load_balancer"
port = {next(port)}
backends = [{services}]
"""
    for n in names:
        source = f'{{ call = "db-{n}", path = "/db" }}'
        text += f"""
[components.svc-{n}]
kind = "service"
port = {next(port)}
endpoints."GET /data" = [{{ read_through = "cache-{n}", key = "k", source = {source} }}]
"""
    for n in names:
        text += f'\n[components.cache-{n}]\nkind = "cache"\nport = {next(port)}\n'
    for n in names:
        text += f'\n[components.db-{n}]\nkind = "database"\nport = {next(port)}\nlatency = 0.05\n'
    return text


def load(tmp_path: Path) -> labsim.Scenario:
    path = tmp_path / "four-tiers.toml"
    path.write_text(four_tiers())
    return labsim.load_scenario(path)


def test_the_200_component_graph_is_valid_and_every_replica_has_its_own_port(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="labsim"):
        scenario = load(tmp_path)
    assert "nobody calls it" not in caplog.text  # every component is on the path
    topology = scenario.topology
    ports = topology.ports()
    assert len(ports) == 4 * CELLS + 2
    assert len(set(ports.values())) == len(ports)
    assert set(ports.values()) == set(range(FIRST_PORT, FIRST_PORT + 4 * CELLS + 2))
    graph = topology.graph()
    assert graph.entry_replica() == "edge"
    tiers = {kind: graph.of_kind(kind) for kind in ("gateway", "service", "cache", "database")}
    assert {kind: len(ids) for kind, ids in tiers.items()} == dict.fromkeys(tiers, CELLS)
    assert graph.of_kind("load_balancer") == ["edge", "svc-lb"]
    assert tiers["gateway"][0] == f"api-{FIRST_PORT + 1}" and tiers["service"][0] == "svc-00"
    # Callees start first: databases and caches before services, the edge last.
    order = list(ports)
    assert order.index("db-07") < order.index("svc-07")
    assert order.index("cache-07") < order.index("svc-07")
    assert order[-1] == "edge"


def test_a_hit_travels_four_tiers_and_each_cell_misses_once(tmp_path):
    # 150 requests, 10 at a time: the second load balancer sends request k to cell k mod 50,
    # so the first 50 miss (one each cell: a read, the database, a write) and the next 100
    # hit: edge -> gateway -> svc-lb -> service -> its cache.
    result = labsim.bench(load(tmp_path), requests=150, concurrency=10, mix={"data": 1})
    assert result.requests.failed == 0 and result.requests.ok == 150
    data = result.endpoints["data"]
    assert data.hits is not None and data.misses is not None
    assert (data.hits.count, data.misses.count) == (100, 50)
    assert (result.cache.hits, result.cache.misses, result.db_calls) == (100, 50, 50)
    served = {cid: sum(c.statuses.values()) for cid, c in result.components.items()}
    assert served["edge"] == 151  # and the login
    assert served["svc-lb"] == 150
    assert sum(served[f"api-{FIRST_PORT + 1 + i}"] for i in range(CELLS)) == 151
    for n in (f"{i:02d}" for i in range(CELLS)):
        assert served[f"svc-{n}"] == 3
        assert served[f"cache-{n}"] == 4  # the miss's read and write, two hits
        assert served[f"db-{n}"] == 1
    # A hit is 5 ms: 1 ms at each of the five components on its way (their default latency).
    assert data.hits.max_ms == 5.0
