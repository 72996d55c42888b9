"""The model engine against the HTTP engine: equal reports, or a refusal of one line.

For every shipped scenario and variant the model engine takes, both engines run a few
hundred requests and their JSON reports must be equal (wall time aside; times within
1 µs). A hypothesis test draws small topologies, stations, service-time models, loads
and seeds and compares the same way. Every refusal is checked one by one: a scenario the
engine cannot reproduce gives one line naming the feature, never a different answer.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labsim
from labsim.core.http import POOL_SIZE
from labsim.model.config import ConfigError
from labsim.model.keys import Keys
from labsim.model.load_changes import changed_load
from labsim.model.scenario import Scenario, load_scenarios, scenarios_from
from labsim.run import BenchError, BenchOptions, execute, model_engine
from labsim.run.model_engine import execute_model
from labsim.run.model_support import PREFIX, Unsupported, unsupported

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
REQUESTS = 300  # a few hundred requests a run: enough for queues, fast both ways
TIME_TOLERANCE_MS = 0.001  # 1 µs, for figures in milliseconds
TIME_TOLERANCE_S = 1e-6


def _variants() -> list[tuple[str, Scenario]]:
    return [(f"{p.stem}:{s.variant or '-'}", s) for p in SCENARIOS for s in load_scenarios(p)]


def _small(scenario: Scenario) -> BenchOptions:
    """The scenario's load, cut to about REQUESTS requests."""
    load = scenario.load
    if load.duration and load.rate:
        changes: dict[str, Any] = {"duration": min(load.duration, REQUESTS / load.rate)}
    elif load.duration or load.stages:
        changes = {}
    else:
        changes = {"requests": min(load.requests, REQUESTS)}
    return BenchOptions.of(changed_load(load, changes))


def _differences(http: Any, model: Any, path: str = "") -> list[str]:
    """Where two JSON reports differ: every figure equal, times to within 1 µs."""
    if isinstance(http, dict) and isinstance(model, dict):
        if list(http) != list(model):
            return [f"{path}: keys {list(http)} != {list(model)}"]
        return [d for k in http for d in _differences(http[k], model[k], f"{path}.{k}")]
    if isinstance(http, list) and isinstance(model, list):
        if len(http) != len(model):
            return [f"{path}: {len(http)} items != {len(model)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(http, model, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    if isinstance(http, float) or isinstance(model, float):
        if type(http) is bool or type(model) is bool or http is None or model is None:
            return [] if http == model else [f"{path}: {http!r} != {model!r}"]
        close = TIME_TOLERANCE_MS if path.endswith(("_ms", "ms]")) else TIME_TOLERANCE_S
        return [] if abs(http - model) <= close else [f"{path}: {http!r} != {model!r}"]
    return [] if http == model else [f"{path}: {http!r} != {model!r}"]


def _both(topology: Any, options: BenchOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    http = execute(topology, options).as_dict()
    model = execute_model(topology, options).as_dict()
    for report in (http, model):
        report["time"]["wall_s"] = None  # the one figure that is not the scenario's
    return http, model


SUPPORTED = [(name, s) for name, s in _variants() if unsupported(s.topology, _small(s)) is None]
_TAKEN = {name for name, _ in SUPPORTED}
REFUSED = [(name, s) for name, s in _variants() if name not in _TAKEN]


def test_the_capacity_scenarios_are_among_those_supported() -> None:
    names = {name for name, _ in SUPPORTED}
    assert {"mm1:rho 0.5", "mm1:rho 0.8", "mmc:-", "scale-out:3 gateways", "lab:-"} <= names
    assert {"least-connections:power of two", "ttl-expiry:TTL 1 s", "read-replica:-"} <= names
    assert "saturation:no cache" in names  # the database's full queue answers 503s


@pytest.mark.parametrize(("name", "scenario"), SUPPORTED, ids=[n for n, _ in SUPPORTED])
def test_shipped_scenario_same_report_both_engines(name: str, scenario: Scenario) -> None:
    http, model = _both(scenario.topology, _small(scenario))
    assert http["requests"]["total"] > 0
    assert _differences(http, model) == []


def test_the_full_mm1_scenario_is_equal_to_the_microsecond() -> None:
    # 5,000 requests at utilization 0.8: queues of dozens, every figure still equal.
    (scenario,) = [s for s in load_scenarios(ROOT / "scenarios/mm1.toml") if s.variant == "rho 0.8"]
    http, model = _both(scenario.topology, BenchOptions.of(scenario.load))
    assert http["requests"]["total"] == 5000
    assert _differences(http, model) == []


@pytest.mark.parametrize(
    ("keys", "rate"),
    [
        (Keys(count=1000), None),
        (Keys(count=300, popularity="zipf", s=0.9), None),
        (Keys(count=50, popularity="hot", hot_keys=10, hot_requests=90), 40.0),
    ],
)
def test_keys_with_popularity_same_report_both_engines(keys: Keys, rate: float | None) -> None:
    # Each read's key drawn in the same order, the cache's entries kept by key.
    scenario = _lab(database={"latency": 0.05})
    load = {"keys": keys, "requests": 600, "mix": {"data": 3, "longtask": 1}}
    options = BenchOptions.of(scenario.load, **load, **({"rate": rate} if rate else {}))
    http, model = _both(scenario.topology, options)
    assert http["cache"]["misses"] > 30  # many keys read, not one
    assert _differences(http, model) == []


@pytest.mark.parametrize("eviction", ["", "lru", "lfu", "fifo", "random", "ttl"])
def test_a_full_cache_evicts_alike_in_both_engines(eviction: str) -> None:
    # 300 Zipf keys through 40 entries: hundreds of evictions, each policy's own victims.
    scenario = _lab(database={"latency": 0.05}, cache={"maxsize": 40, "eviction": eviction})
    keys = Keys(count=300, popularity="zipf", s=0.8)
    options = BenchOptions.of(scenario.load, keys=keys, requests=800, mix={"data": 1})
    http, model = _both(scenario.topology, options)
    assert http["cache"]["evictions"] > 100
    assert _differences(http, model) == []


def test_cache_size_ships_equal_in_both_engines() -> None:
    for scenario in load_scenarios(ROOT / "scenarios/cache-size.toml"):
        assert unsupported(scenario.topology, _small(scenario)) is None
        http, model = _both(scenario.topology, _small(scenario))
        assert _differences(http, model) == []


@pytest.mark.parametrize(("name", "scenario"), REFUSED, ids=[n for n, _ in REFUSED])
def test_shipped_scenario_beyond_the_engine_is_refused_in_one_line(
    name: str, scenario: Scenario
) -> None:
    with pytest.raises(Unsupported) as refused:
        execute_model(scenario.topology, _small(scenario), scenario.faults)
    message = str(refused.value)
    assert message.startswith(PREFIX) and "\n" not in message and len(message) < 200


def test_differences_are_found() -> None:
    # The comparison itself can fail: a latency 2 µs off, a count off by one.
    assert _differences({"a_ms": 1.0}, {"a_ms": 1.002}) != []
    assert _differences({"a_ms": 1.0}, {"a_ms": 1.0005}) == []
    assert _differences({"n": [1, 2]}, {"n": [1, 3]}) == [".n[1]: 2 != 3"]
    assert _differences({"a": 1}, {"b": 1}) != []


# -- random small configurations -----------------------------------------------------------


def _latency(draw: st.DrawFn, low: float = 0.0) -> Any:
    model = draw(st.sampled_from(["zero", "fixed", "uniform", "exponential", "lognormal"]))
    mean = draw(st.sampled_from([0.001, 0.005, 0.02, 0.05]))
    match model:
        case "zero":
            return low
        case "fixed":
            return mean
        case "uniform":
            return {"model": "uniform", "low": mean / 2, "high": mean * 1.5}
        case "exponential":
            return {"model": "exponential", "mean": mean}
    return {"model": "lognormal", "median": mean, "sigma": 0.5}


def _station(draw: st.DrawFn) -> dict[str, Any]:
    slots = draw(st.integers(0, 3))
    if not slots:
        return {"latency": _latency(draw)}
    return {
        "latency": _latency(draw),
        "concurrency": slots,
        "queue_size": draw(st.sampled_from([0, 2, 1_000_000])),  # a full one answers 503
        "service": _latency(draw),
        "holds": draw(st.sampled_from(["request", "service"])),
    }


def _load(draw: st.DrawFn, mix: dict[str, int] | None = None) -> dict[str, Any]:
    requests = draw(st.integers(5, 80))
    mix = mix or {"process": 1}
    if draw(st.booleans()):
        return {
            "rate": draw(st.sampled_from([5.0, 20.0, 60.0, 150.0])),
            "arrivals": draw(st.sampled_from(["poisson", "constant"])),
            "requests": requests,
            "mix": mix,
        }
    load: dict[str, Any] = {
        "concurrency": draw(st.integers(1, 12)),
        "requests": requests,
        "mix": mix,
    }
    if draw(st.booleans()):
        load["think"] = {"model": "exponential", "mean": 0.01}
    return load


@st.composite
def lab_shapes(draw: st.DrawFn) -> dict[str, Any]:
    """The lab's sections: a load balancer, 1 to 3 gateways, the microservice."""
    balancer = _station(draw) | {
        "strategy": draw(
            st.sampled_from(
                ["round_robin", "random", "least_connections", "power_of_two", "weighted"]
            )
        )
    }
    count = draw(st.integers(1, 3))
    if balancer["strategy"] == "weighted":
        balancer["weights"] = draw(st.lists(st.integers(1, 4), min_size=count, max_size=count))
    weights = draw(st.lists(st.integers(0, 3), min_size=4, max_size=4).filter(any))
    mix = {e: w for e, w in zip(("data", "longtask", "process", "db"), weights, strict=True) if w}
    return {
        "name": "random-lab",
        "seed": draw(st.integers(0, 10_000)),
        "load_balancer": balancer,
        "gateways": _station(draw)
        | {"ports": [5000 + 3 * i for i in range(count)], "use_cache": draw(st.booleans())},
        "microservice": _station(draw),
        "cache": _station(draw) | {"ttl": draw(st.sampled_from([0.01, 0.2, 120.0]))},
        "database": _station(draw),
        "worker": {
            "latency": _latency(draw),
            "task_duration": _latency(draw),
            "concurrency": draw(st.integers(1, 3)),
            "queue_size": draw(st.sampled_from([1, 3, 1000])),
        },
        "load": _load(draw, mix),
    }


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    """`[components]`: a load balancer, gateways, a chain of services with steps."""
    services = draw(st.integers(1, 3))
    components: dict[str, Any] = {
        "edge": {"kind": "load_balancer", "port": 8300, "backends": "api"} | _station(draw),
    }
    port = 8400
    names = [f"svc{i}" for i in range(services)]
    for i, name in enumerate([*names]):
        replicas = draw(st.integers(1, 2))
        steps: list[dict[str, Any]] = []
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["cpu", "io"]))
            steps.append({kind: _latency(draw, low=0.001)})
        if i + 1 < services:
            steps.append({"call": names[i + 1]})
        components[name] = {
            "kind": "service",
            "ports": list(range(port, port + replicas)),
            "endpoints": {"GET /process": steps},
        } | _station(draw)
        port += replicas
    gateway_steps: list[dict[str, Any]] = [{"call": names[0]}]
    if draw(st.booleans()):
        gateway_steps.insert(0, {"cpu": _latency(draw, low=0.001)})
    components["api"] = {
        "kind": "gateway",
        "ports": list(range(8500, 8500 + draw(st.integers(1, 3)))),
        "endpoints": {"GET /process": gateway_steps},
    } | _station(draw)
    return {
        "name": "random-graph",
        "seed": draw(st.integers(0, 10_000)),
        "components": components,
        "load": _load(draw),
    }


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.one_of(lab_shapes(), graphs()))
def test_random_configurations_same_report_both_engines(data: dict[str, Any]) -> None:
    (scenario,) = scenarios_from(data, "hypothesis")
    options = BenchOptions.of(scenario.load)
    assert unsupported(scenario.topology, options) is None
    try:
        model = execute_model(scenario.topology, options)
    except Unsupported as e:  # only what shows while it runs: a timeout, a full pool
        assert "timeout" in str(e) or "at once" in str(e)
        return
    http = execute(scenario.topology, options).as_dict()
    model_report = model.as_dict()
    http["time"]["wall_s"] = model_report["time"]["wall_s"] = None
    assert _differences(http, model_report) == []


# -- refusals, one by one ------------------------------------------------------------------


def _lab(**sections: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "refused",
        "load_balancer": {"latency": 0},
        "gateways": {"latency": 0},
        "microservice": {"latency": 0},
        "load": {"requests": 20, "concurrency": 2, "mix": {"process": 1}},
    }
    for key, value in sections.items():
        data[key] = data.get(key, {}) | value if isinstance(value, dict) else value
    (scenario,) = scenarios_from(data, "test")
    return scenario


def _reason(scenario: Scenario, **options: Any) -> str | None:
    chosen = BenchOptions.of(scenario.load, **options)
    return unsupported(scenario.topology, chosen, scenario.faults)


@pytest.mark.parametrize(
    ("sections", "options", "named"),
    [
        ({}, {"target": "http://127.0.0.1:8000"}, "--target"),
        ({}, {"clock": "real"}, "the real clock"),
        ({}, {"auth": "none"}, 'auth = "none"'),
        ({}, {"auth": "forged"}, 'auth = "forged"'),
        ({}, {"verbose": True}, "--verbose"),
        ({"exposure": "gateways-only"}, {"mix": {"db": 1}}, "the 'db' endpoint under exposure"),
        ({"cache": {"coalesce": True}}, {"mix": {"data": 1}}, "[cache] coalesce"),
        ({"cache": {"stale_while_revalidate": 5}}, {"mix": {"data": 1}}, "stale_while_revalidate"),
        ({"cache": {"max_bytes": 2048}}, {"mix": {"data": 1}}, "[cache] an entry evicted"),
        (
            {"microservice": {"concurrency": 2, "discipline": "processor_sharing"}},
            {},
            'discipline = "processor_sharing"',
        ),
        ({"microservice": {"rate_limit": {"rate": 5, "burst": 5}}}, {}, "rate_limit"),
        ({"gateways": {"rate_limit": {"requests": 5, "window": 1}}}, {}, "rate_limit"),
        ({"load_balancer": {"strategy": "consistent_hash"}}, {}, 'strategy = "consistent_hash"'),
        ({"load_balancer": {"health_check": {"interval": 1}}}, {}, "health_check"),
        ({"load_balancer": {"outlier": {"consecutive_failures": 3}}}, {}, "outlier"),
        ({"load_balancer": {"retry": {"attempts": 1}}}, {}, "retry"),
        ({"microservice": {"status_name": "MS"}}, {}, "status_name"),
    ],
)
def test_refused_feature_is_named(
    sections: dict[str, Any], options: dict[str, Any], named: str
) -> None:
    scenario = _lab(**sections)
    reason = _reason(scenario, **options)
    assert reason is not None and reason.startswith(PREFIX) and named in reason
    assert "\n" not in reason
    with pytest.raises(Unsupported, match="does not yet reproduce"):
        execute_model(scenario.topology, BenchOptions.of(scenario.load, **options))


def test_refused_faults_flows_and_status_log() -> None:
    (faulty,) = [s for s in load_scenarios(ROOT / "scenarios/gateway-failure.toml")][:1]
    assert "[[faults]]" in str(_reason(faulty))
    (flows,) = load_scenarios(ROOT / "scenarios/user-flow.toml")
    assert "[[flows]]" in str(_reason(flows))
    lab = _lab()
    tracked = dataclasses.replace(
        lab, topology=dataclasses.replace(lab.topology, status_tracker=True)
    )
    assert "status_tracker" in str(_reason(tracked))


def test_refused_routes_of_a_graph() -> None:
    def graph(api: dict[str, Any], more: dict[str, Any] | None = None) -> Scenario:
        data = {
            "name": "g",
            "components": {
                "edge": {"kind": "load_balancer", "port": 8300, "backends": "api"},
                "api": {"kind": "gateway", "port": 8301} | api,
                "svc": {
                    "kind": "service",
                    "port": 8302,
                    "endpoints": {"GET /process": [], "GET /data": []},
                },
                **(more or {}),
            },
            "load": {"requests": 5, "mix": {"process": 1}},
        }
        (scenario,) = scenarios_from(data, "test")
        return scenario

    login = graph(
        {"auth": "users", "endpoints": {"GET /process": [{"call": "svc"}]}},
        {"users": {"kind": "login", "port": 8305}},
    )
    assert "a login service checking the gateway's tokens (users)" in str(_reason(login))
    through = graph(
        {"endpoints": {"GET /process": [{"call": "svc"}]}},
        {
            "svc": {
                "kind": "service",
                "port": 8302,
                "endpoints": {"GET /process": [{"call": "back", "path": "/process"}]},
            },
            "back": {"kind": "gateway", "port": 8307, "endpoints": {"GET /process": []}},
        },
    )
    assert "a gateway called by a step, with no token (back)" in str(_reason(through))
    cached = graph(
        {
            "endpoints": {
                "GET /process": [
                    {"read_through": "kv", "key": "k", "source": {"call": "svc", "path": "/data"}}
                ]
            }
        },
        {"kv": {"kind": "cache", "port": 8303}},
    )
    assert _reason(cached) is None
    assert _reason(graph({"endpoints": {"GET /process": [{"call": "svc"}]}})) is None


def test_full_queues_answer_503_alike_in_both_engines() -> None:
    # A station's line and the worker's queue, both full: 503s passed on by the gateway
    # and the load balancer, counted and worded the same.
    scenario = _lab(
        microservice={"concurrency": 1, "queue_size": 1, "service": 0.05},
        worker={"concurrency": 1, "queue_size": 1, "task_duration": 0.5},
    )
    options = BenchOptions.of(
        scenario.load, mix={"process": 1, "longtask": 1}, concurrency=8, requests=60
    )
    http, model = _both(scenario.topology, options)
    assert http["requests"]["by_status"]["503"] > 5
    assert http["components"]["microservice"]["rejected"] > 0
    assert any("queue is full" in f["error"] for f in http["failures"])
    assert _differences(http, model) == []


def test_a_timeout_is_refused_while_it_runs() -> None:
    scenario = _lab(microservice={"latency": 0.2, "timeout": 0.1})
    with pytest.raises(Unsupported, match="a timeout \\(microservice did not answer"):
        execute_model(scenario.topology, BenchOptions.of(scenario.load))


def test_a_wait_for_a_pooled_connection_is_refused_while_it_runs() -> None:
    assert model_engine.POOL_SIZE == POOL_SIZE  # the HTTP client's, kept in step
    scenario = _lab(gateways={"ports": [5000]}, microservice={"latency": 1.0})
    options = BenchOptions.of(scenario.load, concurrency=POOL_SIZE + 1, requests=POOL_SIZE + 1)
    with pytest.raises(Unsupported, match=f"more than {POOL_SIZE} requests at once"):
        execute_model(scenario.topology, options)
    execute_model(scenario.topology, dataclasses.replace(options, concurrency=POOL_SIZE))


def test_the_api_takes_an_engine() -> None:
    result = labsim.bench("mm1", engine="model", requests=50, rate=5.0)
    assert result.requests.total == 50
    with pytest.raises(BenchError, match=r"^the model engine does not yet reproduce: \[load-bal"):
        labsim.bench("rate-limit", engine="model", requests=10)
    with pytest.raises(ConfigError, match="engine: must be one of http, model"):
        labsim.bench("mm1", engine="fast", requests=10)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labsim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_refusal_is_one_line_exit_2() -> None:
    done = _cli("bench", "rate-limit", "--engine", "model", "--requests", "10")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "labsim: error: the model engine does not yet reproduce: [load-balancer] rate_limit"
    ]


def test_cli_bench_and_run_by_the_model_engine(tmp_path: Path) -> None:
    model_json, http_json = tmp_path / "model.json", tmp_path / "http.json"
    common = ["bench", "--requests", "100"]  # the lab's default run
    assert _cli(*common, "--engine", "model", "--json", str(model_json)).returncode == 0
    assert _cli(*common, "--json", str(http_json)).returncode == 0
    model, http = json.loads(model_json.read_text()), json.loads(http_json.read_text())
    model["time"]["wall_s"] = http["time"]["wall_s"] = None
    assert _differences(http, model) == []
    ran = _cli("run", "mmc", "--engine", "model")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "4 passed, 0 failed, 1 scenario file" in ran.stdout
    assert _cli("run", "rate-limit", "--engine", "model").returncode == 2


def test_cli_sweep_by_the_model_engine(tmp_path: Path) -> None:
    points = ["sweep", "mmc", "--set", "load.rate=12,24", "--set", "load.requests=300"]
    reports = {}
    for engine in ("http", "model"):
        path = tmp_path / f"{engine}.json"
        done = _cli(*points, "--engine", engine, "--json", str(path))
        assert done.returncode == 0, done.stderr
        reports[engine] = json.loads(path.read_text())
        for point in reports[engine]["points"]:
            point["wall_s"] = None
    assert len(reports["model"]["points"]) == 2
    assert _differences(reports["http"], reports["model"]) == []
    refused = _cli("sweep", "rate-limit", "--set", "load.requests=10,20", "--engine", "model")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "labsim: error: the model engine does not yet reproduce: [load-balancer] rate_limit"
    ]


def test_an_unknown_engine_is_refused_by_the_parser() -> None:
    done = _cli("bench", "--engine", "fast")
    assert done.returncode == 2 and "invalid choice: 'fast'" in done.stderr
