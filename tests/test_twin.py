"""The twin of the lab's Flask deployment (scenarios/seed.toml) and the station setting it
needs, `holds = "service"`.

The twin's figures are checked against exact mean value analysis of the same closed
network (two single-processor stations, N clients, no think time), computed here from the
service times the file gives: with processor sharing the network's throughput depends on
the mean service only (BCMP), so the exponential-service recursion applies. Its agreement
with the real deployment is measured by benchmarks/twin.py (figures in
benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from labsim.model.config import ConfigError
from labsim.model.latency import LatencyModel
from labsim.model.scenario import load_scenarios
from labsim.run import BenchOptions, run_bench

from .conftest import make_topology


def _mva_throughput(demands: list[float], clients: int) -> float:
    """Exact mean value analysis of a closed network of single-server stations, FIFO with
    exponential service or processor sharing with any (Reiser and Lavenberg): requests a
    second with `clients` inside."""
    queue = [0.0] * len(demands)
    throughput = 0.0
    for n in range(1, clients + 1):
        times = [d * (1 + q) for d, q in zip(demands, queue, strict=True)]
        throughput = n / sum(times)
        queue = [throughput * t for t in times]
    return throughput


@pytest.mark.parametrize("clients", [1, 10])
def test_the_twin_is_the_closed_network_it_says_it_is(clients):
    [seed] = load_scenarios("scenarios/seed.toml")
    stations = [seed.topology.load_balancer, seed.topology.cache]
    demands = [s.service.mean() for s in stations]
    assert all(s.concurrency == 1 and s.holds == "service" for s in stations)
    assert all(s.discipline == "processor_sharing" for s in stations)
    topology = dataclasses.replace(
        seed.topology,
        database=dataclasses.replace(seed.topology.database, latency=LatencyModel.fixed(0)),
    )
    options = BenchOptions.of(seed.load, requests=6000, concurrency=clients, mix={"data": 1})
    result = asyncio.run(run_bench(topology, options))
    assert result.requests.failed == 0
    assert result.throughput_rps == pytest.approx(_mva_throughput(demands, clients), rel=0.04)
    # Little's law ties the mean response to the same figure.
    mean_s = result.endpoints["data"].mean_ms / 1000
    assert mean_s == pytest.approx(clients / result.throughput_rps, rel=0.04)


def test_the_twin_predicts_the_lab_run_of_the_deployment():
    [seed] = load_scenarios("scenarios/seed.toml")
    result = asyncio.run(run_bench(seed.topology, BenchOptions.of(seed.load)))
    assert (result.cache.hits, result.cache.misses) == (40, 10)
    # The deployment's own run of the lab's script: 2.36 s (benchmarks/README.md).
    assert result.time.simulated_s == pytest.approx(2.36, rel=0.10)


def _serialized(holds: str) -> float:
    """Five requests at once through one gateway slot of 10 ms, each then waiting 100 ms
    on the microservice: simulated seconds until all are answered."""
    topology = make_topology(
        {
            "gateways": {
                "ports": [0],
                "concurrency": 1,
                "service": 0.01,
                "holds": holds,
            },
            "microservice": {"latency": 0.1},
        }
    )
    options = BenchOptions(requests=5, concurrency=5, mix={"process": 1})
    result = asyncio.run(run_bench(topology, options))
    assert result.requests.failed == 0
    return result.time.simulated_s


def test_holding_for_the_service_only_lets_waits_overlap():
    # A thread per request holds its slot through the microservice's 100 ms: 5 x 110 ms.
    assert _serialized("request") == pytest.approx(0.55, abs=0.01)
    # An interpreter lock is let go while waiting: 5 x 10 ms of service, then 100 ms.
    assert _serialized("service") == pytest.approx(0.15, abs=0.01)


def test_holds_takes_only_its_two_words():
    with pytest.raises(ConfigError, match=r'gateways\.holds: must be "request" or "service"'):
        make_topology({"gateways": {"holds": "lock"}})
