"""Capacity against queueing theory, and the shipped capacity scenarios' own claims.

The stations of `scenarios/mm1.toml` and `scenarios/mmc.toml` are run longer than the
files say, on fixed seeds, and compared with what `labsim/theory.py` computes from the
same rates (not with typed-in numbers). At utilization 0.8 one run's mean wanders (the
queue's state lasts long), so that check pools several seeds, as the field notes advise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from labsim.model.scenario import Scenario, load_scenarios
from labsim.model.theory import mm1_response_quantile, mmc_mean_response
from labsim.run import BenchOptions, BenchResult, run_bench


def _run(scenario: Scenario, requests: int, seed: int = 1) -> BenchResult:
    topology = dataclasses.replace(scenario.topology, seed=seed)
    return asyncio.run(run_bench(topology, BenchOptions.of(scenario.load, requests=requests)))


def _station(scenario: Scenario) -> tuple[float, float, int]:
    """(lambda, mu, servers) of the scenario's microservice, from the scenario itself."""
    micro = scenario.topology.microservice
    assert micro.service.model == "exponential"
    return scenario.load.rate, 1 / micro.service.param("mean"), micro.concurrency


def test_m_m_1_at_half_load_matches_theory():
    [half, _] = load_scenarios("scenarios/mm1.toml")
    lam, mu, servers = _station(half)
    assert servers == 1 and lam / mu == pytest.approx(0.5)
    r = _run(half, 20_000)
    process = r.endpoints["process"]
    assert process.mean_ms / 1000 == pytest.approx(mmc_mean_response(lam, mu), rel=0.05)
    assert process.p50_ms / 1000 == pytest.approx(mm1_response_quantile(lam, mu, 0.5), rel=0.1)
    assert process.p99_ms / 1000 == pytest.approx(mm1_response_quantile(lam, mu, 0.99), rel=0.1)
    assert r.components["microservice"].utilization == pytest.approx(lam / mu, rel=0.02)


# At utilization 0.8 the mean of one run of n requests has a spread of about 3 % at
# n = 100,000 (a pure simulation of the same queues, 20 seeds); three seeds pooled bring
# it to under 2 %, so 5 % is a real test, not luck. The runs go two at a time, one per core.
HIGH_LOAD_REQUESTS = 100_000
SEEDS = (1, 2, 3)


def _pooled(path: str, variant: int) -> tuple[float, float]:
    """(mean, p99) of `process` in seconds, averaged over SEEDS, runs in two processes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        runs = list(pool.map(_figures, *zip(*((path, variant, s) for s in SEEDS), strict=True)))
    return sum(m for m, _ in runs) / len(runs), sum(p for _, p in runs) / len(runs)


def _figures(path: str, variant: int, seed: int) -> tuple[float, float]:
    r = _run(load_scenarios(path)[variant], HIGH_LOAD_REQUESTS, seed)
    assert r.requests.failed == 0 and r.dropped == 0
    process = r.endpoints["process"]
    assert process.mean_ms is not None and process.p99_ms is not None
    return process.mean_ms / 1000, process.p99_ms / 1000


def test_m_m_1_at_high_load_matches_theory_over_several_seeds():
    [_, high] = load_scenarios("scenarios/mm1.toml")
    lam, mu, _ = _station(high)
    assert lam / mu == pytest.approx(0.8)
    mean, p99 = _pooled("scenarios/mm1.toml", 1)
    assert mean == pytest.approx(mmc_mean_response(lam, mu), rel=0.05)
    assert p99 == pytest.approx(mm1_response_quantile(lam, mu, 0.99), rel=0.1)


def test_m_m_3_matches_erlang_c():
    [three] = load_scenarios("scenarios/mmc.toml")
    lam, mu, servers = _station(three)
    assert servers == 3 and lam / mu / servers == pytest.approx(0.8)
    mean, _ = _pooled("scenarios/mmc.toml", 0)
    assert mean == pytest.approx(mmc_mean_response(lam, mu, servers), rel=0.05)


def test_scale_out_grows_in_proportion_until_each_gateway_is_busy():
    one, two, three = (_scenario_run(s) for s in load_scenarios("scenarios/scale-out.toml"))
    assert three.throughput_rps >= 2.7 * one.throughput_rps
    assert two.throughput_rps >= 1.8 * one.throughput_rps
    # Each gateway: 1 slot of 10 ms, so at most 100 requests a second, near fully busy.
    assert one.throughput_rps == pytest.approx(100, rel=0.02)
    for gateway in ("gateway-5000", "gateway-5003", "gateway-5006"):
        assert three.components[gateway].utilization > 0.95


def _scenario_run(scenario: Scenario) -> BenchResult:
    return asyncio.run(run_bench(scenario.topology, BenchOptions.of(scenario.load)))


def test_saturation_without_the_cache_and_protection_with_it():
    bare, cached = (_scenario_run(s) for s in load_scenarios("scenarios/saturation.toml"))
    assert bare.components["database"].utilization > 0.95
    assert bare.components["database"].rejected > 0
    assert cached.components["database"].utilization < 0.05
    assert cached.endpoints["data"].p99_ms < bare.endpoints["data"].p99_ms / 100


def test_an_open_run_with_stations_repeats_exactly():
    [half, _] = load_scenarios("scenarios/mm1.toml")
    first, second = (_run(half, 2000).as_dict() for _ in range(2))
    for r in (first, second):
        del r["time"]["wall_s"]
    assert first == second
