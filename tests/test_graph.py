"""The topology as data (issue 22): `[components]` tables read into a graph, checked with
one line naming the key, and the lab's own sections compiled to the same graph."""

from __future__ import annotations

import logging
import tomllib

import pytest

from labsim.model.config import ConfigError, Topology
from labsim.model.graph import Visit
from labsim.model.topology import load_topology, topology_from_dict, with_overrides

THREE_TIERS = """
[components.edge]
kind = "load_balancer"
port = 8100
backends = "api"

[components.api]
kind = "gateway"
ports = [5100, 5101]
endpoints."GET /data" = [{ call = "catalog" }]
endpoints."POST /longtask" = [{ enqueue = "jobs" }]

[components.catalog]
kind = "service"
port = 5110
endpoints."GET /data" = [
  { cpu = 0.002 },
  { read_through = "cache", key = "k", source = { call = "db", path = "/db" } },
]

[components.cache]
kind = "cache"
port = 5120

[components.db]
kind = "database"
port = 5130
latency = 0.2

[components.jobs]
kind = "worker"
port = 5140
"""


def topology(text: str = THREE_TIERS) -> Topology:
    return topology_from_dict(tomllib.loads(text), "t.toml")


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        topology(text)
    return str(e.value)


def test_components_become_replicas_started_callees_first():
    t = topology()
    graph = t.graph()
    assert list(t.ports()) == ["cache", "db", "jobs", "catalog", "api-5100", "api-5101", "edge"]
    assert graph.entry() == "edge" and graph.entry_replica() == "edge"
    assert graph.layers() == [["edge"], ["api"], ["catalog", "jobs"], ["cache", "db"]]
    assert ("api-5100", "catalog") in graph.edges() and ("catalog", "db") in graph.edges()
    assert graph.of_kind("gateway") == ["api-5100", "api-5101"]


def test_a_request_s_route_visits_the_steps_in_order():
    graph = topology().graph()
    hit = graph.route("GET", "/data", hit=True)
    assert [v.component for v in hit] == ["edge", "api", "catalog", "catalog", "cache"]
    assert hit[3] == Visit("catalog", hit[3].step) and hit[3].step is not None
    miss = [v.component for v in graph.route("GET", "/data", hit=False)]
    assert miss == ["edge", "api", "catalog", "catalog", "cache", "db", "cache"]


def test_the_lab_compiles_to_the_same_kind_of_graph():
    lab = load_topology(None)
    graph = lab.graph()
    assert list(graph.components) == [
        "database", "cache", "microservice", "worker", "gateway", "load-balancer"
    ]  # fmt: skip
    assert list(lab.ports()) == [
        "database", "cache", "microservice", "worker",
        "gateway-5000", "gateway-5003", "gateway-5006", "load-balancer",
    ]  # fmt: skip
    miss = [v.component for v in graph.route("GET", "/data", hit=False)]
    assert miss == ["load-balancer", "gateway", "cache", "database", "cache"]


def test_the_port_offset_moves_ports_and_keeps_ids():
    moved = with_overrides(topology(), port_offset=100)
    assert moved.ports()["api-5101"] == 5201 and moved.ports()["edge"] == 8200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("jobs]", "jobs]\nfoo = 1"), "components.jobs.foo: unknown key"),
        (('kind = "worker"', 'kind = "queue"'), "components.jobs.kind: must be one of"),
        (('{ call = "catalog" }', '{ call = "nobody" }'), "no component 'nobody' (known: edge"),
        (
            ('{ call = "catalog" }', '{ call = "catalog", path = "/x" }'),
            'endpoints."GET /data"[0].path: catalog does not serve GET /x',
        ),
        (('{ enqueue = "jobs" }', '{ enqueue = "cache" }'), "'cache' is a cache, not a worker"),
        (("port = 5140", "port = 5130"), "components.jobs.port: port 5130 is already given to db"),
        (('backends = "api"', 'backends = "ghost"'), "components.edge.backends: no component"),
        (("port = 5120", "port = 5120\nbackends = 'db'"), "only a load balancer has backends"),
        (("port = 5120", 'port = 5120\nendpoints."GET /x" = []'), "a cache takes no endpoints"),
        (("port = 5110", "ports = [5110]\nport = 5111"), "give `port` (one replica) or `ports`"),
        (("{ cpu = 0.002 },", "{ cpu = 0.002, io = 1 },"), "a step is a table with one of"),
    ],
)
def test_nonsense_is_refused_naming_the_key(change, message):
    old, new = change
    assert old in THREE_TIERS
    assert message in refused(THREE_TIERS.replace(old, new, 1))


def test_a_circle_of_calls_is_named():
    text = THREE_TIERS.replace(
        '[components.db]\nkind = "database"',
        '[components.db]\nkind = "service"\n'
        'endpoints."GET /db" = [{ call = "catalog", path = "/data" }]',
    )
    assert "calls go round in a circle: catalog -> db -> catalog" in refused(text)


def test_a_component_nobody_calls_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="labsim"):
        topology(THREE_TIERS + '\n[components.spare]\nkind = "database"\nport = 5150\n')
    assert "components.spare: nobody calls it (clients send to edge)" in caplog.text


def test_the_lab_s_sections_and_components_do_not_mix():
    assert "[components], describe every component there" in refused(
        THREE_TIERS + "\n[cache]\nttl = 5\n"
    )


def test_a_gateway_hands_its_token_checks_to_a_login_component():
    text = (
        THREE_TIERS.replace("ports = [5100, 5101]", 'ports = [5100, 5101]\nauth = "login"')
        + '\n[components.login]\nkind = "login"\nport = 5150\n'
    )
    graph = topology(text).graph()
    assert graph.calls("api") == ["login", "catalog", "jobs"]
    assert "'db' is a database, not a login component" in refused(
        THREE_TIERS.replace("ports = [5100, 5101]", 'ports = [5100, 5101]\nauth = "db"')
    )


def test_a_topology_past_the_limits_is_refused_naming_them():
    many = "".join(
        f'\n[components.c{i}]\nkind = "database"\nport = {10000 + i}\n' for i in range(501)
    )
    assert "components: at most 500 components" in refused(many)
    steps = ", ".join(["{ io = 0 }"] * 33)
    long = THREE_TIERS.replace('[{ call = "catalog" }]', f"[{steps}]")
    assert 'endpoints."GET /data": must be a list of at most 32 steps' in refused(long)


def test_the_command_line_says_a_bad_graph_in_one_line(tmp_path, capsys):
    from labsim.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(THREE_TIERS.replace('{ call = "catalog" }', '{ call = "nobody" }'))
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no component 'nobody'" in err and "Traceback" not in err
