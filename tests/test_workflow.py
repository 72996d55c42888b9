"""What load-test users reach for: thresholds, comparing runs, --version, --port-offset,
and messages that say what to do."""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path

import pytest

from labsim.cli import main
from labsim.model.config import ConfigError, gateway_settings
from labsim.model.topology import load_topology, with_overrides
from labsim.views.compare import Row, parse_rule


def test_version_names_the_installed_package(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"labsim {metadata.version('labsim')}"


def test_thresholds_print_and_decide_the_exit_code(capsys):
    ok = ["--threshold", "failures==0", "--threshold", "cache.hit_ratio>=0.8"]
    assert main(["bench", *ok]) == 0
    out = capsys.readouterr().out
    assert "thresholds\n  PASS  failures==0  (measured 0)\n" in out
    assert main(["bench", "--threshold", "data.p99_ms<500"]) == 1
    assert "  FAIL  data.p99_ms<500  (measured 2,004)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("lunch<5", "'lunch' is not a figure of the report"),
        ("data.p99_ms<", "is not of the form 'figure op number'"),
        ("data.p99_ms<nan", "'nan' is not a finite number"),
    ],
)
def test_a_bad_threshold_is_one_line_exit_2_before_the_run(capsys, threshold, message):
    assert main(["bench", "--threshold", threshold]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labsim: error: command line: --threshold: ") and message in err
    assert err.count("\n") == 1


def run_json(tmp_path, name: str, *options: str) -> str:
    path = str(tmp_path / f"{name}.json")
    assert main(["bench", "--requests", "20", "--json", path, *options]) == 0
    return path


def test_compare_shows_each_figure_and_fails_on_a_regression(tmp_path, capsys):
    first = run_json(tmp_path, "a")
    second = run_json(tmp_path, "b", "--db-latency", "2.5")
    capsys.readouterr()
    rules = ["--fail-if", "data.p99_ms>+10%", "--fail-if", "failures>0"]
    assert main(["compare", first, second, *rules]) == 1
    out = capsys.readouterr().out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line[:2] == "  "}
    p99 = json.loads(Path(first).read_text())["endpoints"]["data"]["p99_ms"]
    assert table["endpoints.data.p99_ms"][:2] == [f"{p99:g}", f"{p99 + 500:g}"]
    change = 500 / p99 * 100
    assert table["endpoints.data.p99_ms"][2] == f"+{change:.1f}"
    assert table["requests.failed"] == ["0", "0", "+0.0", "%"]
    assert f"  FAIL  data.p99_ms>+10%  (change +{change:.4g} %)" in out
    assert "  ok    failures>0  (change +0)" in out
    assert main(["compare", first, first, *rules]) == 0


@pytest.mark.parametrize(
    ("files", "rule", "message"),
    [
        (("nowhere.json",), None, "nowhere.json: no such report"),
        (("notjson",), None, "not JSON"),
        (("list",), None, "not a labsim report"),
        (("nan",), None, "not JSON"),
        ((), "data.p99_ms>>1", "not of the form 'figure op change'"),
        ((), "lunch>1%", "neither report has the figure 'lunch'"),
    ],
)
def test_compare_mistakes_are_one_line_exit_2(tmp_path, capsys, files, rule, message):
    good = run_json(tmp_path, "good")
    (tmp_path / "notjson").write_text("{")
    (tmp_path / "list").write_text("[1]")
    (tmp_path / "nan").write_text('{"requests": {"total": NaN}}')
    paths = [str(tmp_path / f) if f != "nowhere.json" else f for f in files] or [good]
    args = ["compare", *[*paths, good][:2]] + (["--fail-if", rule] if rule else [])
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_rule_without_percent_is_an_absolute_change():
    rule = parse_rule("requests.failed>0")
    assert rule.broken(Row("requests.failed", 0, 3)) == (True, 3)
    assert parse_rule("cache.hit_ratio<-5%").broken(Row("cache.hit_ratio", 0.8, 0.4)) == (
        True,
        -50.0,
    )
    # A figure one report lacks breaks the rule: a check that cannot be made must not pass.
    assert parse_rule("x>1%").broken(Row("x", None, 1)) == (True, None)
    # From nothing to something is an infinite rise, not "not measured".
    assert parse_rule("requests.failed>+10%").broken(Row("requests.failed", 0, 100)) == (
        True,
        math.inf,
    )
    assert parse_rule("requests.failed>+10%").broken(Row("requests.failed", 0, 0)) == (False, 0.0)


def test_port_offset_moves_every_port_and_keeps_the_ids():
    moved = with_overrides(load_topology(None), port_offset=1000)
    assert moved.ports() == {
        "database": 6002,
        "cache": 6004,
        "microservice": 6001,
        "worker": 6005,
        "gateway-5000": 6000,
        "gateway-5003": 6003,
        "gateway-5006": 6006,
        "load-balancer": 9000,
    }
    # Twice, and with --gateways on top: still the scenario's ids.
    again = with_overrides(moved, port_offset=10, gateways=4)
    assert again.gateways.ports == (6010, 6013, 6016, 6019)
    assert again.gateway_ids() == ["gateway-5000", "gateway-5003", "gateway-5006", "gateway-5009"]
    with pytest.raises(ConfigError, match="--port-offset 60000: port 8000 would become 68000"):
        with_overrides(load_topology(None), port_offset=60000)


def test_port_offset_reaches_bench_with_the_scenarios_ids(capsys):
    assert main(["bench", "--requests", "10", "--port-offset", "7"]) == 0
    out = capsys.readouterr().out
    assert "gateway-5000" in out and "gateway-5007" not in out


def test_an_unknown_top_level_key_lists_every_key(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('nam = "x"\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    for key in ("name", "load", "faults", "expect", "variants", "auth", "exposure"):
        assert key in err.split("known: ")[1]


def test_a_full_worker_queue_is_explained_with_how_to_size_it(tmp_path, capsys):
    path = tmp_path / "small.toml"
    path.write_text("[worker]\nconcurrency = 2\nqueue_size = 3\n")
    assert main(["bench", "--scenario", str(path), "--mix", "longtask=1", "--requests", "8"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "why the worker's queue is full" in out
    assert "2 tasks at once, queue of 3" in out and "queue_size >= N - concurrency" in out


def test_the_gateways_option_says_where_its_ports_start(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "3 ports apart from the scenario's first gateway port" in help_text


def test_port_offset_keeps_the_hosts_and_own_stations_of_gateways(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text(
        '[hosts]\ngateway-5003 = "127.0.0.2"\ncache = "127.0.0.3"\n'
        "[gateways.each.gateway-5006]\nconcurrency = 2\n"
    )
    moved = with_overrides(load_topology(path), port_offset=10)
    assert moved.hosts == {"gateway-5003": "127.0.0.2", "cache": "127.0.0.3"}
    assert moved.ports()["gateway-5003"] == 5013 and moved.host_of("gateway-5003") == "127.0.0.2"
    assert gateway_settings(moved, "gateway-5006").concurrency == 2


@pytest.mark.parametrize(
    ("figure", "said"),
    [
        ("9" * 4000, "999999999999... (4,000 characters) is larger than 1e+15"),
        ("1e999", "1e999 is larger than 1e+15"),
        ("-1e999", "-1e999 is larger than 1e+15"),
        ("2e15", "2e15 is larger than 1e+15"),
    ],
)
def test_compare_refuses_a_figure_no_run_measures(tmp_path, capsys, figure, said):
    good = run_json(tmp_path, "good")
    bad = tmp_path / "bad.json"
    bad.write_text('{"requests": {"total": ' + figure + "}}")
    capsys.readouterr()
    assert main(["compare", good, str(bad), "--fail-if", "requests.total>+1%"]) == 2
    assert capsys.readouterr().err == (
        f"labsim: error: {bad}: {said}: not a figure `bench --json` writes\n"
    )
