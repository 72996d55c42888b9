"""User flows (`[[load.flows]]`, issue 23 item 4): closed and open loads of flows on the
virtual clock, their think times and per-step counts checked against sums worked out
here, logging in as a step, unknown paths answered as the server answers, flows on
`[components]` topologies, the reports, and every bad flow refused in one line naming
its key (with a hypothesis fuzz of flow tables)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labsim.cli import main
from labsim.model.config import ConfigError
from labsim.model.flows import MAX_BODY, MAX_FLOWS, MAX_STEPS, Flow, Step
from labsim.model.load import plan
from labsim.model.load_changes import changed_load
from labsim.model.scenario import Scenario, load_scenarios, scenarios_from
from labsim.model.schema import read_toml
from labsim.run import BenchOptions, BenchResult, execute
from labsim.run.flows import closed_runs
from labsim.views.report.html import render_bench
from labsim.views.report.text import render_text

ROOT = Path(__file__).parents[1]

# No time anywhere but where a test puts it.
QUIET: dict[str, Any] = {
    "load_balancer": {"latency": 0, "timeout": 600},
    "gateways": {"latency": 0},
    "cache": {"latency": 0},
    "database": {"latency": 0, "timeout": 600},
    "worker": {"latency": 0, "task_duration": 0},
    "microservice": {"latency": 0, "timeout": 600},
}

SHOPPER = {
    "name": "shopper",
    "weight": 3,
    "steps": [
        {"request": "POST /login"},
        {"request": "GET /process", "repeat": 4, "think": 0.5},
        {"request": "POST /longtask", "body": {"task": "report"}},
    ],
}
READER = {"name": "reader", "weight": 1, "steps": [{"request": "GET /data", "repeat": 3}]}


def scenario(data: dict[str, Any] | None = None, **load: Any) -> Scenario:
    data = copy.deepcopy(QUIET if data is None else data)
    data["load"] = load
    [one] = scenarios_from(data, "test.toml")
    return one


def run(s: Scenario) -> BenchResult:
    return execute(s.topology, BenchOptions.of(s.load), s.faults)


def counts(result: BenchResult) -> dict[str, dict[str, tuple[int, int, int]]]:
    """flow -> step -> (count, served, failed)."""
    return {
        flow: {name: (s.count, s.served, s.failed) for name, s in f.steps.items()}
        for flow, f in (result.flows or {}).items()
    }


# Closed: users running flow after flow


def test_one_users_think_times_add_up_exactly_on_the_virtual_clock():
    # 3 runs one after another; each thinks 0.5 s after each of its 4 /process, and
    # nothing else takes time: 3 * 4 * 0.5 = 6 s, not a microsecond more.
    result = run(scenario(requests=3, concurrency=1, flows=[SHOPPER]))
    assert result.time.simulated_s == 6.0
    process = result.flows["shopper"].steps["get-process"]
    assert process.max_ms == 0  # thinking is no latency
    # Three users run the three at once: one run's 2 s.
    assert run(scenario(requests=3, concurrency=3, flows=[SHOPPER])).time.simulated_s == 2.0


def test_no_think_after_a_runs_last_request():
    # 2 runs of "GET /process twice, 1 s think": one pause each, none after the last.
    flow = {"name": "f", "steps": [{"request": "GET /process", "repeat": 2, "think": 1.0}]}
    assert run(scenario(requests=2, concurrency=1, flows=[flow])).time.simulated_s == 2.0


def test_counts_per_step_are_the_runs_split_by_weight_times_each_steps_repeat():
    result = run(scenario(requests=9, concurrency=4, flows=[SHOPPER, READER]))
    runs = dict(plan(9, {"shopper": 3, "reader": 1}))  # largest remainder: 7 and 2
    assert runs == {"shopper": 7, "reader": 2}
    assert counts(result) == {
        "shopper": {
            "post-login": (7, 7, 0),
            "get-process": (28, 28, 0),
            "post-longtask": (7, 7, 0),
        },
        "reader": {"get-data": (6, 6, 0)},
    }
    assert result.requests.total == 7 * 6 + 2 * 3
    assert result.worker.queued == 7
    assert result.cache is not None and (result.cache.hits, result.cache.misses) == (5, 1)
    assert result.mix == {} and result.endpoints == {}


def test_a_steps_latencies_are_its_served_requests():
    # One user, the database 0.5 s: the first /data misses (500 ms), the next four hit
    # (0 ms): mean 100 ms, median 0, max 500.
    data = copy.deepcopy(QUIET)
    data["database"]["latency"] = 0.5
    flow = {"name": "r", "steps": [{"request": "GET /data", "repeat": 5}]}
    step = run(scenario(data, requests=1, concurrency=1, flows=[flow])).flows["r"].steps["get-data"]
    assert (step.count, step.served, step.mean_ms, step.p50_ms, step.max_ms) == (
        5,
        5,
        100.0,
        0,
        500,
    )


def test_a_flow_sends_no_token_before_its_login_and_the_logins_token_after():
    flow = {
        "name": "f",
        "steps": [
            {"request": "GET /process", "name": "before"},
            {"request": "POST /login"},
            {"request": "GET /process", "name": "after"},
        ],
    }
    result = run(scenario(requests=4, concurrency=2, flows=[flow]))
    assert counts(result)["f"] == {
        "before": (4, 0, 4),
        "post-login": (4, 4, 0),
        "after": (4, 4, 0),
    }
    assert {(f.endpoint, f.status) for f in result.failures} == {("f/before", 401)}


def test_a_failed_login_leaves_the_flow_without_a_token():
    flow = {
        "name": "f",
        "steps": [
            {"request": "POST /login", "body": {"username": "user1", "password": "wrong"}},
            {"request": "GET /process"},
        ],
    }
    result = run(scenario(requests=2, concurrency=1, flows=[flow]))
    assert counts(result)["f"] == {"post-login": (2, 0, 2), "get-process": (2, 0, 2)}
    assert result.requests.by_status == {"401": 4}


def test_a_flow_without_a_login_carries_the_loads_token():
    flow = {"name": "f", "steps": [{"request": "GET /process"}]}
    assert counts(run(scenario(requests=2, flows=[flow])))["f"] == {"get-process": (2, 2, 0)}
    refused = run(scenario(requests=2, flows=[flow], auth="none"))
    assert counts(refused)["f"] == {"get-process": (2, 0, 2)}


def test_each_login_run_takes_the_next_user():
    data = copy.deepcopy(QUIET)
    data["users"] = [
        {"username": "ann", "password": "a-password"},
        {"username": "bob", "password": "b-password"},
    ]
    flow = {"name": "f", "steps": [{"request": "POST /login"}, {"request": "GET /process"}]}
    result = run(scenario(data, requests=4, concurrency=2, flows=[flow]))
    assert counts(result)["f"] == {"post-login": (4, 4, 0), "get-process": (4, 4, 0)}


def test_an_unknown_path_is_answered_as_the_server_answers_it():
    flows = [
        {"name": "f", "steps": [{"request": "GET /nowhere"}, {"request": "DELETE /data"}]},
        {"name": "g", "steps": [{"request": "GET /nowhere", "status": 404}]},
    ]
    result = run(scenario(requests=4, concurrency=1, flows=flows))
    assert counts(result) == {
        "f": {"get-nowhere": (2, 0, 2), "delete-data": (2, 0, 2)},
        "g": {"get-nowhere": (2, 2, 0)},  # 404 asked for: served
    }
    statuses = {(f.endpoint, f.status) for f in result.failures}
    assert statuses == {("f/get-nowhere", 404), ("f/delete-data", 405)}
    assert all(f.error for f in result.failures)


def test_a_flows_reads_draw_keys_as_the_mixs_do():
    # 40 reads of 1,000 equally popular keys: nearly every one a key not read before.
    reads = {"name": "reader", "steps": [{"request": "GET /data", "repeat": 40}]}
    keyed = run(scenario(requests=1, flows=[reads], keys={"count": 1000}))
    assert keyed.cache is not None and keyed.cache.misses > 30
    assert keyed.cache.hits + keyed.cache.misses == 40
    # A read that names its key keeps it; without keys, every read is of the one key.
    named = {"name": "reader", "steps": [{"request": "GET /data?key=a", "repeat": 40}]}
    for s in (scenario(requests=1, flows=[named], keys={"count": 1000}),
              scenario(requests=1, flows=[reads])):  # fmt: skip
        result = run(s)
        assert result.cache is not None and (result.cache.hits, result.cache.misses) == (39, 1)


def test_steps_of_one_request_are_numbered():
    flow = {"name": "f", "steps": [{"request": "GET /process"}, {"request": "GET /process"}]}
    result = run(scenario(requests=1, flows=[flow]))
    assert list(result.flows["f"].steps) == ["get-process", "get-process-2"]


# Open: each arrival runs one flow


def test_an_open_load_runs_one_flow_per_arrival():
    flows = [SHOPPER, READER]
    s = scenario(rate=4.0, requests=40, flows=flows)
    result = run(s)
    runs = Counter(
        {
            "shopper": result.flows["shopper"].steps["post-login"].count,
            "reader": result.flows["reader"].steps["get-data"].count // 3,
        }
    )
    assert sum(runs.values()) == 40 and result.dropped == 0
    assert counts(result) == {
        "shopper": {
            "post-login": (runs["shopper"],) * 2 + (0,),
            "get-process": (4 * runs["shopper"],) * 2 + (0,),
            "post-longtask": (runs["shopper"],) * 2 + (0,),
        },
        "reader": {"get-data": (3 * runs["reader"],) * 2 + (0,)},
    }
    assert 20 <= runs["shopper"] <= 38  # drawn 3:1 from the seed
    assert result.load.model == "open" and "shopper (weight 3" in (result.load.flows or "")
    assert result.send_lag is not None and result.send_lag.max_ms == 0
    # Reproducible with the seed; another seed draws another load.
    again = run(s)
    assert again.flows == result.flows
    assert again.time.simulated_s == result.time.simulated_s
    other = copy.deepcopy(QUIET) | {"seed": 2}
    assert run(scenario(other, rate=4.0, requests=40, flows=flows)).flows != result.flows


def test_an_open_flows_think_times_add_up_exactly():
    # One arrival: the run's 4 pauses of 0.5 s add 2 s to the load, exactly.
    plain = {"name": "f", "steps": [{"request": "GET /process", "repeat": 5}]}
    thinking = {"name": "f", "steps": [{"request": "GET /process", "repeat": 5, "think": 0.5}]}
    load = {"rate": 1.0, "requests": 1, "arrivals": "constant"}
    without = run(scenario(**load, flows=[plain])).time.simulated_s
    with_think = run(scenario(**load, flows=[thinking])).time.simulated_s
    assert with_think - without == pytest.approx(2.0, abs=1e-9)


def test_an_open_load_counts_flows_in_flight_against_max_in_flight():
    # 10 arrivals in 1 s, each run thinking 10 s: at most 3 in flight, 7 dropped.
    flow = {"name": "f", "steps": [{"request": "GET /process", "repeat": 2, "think": 10}]}
    s = scenario(rate=10.0, requests=10, arrivals="constant", max_in_flight=3, flows=[flow])
    result = run(s)
    assert result.dropped == 7
    assert counts(result)["f"] == {"get-process": (6, 6, 0)}


def test_exponential_think_times_are_reproducible_with_the_seed():
    flow = {
        "name": "f",
        "steps": [
            {
                "request": "GET /process",
                "repeat": 20,
                "think": {"model": "exponential", "mean": 1.0},
            }
        ],
    }
    first = run(scenario(requests=4, concurrency=2, flows=[flow])).time.simulated_s
    assert run(scenario(requests=4, concurrency=2, flows=[flow])).time.simulated_s == first
    # 2 users, 2 runs each of 19 pauses of 1 s on average.
    assert first == pytest.approx(2 * 19 * 1.0, rel=0.35)


# Flows on `[components]` topologies


@pytest.mark.parametrize("name", ["read-replica", "lab5"])
def test_a_flow_on_a_components_topology(name):
    data = read_toml(ROOT / "scenarios" / f"{name}.toml")
    data.pop("expect")
    flow = {
        "name": "visit",
        "steps": [
            {"request": "POST /login"},
            {"request": "GET /data", "repeat": 3, "think": 1.0},
            {"request": "POST /longtask", "body": {"task": "report"}, "status": 202},
        ],
    }
    result = run(scenario(data, requests=6, concurrency=2, flows=[flow]))
    assert counts(result)["visit"] == {
        "post-login": (6, 6, 0),
        "get-data": (18, 18, 0),
        "post-longtask": (6, 6, 0),
    }
    assert result.worker.queued == 6 and result.worker.completed == 6
    assert result.cache is not None and result.cache.hits + result.cache.misses == 18


# Reports


def test_the_reports_show_each_flows_steps():
    result = run(scenario(requests=4, concurrency=2, flows=[SHOPPER, READER]))
    text = render_text(result)
    assert "closed: 2 users, each running one flow after another: shopper" in text
    assert "flow shopper (weight 3)" in text
    row = next(line for line in text.splitlines() if "POST /longtask" in line)
    assert row.split() == ["post-longtask", "POST", "/longtask", "3", "3", "0", "0", "0", "0"]
    assert "endpoint" not in text  # no table of the mix's endpoints: there is no mix
    page = render_bench(result)
    assert "<h2>Flows</h2>" in page and "flow reader (weight 1)" in page
    assert "<td>get-process</td>" in page
    assert "<tr><th>flows</th><td>shopper (weight 3, 6 requests), reader" in page
    assert "<tr><th>mix</th>" not in page
    report = json.loads(json.dumps(result.as_dict()))
    step = report["flows"]["shopper"]["steps"]["get-process"]
    assert step == {
        "request": "GET /process",
        "count": 12,
        "served": 12,
        "failed": 0,
        "mean_ms": 0,
        "p50_ms": 0,
        "p90_ms": 0,
        "p99_ms": 0,
        "max_ms": 0,
    }
    assert report["load"]["flows"].startswith("shopper (weight 3, 6 requests)")


def test_a_load_of_the_mix_has_no_flows_in_its_reports():
    result = run(scenario(requests=4, mix={"process": 1}))
    assert result.flows is None and "flows" not in result.as_dict()
    assert "flows" not in result.as_dict()["load"]
    assert "Flows" not in render_bench(result) and "flow " not in render_text(result)


def test_expectations_read_step_figures(tmp_path, capsys):
    path = tmp_path / "f.toml"
    path.write_text(
        "expect = ['flows.f.steps.get-process.count == 6', "
        "'flows.f.steps.get-process.p99_ms < 100', 'flows.f.steps.nope.count == 1']\n"
        "[load]\nrequests = 3\n[[load.flows]]\nname = 'f'\n"
        "steps = [{ request = 'GET /process', repeat = 2 }]\n"
    )
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "PASS  flows.f.steps.get-process.count == 6  (measured 6)" in out
    assert "PASS  flows.f.steps.get-process.p99_ms < 100" in out
    assert "FAIL  flows.f.steps.nope.count == 1  (not measured)" in out


def test_the_shipped_flow_scenario_passes_under_run_and_bench(tmp_path, capsys):
    assert main(["run", "user-flow"]) == 0
    assert "8 passed, 0 failed" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["bench", "scenarios/user-flow.toml", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["flows"]["shopper"]["steps"]["get-data"]["count"] == 75
    capsys.readouterr()
    # An open load of the same flows, from the command line.
    assert main(["bench", "user-flow", "--rate", "2", "--requests", "8", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    runs = report["flows"]["shopper"]["steps"]["post-login"]["count"]
    runs += report["flows"]["browser"]["steps"]["get-data"]["count"] // 5
    assert runs == 8 and report["load"]["model"] == "open"


# Bad flows: one line naming the key


FLOW = {"name": "f", "steps": [{"request": "GET /data"}]}


def _with_step(**step: Any) -> list[dict[str, Any]]:
    return [{"name": "f", "steps": [{"request": "GET /data"} | step]}]


BAD = [
    (_with_step(repeats=5), "load.flows[0].steps[0].repeats: unknown key (known: body, name"),
    (_with_step(request="FETCH /data"), "load.flows[0].steps[0].request: must be"),
    (_with_step(request="GET data"), "load.flows[0].steps[0].request: must be"),
    (_with_step(request="GET /a b"), "load.flows[0].steps[0].request: must be"),
    (_with_step(request="GET /" + "a" * 1024), "load.flows[0].steps[0].request: must be"),
    (_with_step(request=5), "load.flows[0].steps[0].request: must be a str"),
    (_with_step(repeat=0), "load.flows[0].steps[0].repeat: must be from 1 to 1,000"),
    (_with_step(repeat=1001), "load.flows[0].steps[0].repeat: must be from 1 to 1,000"),
    (_with_step(repeat=1.5), "load.flows[0].steps[0].repeat: must be an int"),
    (_with_step(think=-1), "load.flows[0].steps[0].think: latency cannot be negative"),
    (_with_step(think=3601), "load.flows[0].steps[0].think: must have a mean of at most 3600"),
    (
        _with_step(think={"model": "exponential", "mean": 7200}),
        "load.flows[0].steps[0].think: must have a mean",
    ),
    (_with_step(think="1s"), "load.flows[0].steps[0].think: must be seconds or a table"),
    (_with_step(body={"x": "a" * MAX_BODY}), "load.flows[0].steps[0].body: must be JSON of"),
    (_with_step(body={"x": float("nan")}), "load.flows[0].steps[0].body: must be JSON of"),
    (_with_step(body=float("inf")), "load.flows[0].steps[0].body: must be JSON of"),
    (_with_step(status=700), "load.flows[0].steps[0].status: must be 0 or 100 to 599"),
    (_with_step(name="Bad Name"), "load.flows[0].steps[0].name: must be 1 to 40"),
    (
        [{"name": "f", "steps": [{"request": "GET /a", "name": "x"}] * 2}],
        "load.flows[0].steps[1].name: 'x' is used twice",
    ),
    (
        [
            {
                "name": "f",
                "steps": [{"request": "GET /data"}, {"request": "GET /a", "name": "get-data"}],
            }
        ],
        "load.flows[0].steps[1].name: 'get-data' is used twice",
    ),
    ([{"name": "f", "steps": []}], "load.flows[0].steps: must list 1 to 32 steps"),
    (
        [{"name": "f", "steps": [{"request": "GET /a"}] * (MAX_STEPS + 1)}],
        "load.flows[0].steps: must list 1 to 32 steps",
    ),
    ([{"steps": [{"request": "GET /a"}]}], "load.flows[0].name: required"),
    ([{"name": "f"}], "load.flows[0].steps: required"),
    ([{"name": "F!", "steps": [{"request": "GET /a"}]}], "load.flows[0].name: must be 1 to 40"),
    ([FLOW, FLOW], "load.flows[1].name: 'f' is used twice"),
    ([FLOW | {"weight": 0}], "load.flows: at least one flow needs a weight above 0"),
    ([FLOW | {"weight": -1}], "load.flows[0].weight: must be from 0 to 1,000,000"),
    (
        [FLOW | {"name": f"f{i}"} for i in range(MAX_FLOWS + 1)],
        f"load.flows: at most {MAX_FLOWS} flows",
    ),
    ([FLOW | {"think": 1}], "load.flows[0].think: unknown key"),
    (FLOW, "load.flows: must be a list"),
    (["GET /data"], "load.flows[0]: must be a table"),
]


@pytest.mark.parametrize(("flows", "message"), BAD)
def test_a_bad_flow_is_refused_naming_its_key(flows, message):
    with pytest.raises(ConfigError) as e:
        scenario(flows=flows)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_flows_with_a_mix_or_a_loads_think_time_are_refused():
    with pytest.raises(ConfigError, match=r"test.toml: load.mix: the load's flows"):
        scenario(flows=[FLOW], mix={"data": 1})
    with pytest.raises(ConfigError, match=r"test.toml: load.think: a flow's steps give"):
        scenario(flows=[FLOW], think=1.0)
    load = scenario(flows=[FLOW]).load
    with pytest.raises(ConfigError, match=r"^--mix: the load runs the scenario's flows"):
        changed_load(load, {"mix": {"data": 1}}, lambda k: "--" + k)
    with pytest.raises(ConfigError, match=r"^flows\[0\]\.steps\[0\]\.repeat: must be"):
        changed_load(load, {"flows": _with_step(repeat=0)})
    with pytest.raises(ConfigError, match=r"^flows: at least one flow"):
        changed_load(load, {"flows": [FLOW | {"weight": 0}]})


def test_the_command_line_refuses_bad_flows_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[[load.flows]]\nname = 'f'\nsteps = [{ request = 'GET /a', repeat = 0 }]\n")
    for args in (["run", str(path)], ["bench", str(path)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1
        assert "bad.toml: load.flows[0].steps[0].repeat: must be from 1 to 1,000" in err
    assert main(["bench", "user-flow", "--mix", "data=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--mix: the load runs the scenario's flows" in err


def test_the_shipped_scenario_is_refused_nothing():
    [s] = load_scenarios(ROOT / "scenarios" / "user-flow.toml")
    assert [f.name for f in s.load.flows] == ["shopper", "browser"]


# The fuzz: any flow table is a flow or one line naming a key of it

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_STEP = st.dictionaries(
    st.sampled_from(["request", "repeat", "think", "body", "status", "name", "extra"]),
    st.one_of(
        st.sampled_from(["GET /data", "POST /login", "GET /x?y=1", "BREW /pot", "/data", ""]),
        st.integers(-5, 5000),
        st.floats(allow_nan=True, allow_infinity=True),
        _JSON,
    ),
    max_size=6,
)
_FLOW = st.dictionaries(
    st.sampled_from(["name", "weight", "steps", "extra"]),
    st.one_of(
        st.sampled_from(["f", "g", "Bad name", ""]),
        st.integers(-2, 3),
        st.lists(_STEP, max_size=3),
        _JSON,
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(flows=st.one_of(st.lists(_FLOW, max_size=3), _JSON))
def test_fuzz_flow_tables_are_flows_or_one_line_naming_the_key(flows):
    try:
        s = scenario(flows=flows)
    except ConfigError as e:
        text = str(e)
        assert text.startswith("test.toml: load.flows") and "\n" not in text
        return
    for flow in s.load.flows:
        assert 1 <= len(flow.steps) <= MAX_STEPS
        assert len(set(flow.step_names())) == len(flow.steps)
        for step in flow.steps:
            assert len(json.dumps(step.body)) <= MAX_BODY


@settings(max_examples=15, deadline=None)
@given(
    repeats=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    thinks=st.lists(st.sampled_from([0, 0.25, 0.5, 1.0]), min_size=3, max_size=3),
    runs=st.integers(1, 5),
)
def test_fuzz_a_users_time_is_the_sum_of_its_think_times(repeats, thinks, runs):
    # One user: every pause of every run but after each run's last request, and nothing
    # else on the clock.
    steps = [
        {"request": "GET /process", "repeat": n, "think": t}
        for n, t in zip(repeats, thinks, strict=False)
    ]
    pauses = sum(n * t for n, t in zip(repeats, thinks, strict=False)) - thinks[len(repeats) - 1]
    result = run(scenario(requests=runs, concurrency=1, flows=[{"name": "f", "steps": steps}]))
    assert result.time.simulated_s == pytest.approx(runs * pauses, abs=1e-9)
    assert result.requests.total == runs * sum(repeats) == result.requests.ok


def test_the_docs_give_every_key_of_a_flow_and_a_step():
    docs = (ROOT / "docs" / "scenarios.md").read_text()
    section = docs.split("## `[[load.flows]]`", 1)[1].split("\n## ", 1)[0]
    for cls in (Flow, Step):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in section, (cls.__name__, f.name)


def test_variants_of_a_flow_scenario_run_side_by_side(tmp_path, capsys):
    path = tmp_path / "v.toml"
    path.write_text(
        "[load]\nrequests = 4\nconcurrency = 1\n"
        "[[load.flows]]\nname = 'f'\nsteps = [{ request = 'GET /process', think = 1.0 }, "
        "{ request = 'GET /process' }]\n"
        "[[variants]]\nname = 'one user'\nexpect = ['time.simulated_s >= 4']\n"
        "[[variants]]\nname = 'four users'\nload = { concurrency = 4 }\n"
        "expect = ['time.simulated_s >= 1', 'time.simulated_s < 1.1', "
        "'flows.f.steps.get-process-2.served == 4']\n"
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 runs of its flows, concurrency 1, variants side by side" in out
    assert "4 passed, 0 failed" in out


def test_a_closed_loads_runs_are_split_exactly_in_a_seeded_order_drawn_lazily():
    order = list(closed_runs([("a", 3), ("b", 5)], random.Random(1)))
    assert Counter(order) == {"a": 3, "b": 5}
    assert order == list(closed_runs([("a", 3), ("b", 5)], random.Random(1)))
    # Every order is possible: over seeds, "a" comes first in about 3 of 8.
    firsts = [next(closed_runs([("a", 3), ("b", 5)], random.Random(s))) for s in range(800)]
    assert 240 < firsts.count("a") < 360
    # A billion runs cost no list of a billion.
    huge = closed_runs([("a", 10**9), ("b", 10**9)], random.Random(1))
    assert len(list(itertools.islice(huge, 5))) == 5
