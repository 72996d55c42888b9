"""A closed load's think time (`load.think`) and what theory predicts for a closed load:
the throughput and mean of its closed network, checked against the machine-repairman
formula and against labsim's own runs on the virtual clock."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from labsim.model.config import ConfigError
from labsim.model.latency import LatencyModel
from labsim.model.load import plan
from labsim.model.prediction import predict
from labsim.model.scenario import Scenario, scenarios_from
from labsim.run import BenchOptions, BenchResult, execute
from labsim.views.report.text import render_text

# No time anywhere but where a test puts it.
QUIET: dict[str, Any] = {
    "load_balancer": {"latency": 0, "timeout": 600},
    "gateways": {"latency": 0},
    "cache": {"latency": 0},
    "database": {"latency": 0, "timeout": 600},
    "worker": {"latency": 0},
    "microservice": {"latency": 0, "timeout": 600},
}


def scenario(**tables: dict[str, Any]) -> Scenario:
    data = copy.deepcopy(QUIET)
    for name, table in tables.items():
        data[name] = data.get(name, {}) | table
    [one] = scenarios_from(data, "test.toml")
    return one


def run(s: Scenario) -> BenchResult:
    return execute(s.topology, BenchOptions.of(s.load), s.faults)


# The think time


def test_each_client_thinks_between_an_answer_and_its_next_request():
    # 2 clients, 10 requests: 5 each, 4 pauses of 0.5 s each; nothing else takes time.
    s = scenario(load={"requests": 10, "concurrency": 2, "think": 0.5, "mix": {"process": 1}})
    result = run(s)
    assert result.requests.ok == 10
    assert result.time.simulated_s == pytest.approx(2.0)  # no pause after the last answer
    assert result.endpoints["process"].max_ms == 0  # thinking is not latency


def test_a_think_time_leaves_every_other_draw_as_it_was():
    database = {"concurrency": 1, "service": {"model": "exponential", "mean": 0.1}}
    load = {"requests": 200, "concurrency": 1, "mix": {"db": 1}}
    think = {"model": "exponential", "mean": 2.0}
    without = run(scenario(database=database, load=load))
    thinking = run(scenario(database=database, load=load | {"think": think}))
    # One client: each request's latency is its service draw, the same with or without.
    assert thinking.endpoints["db"] == without.endpoints["db"]
    paused = thinking.time.simulated_s - without.time.simulated_s
    assert paused == pytest.approx(199 * 2.0, rel=0.15)  # 199 exponential pauses of 2 s


def test_the_report_says_how_long_clients_think():
    load = {"requests": 4, "concurrency": 2, "mix": {"process": 1}}
    thinking = run(scenario(load=load | {"think": 0.5}))
    assert "closed: 2 clients, each waiting for its answer, then thinking 500 ms" in (
        render_text(thinking)
    )
    assert thinking.as_dict()["load"]["think"] == "500 ms"
    plain = run(scenario(load=load))
    assert "think" not in json.dumps(plain.as_dict()["load"])
    assert "thinking" not in render_text(plain)


def test_a_think_time_with_an_open_load_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"test.toml: load.think: a closed load's pause"):
        scenario(load={"rate": 5, "think": 0.5})
    bad = {"model": "exponential", "mean": -1}
    with pytest.raises(ConfigError, match=r"load.think.mean: cannot be negative"):
        scenario(load={"think": bad})


# Theory for a closed load


def _repairman(clients: int, think: float, service: float) -> float:
    """The machine-repairman model's throughput: N clients, think Z, one exponential
    server S (Kleinrock vol. 1, 3.8): P(idle) = 1 / sum_n N!/(N-n)! (S/Z)^n, and the
    throughput (1 - P(idle)) / S."""
    term, total = 1.0, 1.0
    for n in range(1, clients + 1):
        term *= (clients - n + 1) * service / think
        total += term
    return (1 - 1 / total) / service


REPAIRMAN = {
    "database": {"concurrency": 1, "service": {"model": "exponential", "mean": 0.1}},
    "load": {
        "requests": 3000,
        "concurrency": 3,
        "think": {"model": "exponential", "mean": 0.5},
        "mix": {"db": 1},
    },
}


def test_a_closed_load_on_one_server_is_the_machine_repairman():
    prediction = predict(scenario(**REPAIRMAN))
    assert prediction.reason is None
    expected = _repairman(3, 0.5, 0.1)
    assert prediction.throughput_rps == pytest.approx(expected)
    db = prediction.endpoints["db"]
    assert db.mean_ms / 1000 == pytest.approx(3 / expected - 0.5)  # Little's law
    assert db.p50_ms is None and db.p99_ms is None  # not known for a closed network
    assert prediction.stations["database"].utilization == pytest.approx(expected * 0.1)


# Through every kind of centre: a shared processor with uniform service, two gateways
# chosen at random (each one exponential server, letting go before the microservice
# works), a microservice of two exponential servers behind a uniform delay, and a fixed
# think time: a product-form network whatever the distributions of the delays and the
# shared processor's service.
NETWORK: dict[str, Any] = {
    "load_balancer": {
        "strategy": "random",
        "concurrency": 1,
        "discipline": "processor_sharing",
        "service": {"model": "uniform", "low": 0.002, "high": 0.006},
    },
    "gateways": {
        "ports": [5000, 5003],
        "latency": 0.001,
        "concurrency": 1,
        "holds": "service",
        "service": {"model": "exponential", "mean": 0.01},
    },
    "microservice": {
        "latency": {"model": "uniform", "low": 0, "high": 0.01},
        "concurrency": 2,
        "service": {"model": "exponential", "mean": 0.03},
    },
    "load": {"requests": 2000, "concurrency": 6, "think": 0.05, "mix": {"process": 1}},
}


def test_a_closed_network_run_on_the_virtual_clock_matches_theory():
    s = scenario(**NETWORK)
    prediction = predict(s)
    assert prediction.reason is None
    result = run(s)
    # 2,000 requests: over seeds 1 to 4 and twice as many requests the run's throughput
    # spread 0.6 % and its mean 1 % about theory's; 5 % is well outside that noise.
    assert result.throughput_rps == pytest.approx(prediction.throughput_rps, rel=0.05)
    measured = result.endpoints["process"].mean_ms
    assert measured == pytest.approx(prediction.endpoints["process"].mean_ms, rel=0.05)
    assert result.components is not None
    for name, station in prediction.stations.items():
        assert result.components[name].utilization == pytest.approx(station.utilization, abs=0.03)


def test_a_closed_mix_is_solved_endpoint_by_endpoint():
    """The mix goes out in order (all of one endpoint, then the next): each endpoint is a
    closed network of its own, and the run's time the sum of theirs."""
    database = {"concurrency": 1, "service": {"model": "exponential", "mean": 0.02}}
    microservice = {"concurrency": 2, "service": {"model": "exponential", "mean": 0.05}}
    load = {"requests": 1000, "concurrency": 4, "think": 0.1}
    both = predict(
        scenario(
            database=database,
            microservice=microservice,
            load=load | {"mix": {"process": 3, "db": 1}},
        )
    )
    alone = {
        e: predict(
            scenario(database=database, microservice=microservice, load=load | {"mix": {e: 1}})
        )
        for e in ("process", "db")
    }
    seconds = sum(n / alone[e].throughput_rps for e, n in plan(1000, {"process": 3, "db": 1}))
    assert both.throughput_rps == pytest.approx(1000 / seconds)
    for e in ("process", "db"):
        assert both.endpoints[e] == alone[e].endpoints[e]
    # The database's utilization is over the whole run, its 250 requests in it.
    assert both.stations["database"].utilization == pytest.approx(250 * 0.02 / seconds)


@pytest.mark.parametrize(
    ("tables", "reason"),
    [
        (
            {"microservice": {"concurrency": 1, "service": 0.05}},
            "microservice's service is fixed, not exponential",
        ),
        (
            {
                "gateways": {"ports": [5000], "concurrency": 1, "service": 0.01},
                "microservice": {"latency": 0.05},
            },
            "gateway-5000 holds its slot while microservice works",
        ),
        (
            {
                "microservice": {
                    "concurrency": 1,
                    "queue_size": 2,
                    "service": {"model": "exponential", "mean": 0.05},
                }
            },
            "microservice's queue_size (2) can turn clients away: 10 clients, more than its "
            "concurrency + queue_size (3)",
        ),
        (
            {"load": {"concurrency": 65, "requests": 1000, "mix": {"process": 1}}},
            "65 clients, more than the 64 connections",
        ),
        ({"load": {"mix": {"process": 1}}}, "nothing on process's path takes time"),
        ({"load": {"mix": {"data": 1}}}, "data goes through the cache"),
        (
            {"gateways": {"concurrency": 1, "service": {"model": "exponential", "mean": 0.01}}},
            "round robin balancer does not split arrivals at random",
        ),
    ],
)
def test_where_closed_theory_does_not_apply_it_says_why(tables, reason):
    tables = {"load": {"mix": {"process": 1}}} | tables
    prediction = predict(scenario(**tables))
    assert not prediction.endpoints and prediction.throughput_rps is None
    assert reason in prediction.reason


def test_many_clients_straight_to_the_database_are_solved():
    # No hop between components: no connection pool to wait for, whatever the clients.
    load = {"requests": 20000, "concurrency": 500, "think": 1.0, "mix": {"db": 1}}
    database = {"concurrency": 1, "service": {"model": "exponential", "mean": 0.01}}
    prediction = predict(scenario(database=database, load=load))
    assert prediction.throughput_rps == pytest.approx(_repairman(500, 1.0, 0.01))


def test_the_default_think_time_is_none():
    assert scenario().load.think == LatencyModel.fixed(0.0)
