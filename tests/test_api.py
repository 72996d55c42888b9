"""labsim as a library, and the `labsim_topology` fixture any test suite can use."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

import labsim
from labsim.model.config import ConfigError

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


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"duration": "2s"}, "duration: must be a float (got '2s')"),
        ({"requests": "10"}, "requests: must be an int (got '10')"),
        ({"mix": {"dat": 1}}, "mix: must give whole weights, 0 or more, to some of data"),
        ({"mix": {"data": "1"}}, "mix.data: must be an int (got '1')"),
        ({"rate": -1.0}, "rate: must be 0 or more (got -1.0)"),
        ({"clock": "wall"}, 'clock: must be "virtual" or "real" (got \'wall\')'),
        ({"requests": -5}, "requests: must be at least 1 (got -5)"),
        ({"concurrency": 0}, "concurrency: must be from 1 to 10,000 (got 0)"),
        ({"reqests": 5}, "reqests: not a setting of the load (known: requests, concurrency"),
        ({"max_in_flight": 5}, "max_in_flight needs rate: it applies to an open load"),
        ({"requests": 5, "rate": 10, "duration": 2}, "requests and duration: an open load"),
    ],
)
def test_bench_refuses_a_wrong_keyword_with_a_value_error_naming_it(keywords, message):
    with pytest.raises(ValueError) as refused:
        labsim.bench(**keywords)
    assert str(refused.value).startswith(message)


OPEN_ONLY = "it applies to an open load (arrivals at a rate) only"


@pytest.mark.parametrize(
    ("keywords", "argv", "api", "cli"),
    [
        (
            {"requests": -5},
            ["--requests", "-5"],
            "requests: must be at least 1 (got -5)",
            "--requests: must be at least 1 (got -5)",
        ),
        (
            {"concurrency": 100_000},
            ["--concurrency", "100000"],
            "concurrency: must be from 1 to 10,000 (got 100000)",
            "--concurrency: must be from 1 to 10,000 (got 100000)",
        ),
        (
            {"rate": -1.0},
            ["--rate", "-1"],
            "rate: must be 0 or more (got -1.0)",
            "--rate: must be 0 or more (got -1.0)",
        ),
        (
            {"max_in_flight": 5},
            ["--max-in-flight", "5"],
            f"max_in_flight needs rate: {OPEN_ONLY}",
            f"--max-in-flight needs --rate: {OPEN_ONLY}",
        ),
        (
            {"arrivals": "constant"},
            ["--arrivals", "constant"],
            f"arrivals needs rate: {OPEN_ONLY}",
            f"--arrivals needs --rate: {OPEN_ONLY}",
        ),
        (
            {"duration": 2.0},
            ["--duration", "2s"],
            f"duration needs rate: {OPEN_ONLY}",
            f"--duration needs --rate: {OPEN_ONLY}",
        ),
        (
            {"requests": 5, "rate": 10.0, "duration": 2.0},
            ["--requests", "5", "--rate", "10", "--duration", "2"],
            "requests and duration: an open load sends arrivals for a time or a number of "
            "them; give one",
            "--requests and --duration: an open load sends arrivals for a time or a number of "
            "them; give one",
        ),
        (
            {"rate": 10.0, "concurrency": 5},
            ["--rate", "10", "--concurrency", "5"],
            "concurrency applies to a closed load only; an open load's limit is max_in_flight",
            "--concurrency applies to a closed load only; an open load's limit is --max-in-flight",
        ),
    ],
)
def test_the_api_and_the_command_line_say_the_same(keywords, argv, api, cli, capsys):
    from labsim.cli import main

    with pytest.raises(ValueError, match="^" + re.escape(api) + "$"):
        labsim.bench(**keywords)
    assert main(["bench", *argv]) == 2
    assert capsys.readouterr().err == f"labsim: error: {cli}\n"


def test_the_api_takes_its_own_python_values():
    from labsim.model.scenario import Stage

    ramp = labsim.bench(mix={"data": 1}, stages=(Stage(2.0, 10.0),))  # a tuple of Stage
    assert ramp.load.model == "open" and ramp.load.stages == [{"duration_s": 2.0, "rate": 10.0}]
    closed = labsim.bench(labsim.load_scenario("scenarios/mm1.toml"), rate=0, requests=5)
    assert closed.load.model == "closed" and closed.requests.total == 5  # rate 0: closed


def test_dir_lists_the_public_names_and_the_package_is_typed():
    names = dir(labsim)
    assert {"bench", "serve", "check", "load_scenario", "BenchResult", "Lab"} <= set(names)
    assert "import_module" not in names
    package = Path(labsim.__file__).parent
    assert (package / "py.typed").is_file()
    # The project file is the checkout's; the package may be an installed copy (as in CI).
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["labsim"]


def _readme_block(containing: str) -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    return next(b for b in blocks if containing in b)


def test_the_readme_pytest_example_runs_as_written(tmp_path):
    # Where a user puts it: its own folder, with the scenario it names beside it, run by
    # pytest from anywhere (here, another folder), with only what labsim installs.
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_client.py").write_text(_readme_block("labsim_topology"))
    shutil.copy("scenarios/zero-latency.toml", suite / "zero-latency.toml")
    root = Path(labsim.__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_api_refuses_the_guide_profile_on_a_public_address(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('host = "0.0.0.0"\n[auth]\nmode = "guide"\n')
    with pytest.raises(ValueError, match=r"load-balancer on 0\.0\.0\.0: the guide profile"):
        labsim.bench(str(path), requests=2)
