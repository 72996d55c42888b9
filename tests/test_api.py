"""labsim as a library, and the `labsim_topology` fixture any test suite can use."""

from __future__ import annotations

import json
import urllib.request

import pytest

import labsim
from labsim.config import ConfigError

USER = {"username": "user1", "password": "password123"}


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": token})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_bench_runs_the_lab_and_returns_the_typed_result():
    result = labsim.bench()
    assert isinstance(result, labsim.BenchResult)
    assert (result.cache.hits, result.cache.misses, result.db_calls) == (40, 10, 10)
    assert result.endpoints["data"].p99_ms == 2004.0
    smaller = labsim.bench(requests=10, mix={"data": 1})
    assert smaller.requests.total == 10 and list(smaller.endpoints) == ["data"]


def test_a_scenario_variant_runs_and_is_checked_against_its_expectations():
    scenario = labsim.load_scenario("scenarios/stampede.toml", variant="with coalescing")
    result = labsim.bench(scenario)
    checks = labsim.check(scenario, result)
    assert result.db_calls == 1
    assert checks and all(c.passed for c in checks)
    assert labsim.bench("scenarios/stampede.toml").db_calls == 10  # the first variant


def test_an_unknown_variant_names_the_ones_there_are():
    with pytest.raises(ConfigError, match="no variant 'fast' \\(variants: 'without coalescing'"):
        labsim.load_scenario("scenarios/stampede.toml", variant="fast")


def test_serve_starts_the_lab_for_any_client_and_stops_it():
    with labsim.serve("scenarios/zero-latency.toml") as lab:
        token = post_json(f"{lab.url}/login", USER)["token"]
        assert get_json(f"{lab.url}/data", token)["cached"] is False
        assert get_json(f"{lab.url}/data", token)["cached"] is True
        assert lab.cluster.counters("cache")["hits"] == 1
        url = lab.url
    with pytest.raises(OSError):
        post_json(f"{url}/login", USER)


@pytest.mark.labsim(scenario="scenarios/zero-latency.toml")
def test_the_fixture_serves_the_scenario_its_marker_names(labsim_topology):
    token = post_json(f"{labsim_topology.url}/login", USER)["token"]
    answer = get_json(f"{labsim_topology.url}/process", token)
    assert answer["service_id"] == "microservice"
    assert labsim_topology.topology.name == "zero-latency"


def test_the_fixture_serves_the_lab_without_a_marker(labsim_topology):
    assert labsim_topology.topology.database.latency.describe() == "2000 ms"
    assert set(labsim_topology.urls) >= {"load-balancer", "cache", "database", "worker"}
