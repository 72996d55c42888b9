"""Scenario files: load, faults, expectations, variants; `labsim run`; every shipped one."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from labsim.cli import main
from labsim.model.config import ConfigError
from labsim.model.scenario import Expectation, load_scenarios
from labsim.run import BenchOptions, run_bench

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.toml"))
SHIPPED = {
    "lab", "no-cache", "ttl-expiry", "stampede", "weighted", "least-connections",
    "gateway-failure", "rate-limit", "slow-database", "zero-latency",
    "saturation", "scale-out", "mm1", "mmc", "coordinated-omission", "seed",
    "guide", "guide-open", "forged-token", "exposure", "lab5", "read-replica", "user-flow",
    "cache-size",
}  # fmt: skip


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_named_scenario_ships():
    assert {p.stem for p in SCENARIOS} == SHIPPED


def _checks(capsys, *args: str) -> list[str]:
    """The PASS and FAIL lines of `labsim run` with `args`."""
    main(["run", *args])
    return [line for line in capsys.readouterr().out.splitlines() if CHECK.match(line)]


CHECK = re.compile(r"\s*(PASS|FAIL)\b")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_passes_at_any_port_offset(path, capsys):
    """`--port-offset` moves ports, never the ids that faults and `expect` name."""
    checks = _checks(capsys, str(path))
    assert checks and all(line.split()[0] == "PASS" for line in checks), checks
    assert _checks(capsys, str(path), "--port-offset", "100") == checks


def test_variants_and_their_expectations(tmp_path):
    path = write(
        tmp_path,
        """
        name = "v"
        expect = ["requests.failed == 0"]
        [load]
        requests = 20
        mix = { data = 1 }
        [[variants]]
        name = "a"
        [[variants]]
        name = "b"
        cache = { coalesce = true }
        expect = "db_calls == 1"
        """,
    )
    a, b = load_scenarios(path)
    assert (a.variant, b.variant) == ("a", "b")
    assert not a.topology.cache.coalesce and b.topology.cache.coalesce
    assert [e.text for e in a.expect] == ["requests.failed == 0"]
    assert [e.text for e in b.expect] == ["requests.failed == 0", "db_calls == 1"]
    assert a.load.requests == 20 and a.load.mix == {"data": 1}


def test_expectations_compare_any_figure():
    class Measured:  # a result's figures by path, as BenchResult.figure gives them
        def figure(self, path: str) -> float | None:
            return {"cache.hit_ratio": 0.8, "endpoints.data.p99_ms": 12.5}.get(path)

    check = lambda text: Expectation(text, *_parse(text)).evaluate(Measured())  # noqa: E731
    assert check("cache.hit_ratio >= 0.8") == (True, 0.8)
    assert check("cache.hit_ratio > 0.8") == (False, 0.8)
    assert check("endpoints.data.p99_ms < 50") == (True, 12.5)
    assert check("endpoints.process.p99_ms < 50") == (False, None)  # not measured: fails


def _parse(text: str) -> tuple:
    path, op, value = text.split()
    return tuple(path.split(".")), op, float(value)


def test_run_prints_fail_and_exits_1(tmp_path, capsys):
    path = write(
        tmp_path,
        'expect = ["db_calls == 1", "cache.hits >= 0"]\n'
        "[load]\nrequests = 20\nmix = { data = 1 }\n",
    )
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  db_calls == 1  (measured 10)" in out
    assert "PASS  cache.hits >= 0  (measured 10)" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[load]\nrequests = 0\n", "load.requests: must be at least 1 (got 0)"),
        ("[load]\nrequests = 'many'\n", "load.requests: must be an int"),
        ("[load]\nmix = { lunch = 1 }\n", "load.mix: must give whole weights"),
        ("[load]\nmix = { data = 0 }\n", "load.mix: must give whole weights"),
        ("[load]\nclock = 'sundial'\n", 'load.clock: must be "virtual" or "real"'),
        ("[load]\nspeed = 1\n", "load.speed: unknown key"),
        ("expect = ['cache.hit_ratio is high']\n", "expect[0]: 'cache.hit_ratio is high' is not"),
        ("expect = ['mood > 1']\n", "expect[0]: 'mood' is not a figure of the report"),
        ("expect = ['db_calls == x']\n", "expect[0]: 'x' is not a finite number"),
        ("expect = ['db_calls == nan']\n", "expect[0]: 'nan' is not a finite number"),
        ("expect = ['cache.hits.x == 1']\n", "'cache.hits.x' is not a figure of the report"),
        ("expect = ['cache == 1']\n", "it names a section, not a number"),
        ("expect = ['endpoints.lunch.p50_ms < 1']\n", "an endpoint (data, longtask, process, db)"),
        ("expect = ['endpoints.data.p42_ms < 1']\n", "'p42_ms' is not one of count, mean_ms"),
        ("[[faults]]\nat = inf\ncomponent = 'cache'\ndown = true\n", "faults[0].at: required"),
        ("[[variants]]\nname = 'a'\n[[variants]]\nname = 'a'\n", "'a' is used twice"),
        ("[[variants]]\nname = 'a'\n[[variants.variants]]\nname = 'b'\n", "cannot nest"),
        ("expect = 'db_calls == 1'\n", "expect: must be a list"),
        ("[[faults]]\ncomponent = 'cache'\ndown = true\n", "faults[0].at: required"),
        ("[[faults]]\nat = 1\ncomponent = 'oven'\ndown = true\n", "faults[0].component: unknown"),
        ("[[faults]]\nat = 1\ncomponent = 'cache'\n", "faults[0]: give a fault to set"),
        ("[[faults]]\nat = 1\ncomponent = 'cache'\ndown = 1\n", "down must be true or false"),
        ("[[faults]]\nat = 1\ncomponent = 'cache'\nerror_rate = 2\n", "error_rate must be from"),
        ("[[faults]]\nat = 1\ncomponent = 'cache'\nmelt = true\n", "unknown fault 'melt'"),
        ("[[variants]]\ncache = { ttl = 1 }\n", "variants[0].name: required"),
        ("variants = 3\n", "variants: must be a list of tables"),
        ("[[variants]]\nname = 'x'\ncache = { ttl = -1 }\n", "(variant 'x'): cache.ttl: must be"),
        ("[database]\nlatency = -1\n", "database.latency: latency cannot be negative"),
        ("[gateways]\nports = []\n", "gateways.ports: must list 1 to 100 ports"),
        ("[load_balancer]\nstrategy = 'fastest'\n", "load_balancer.strategy: must be one of"),
        ("[load_balancer]\nweights = [1, 2]\n", "load_balancer.weights: 2 weights for 3 gateways"),
        ("[load_balancer]\nweights = [1, 0, 1]\n", "load_balancer.weights: must all be"),
        ("[load_balancer]\nhash_on = 'cookie'\n", "load_balancer.hash_on: must be"),
        ("[load_balancer.retry]\nattempts = -1\n", "load_balancer.retry.attempts: must be 0 or"),
        ("[load_balancer.outlier]\nmax_ejection_percent = 120\n", "must be a percentage"),
        ("[load_balancer.health_check]\ninterval = -1\n", "health_check.interval: must be 0"),
        ("[load_balancer.rate_limit]\nrate = 5\n", "load_balancer.rate_limit: give both rate"),
        ("[cache]\ncoalesce = 'yes'\n", "cache.coalesce: must be a bool"),
    ],
)
def test_invalid_scenarios_are_one_line_exit_2(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_scenarios(path)
    assert str(e.value).startswith(str(path))
    assert message in str(e.value)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_run_checks_every_file_before_running_any(tmp_path, capsys):
    good = write(tmp_path, "[load]\nrequests = 5\n", "good.toml")
    bad = write(tmp_path, "[load]\nrequests = 0\n", "bad.toml")
    assert main(["run", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "bad.toml: load.requests" in captured.err


def test_run_needs_a_readable_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: no such scenario file" in capsys.readouterr().err


def test_bench_takes_the_scenarios_load_and_refuses_variants(tmp_path, capsys):
    path = write(tmp_path, "[load]\nrequests = 30\nmix = { process = 1 }\n")
    assert main(["bench", "--scenario", str(path), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["requests"]["total"] == 30 and list(report["endpoints"]) == ["process"]
    capsys.readouterr()
    assert main(["bench", "--scenario", "scenarios/stampede.toml"]) == 2
    assert "has 2 variants" in capsys.readouterr().err


def test_faults_need_the_topology_in_process(tmp_path, capsys):
    path = write(tmp_path, "[[faults]]\nat = 1\ncomponent = 'cache'\ndown = true\n")
    assert main(["bench", "--scenario", str(path), "--target", "http://127.0.0.1:9"]) == 2
    assert "schedules faults" in capsys.readouterr().err


def _variant(path: str, index: int):
    return load_scenarios(path)[index]


def test_a_resilience_run_is_repeatable():
    scenario = _variant("scenarios/gateway-failure.toml", 1)
    options = BenchOptions(requests=1500, concurrency=10, mix={"data": 1})

    def once() -> dict:
        result = asyncio.run(run_bench(scenario.topology, options, scenario.faults)).as_dict()
        del result["time"]["wall_s"]
        return result

    first = once()
    assert first == once()
    assert first["endpoints"]["data"]["failed"] == 0


def test_a_fault_that_cannot_be_applied_stops_the_run():
    from labsim.model.config import Topology
    from labsim.model.scenario import Fault
    from labsim.run import BenchError

    bad = Fault(0.5, "database", {"latency": -1.0})  # refused by the fault API: 400
    with pytest.raises(BenchError, match=r"cannot inject the fault at t=0\.5s"):
        asyncio.run(run_bench(Topology(), BenchOptions(requests=20), [bad]))


async def test_a_run_that_fails_or_is_cancelled_leaves_no_task_behind():
    from labsim.model.config import Topology
    from labsim.model.scenario import Fault
    from labsim.run import BenchError

    def helpers_left() -> list[str]:
        names = {t.get_coro().__qualname__ for t in asyncio.all_tasks()}
        return sorted(names & {"_sample", "_apply_faults"})

    bad = Fault(0.5, "database", {"latency": -1.0})
    with pytest.raises(BenchError):
        await run_bench(Topology(), BenchOptions(requests=20), [bad])
    assert helpers_left() == []

    run = asyncio.create_task(run_bench(Topology(), BenchOptions(requests=20, clock="real")))
    await asyncio.sleep(0.3)  # logged in, waiting for the 2 s database
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert helpers_left() == []
