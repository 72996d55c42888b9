"""Scenario files and overrides: what loads, and the one-line errors for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsim.model.config import ConfigError, LatencyModel, gateway_settings
from labsim.model.topology import load_topology, topology_from_dict, with_overrides

SCENARIOS = Path(__file__).parents[1] / "scenarios"


def test_lab_scenario_reproduces_the_seed():
    lab = load_topology(SCENARIOS / "lab.toml")
    assert lab.ports() == {
        "database": 5002,
        "cache": 5004,
        "microservice": 5001,
        "worker": 5005,
        "gateway-5000": 5000,
        "gateway-5003": 5003,
        "gateway-5006": 5006,
        "load-balancer": 8000,
    }
    assert lab.database.latency == LatencyModel.fixed(2.0)
    assert lab.worker.task_duration == LatencyModel.fixed(5.0)
    assert lab.cache.ttl == 120
    assert lab.host == "127.0.0.1"
    defaults = load_topology(None)
    assert (lab.gateways, lab.cache, lab.database, lab.worker) == (
        defaults.gateways,
        defaults.cache,
        defaults.database,
        defaults.worker,
    )


def test_zero_latency_scenario_has_no_latency():
    zero = load_topology(SCENARIOS / "zero-latency.toml")
    for section in (
        zero.load_balancer,
        zero.gateways,
        zero.cache,
        zero.database,
        zero.microservice,
    ):
        assert section.latency.mean() == 0


def test_latency_tables():
    t = topology_from_dict(
        {"database": {"latency": {"model": "lognormal", "median": 0.05, "sigma": 0.5}}}, "x"
    )
    assert t.database.latency.model == "lognormal"
    assert t.database.latency.param("median") == 0.05


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gatewayz": {}}, "x.toml: gatewayz: unknown key"),
        ({"cache": {"ttl": -1}}, "x.toml: cache.ttl: must be greater than 0"),
        ({"cache": {"ttl": "long"}}, "x.toml: cache.ttl: must be a float"),
        ({"cache": {"maxsize": 0}}, "x.toml: cache.maxsize: must be at least 1"),
        ({"cache": {"size": 3}}, "x.toml: cache.size: unknown key"),
        ({"gateways": {"ports": []}}, "x.toml: gateways.ports: must list 1 to 100 ports"),
        ({"gateways": {"ports": 5000}}, "x.toml: gateways.ports: must be a list"),
        ({"gateways": {"ports": ["a"]}}, "x.toml: gateways.ports[0]: must be an int"),
        ({"database": {"port": 70000}}, "x.toml: database.port: must be a port number"),
        ({"database": {"latency": -2}}, "x.toml: database.latency: latency cannot be negative"),
        ({"database": {"latency": "2s"}}, "x.toml: database.latency: must be seconds or a table"),
        ({"database": {"latency": {"model": "gamma"}}}, "database.latency.model: unknown latency"),
        (
            {"database": {"latency": {"model": "uniform", "low": 1}}},
            "database.latency.high: required",
        ),
        (
            {"database": {"latency": {"model": "uniform", "low": 2, "high": 1}}},
            "database.latency: low must not exceed high",
        ),
        ({"database": {"latency": {"seconds": 1, "x": 2}}}, "database.latency.x: unknown key"),
        (
            {"cache": {"port": 5000}},
            "x.toml: gateways.ports[0]: port 5000 is already given to cache",
        ),
        (
            {"gateways": {"ports": [5000, 5000]}},
            "gateways.ports: must list 1 to 100 ports, each from 0 to 65535, none twice",
        ),
        ({"users": []}, "x.toml: users: must list 1 to 1000 users"),
        ({"users": [{"password": "p"}]}, "x.toml: users[0].username: required"),
        ({"secret": "from-a-file"}, "x.toml: secret: unknown key"),
        ({"cache": 3}, "x.toml: cache: must be a table"),
        ({"database": {"latency": float("inf")}}, "database.latency: must be a finite number"),
        ({"database": {"latency": 1e300}}, "database.latency: must be a finite number"),
        ({"load_balancer": {"timeout": float("nan")}}, "load_balancer.timeout: must be a finite"),
        ({"cache": {"maxsize": 10**12}}, "cache.maxsize: must be a finite number"),
        ({"host": " "}, "x.toml: host: must name an address"),
        ({"gateways": {"data_key": "a/b"}}, "gateways.data_key: must be letters, digits"),
        ({"gateways": {"token_ttl": 0.5}}, "gateways.token_ttl: must be at least 1 second"),
        ({"seed": -1}, "x.toml: seed: must be 0 or more"),
    ],
)
def test_invalid_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        topology_from_dict(data, "x.toml")
    assert message in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such scenario file"):
        load_topology(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_topology(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("[cache\nttl = 1")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_topology(broken)


def test_overrides():
    t = with_overrides(load_topology(None), gateways=5, db_latency=0.5, host="127.0.0.2", seed=9)
    assert t.gateways.ports == (5000, 5003, 5006, 5009, 5012)
    assert t.gateway_ids()[-1] == "gateway-5012"
    assert t.database.latency == LatencyModel.fixed(0.5)
    assert (t.host, t.seed) == ("127.0.0.2", 9)


def test_secret_is_random_per_run_and_never_printed():
    a, b = load_topology(None), load_topology(None)
    assert a.secret != b.secret and len(a.secret) >= 32
    assert a.secret not in repr(a)


def test_one_gateway_may_have_its_own_station():
    topology = topology_from_dict(
        {
            "gateways": {
                "concurrency": 2,
                "service": 0.01,
                "each": {"gateway-5006": {"concurrency": 1}},
            }
        },
        "x.toml",
    )
    shared, own = (
        gateway_settings(topology, "gateway-5000"),
        gateway_settings(topology, "gateway-5006"),
    )
    assert (shared.concurrency, shared.service.mean()) == (2, 0.01)
    assert (own.concurrency, own.service.mean()) == (1, 0.0)  # replaced, not merged
    assert own.ports == shared.ports and own.latency == shared.latency


def test_a_station_for_an_unknown_gateway_names_it():
    with pytest.raises(
        ConfigError, match=r"gateways.each.gateway-9: no such gateway \(known: gateway-5000"
    ):
        topology_from_dict({"gateways": {"each": {"gateway-9": {"concurrency": 1}}}}, "x.toml")
