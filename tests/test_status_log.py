"""The course's Lab 5 status tracker: `GET /status` on every component, the run's status
log (its typed section, `bench` and `run --status-log`), and the guide's report of it in
the HTML page."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from labsim.cli import main
from labsim.model.result import figure_problem
from labsim.model.scenario import load_scenarios
from labsim.run import BenchOptions, BenchResult, run_bench
from labsim.views.report import svg
from labsim.views.report.html import render_bench
from labsim.views.report.status import summary, summary_columns
from labsim.views.report.text import render_text

from .conftest import make_topology
from .test_html_report import Page
from .test_patterns import token

# The guide's names (its SERVICE_NAME constants) and limits (config.py's RATE_LIMIT_CONFIG),
# with fewer gateway requests a window, so that a short run meets them.
LAB5 = {
    "load_balancer": {
        "status_name": "LOADBALANCER_AG",
        "rate_limit": {"requests": 10000, "window": 60},
    },
    "gateways": {"status_name": "APIGATEWAY", "rate_limit": {"requests": 4, "window": 60}},
    "cache": {"status_name": "CACHE", "rate_limit": {"requests": 10000, "window": 30}},
    "database": {"status_name": "DATABASE", "rate_limit": {"requests": 150, "window": 60}},
    "worker": {"status_name": "WORKER", "rate_limit": {"requests": 200, "window": 60}},
    "microservice": {"status_name": "MICROSERVICE"},
}
SERVICES = ["LOADBALANCER_AG", "APIGATEWAY", "WORKER", "MICROSERVICE", "CACHE", "DATABASE"]


@pytest.fixture(scope="module")
def lab5() -> BenchResult:
    """20 requests, one at a time, past 3 gateways that take 4 requests a minute each."""
    options = BenchOptions(requests=20, concurrency=1, mix={"data": 1, "longtask": 1})
    return asyncio.run(run_bench(make_topology(LAB5), options))


# --- GET /status on every component ----------------------------------------------------


async def test_status_counts_each_component_s_work_answers_by_code(sim):
    cluster, clock, client = await sim()

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        for _ in range(3):
            await client.request("lb", "GET", f"{cluster.url}/data", headers=auth)
        await client.request("lb", "POST", f"{cluster.url}/longtask", headers=auth, json_body={})
        gateway = cluster.urls["gateway-5003"]
        await client.request("g", "GET", f"{gateway}/nowhere", check=False)  # no route: 404
        for path in ("/health", "/metrics", "/admin/faults", "/status"):  # reports, not work
            await client.request("g", "GET", f"{gateway}{path}", check=False)
        return {
            c: (await client.request(c, "GET", f"{url}/status")).json()
            for c, url in cluster.urls.items()
        }

    status = await clock.run(scenario())
    assert status["load-balancer"] == {"load-balancer": {"200": 4, "202": 1}}
    gateways = [status[g][g] for g in cluster.topology.gateway_ids()]
    assert gateways == [{"200": 2}, {"200": 1, "202": 1}, {"200": 1}]  # round robin
    assert status["cache"] == {"cache": {"200": 4}}  # 3 reads, 1 fill
    assert status["database"] == {"database": {"200": 1}}
    assert status["worker"] == {"worker": {"202": 1}}
    assert status["microservice"] == {"microservice": {}}


async def test_a_429_shows_and_the_service_is_its_status_name(sim):
    cluster, clock, client = await sim(
        {"database": {"status_name": "DATABASE", "rate_limit": {"requests": 2, "window": 60}}}
    )
    url = cluster.urls["database"]

    async def scenario():
        for _ in range(3):
            await client.request("db", "GET", f"{url}/db", check=False)
        return (await client.request("db", "GET", f"{url}/status")).json()

    assert await clock.run(scenario()) == {"DATABASE": {"200": 2, "429": 1}}


async def test_the_load_balancer_answers_status_itself(sim):
    cluster, clock, client = await sim({"gateways": {"status_name": "APIGATEWAY"}})

    async def scenario():
        mine = await client.request("lb", "GET", f"{cluster.url}/status")
        again = await client.request("lb", "GET", f"{cluster.url}/status?x=1")
        gateway = await client.request("g", "GET", f"{cluster.urls['gateway-5000']}/status")
        return mine, again, gateway

    mine, again, gateway = await clock.run(scenario())
    assert mine.headers["X-Served-By"] == "load-balancer"
    assert mine.json() == again.json() == {"load-balancer": {}}  # /status is no work
    assert gateway.json() == {"APIGATEWAY": {}}  # no gateway saw any of them
    sent = [b.sent for b in cluster.components["load-balancer"].station.backends]
    assert sent == [0, 0, 0]


# --- the run's status log ------------------------------------------------------------


def test_a_run_has_a_status_log_only_when_its_scenario_asks(lab5):
    plain = asyncio.run(run_bench(make_topology(), BenchOptions(requests=4)))
    assert plain.status is None and "status" not in plain.as_dict()
    asked = asyncio.run(
        run_bench(make_topology({"status_tracker": True}), BenchOptions(requests=4))
    )
    assert list(asked.status) == [
        "load-balancer",
        "gateway-5000",
        "gateway-5003",
        "gateway-5006",
        "worker",
        "microservice",
        "cache",
        "database",
    ]
    assert asked.as_dict()["status"] == asked.status
    assert lab5.status is not None  # a status_name asks too


def test_replicas_that_share_a_name_are_added_up(lab5):
    log = lab5.status
    assert list(log) == SERVICES
    # Every request and the login reached the load balancer; 12 got past the gateways
    # (4 each), the 10 reads of the mix's order first, then the login's and 1 task.
    assert log["LOADBALANCER_AG"] == log["APIGATEWAY"] == {"200": 11, "202": 1, "429": 9}
    assert lab5.requests.by_status == {"200": 10, "202": 1, "429": 9}  # the login apart
    assert log["WORKER"] == {"202": 1} and log["MICROSERVICE"] == {}
    assert log["DATABASE"] == {"200": 1} and log["CACHE"] == {"200": 11}  # 10 reads, 1 fill
    assert lab5.rate_limited == 9


def test_expectations_read_the_status_log(lab5, tmp_path):
    assert figure_problem("status.APIGATEWAY.429", ["data"]) is None
    assert "names a section" in figure_problem("status.APIGATEWAY", ["data"])
    assert lab5.figure("status.APIGATEWAY.429") == 9
    assert lab5.figure("status.WORKER.429") is None  # never answered: not measured
    path = tmp_path / "lab5.toml"
    path.write_text('expect = ["status.DATABASE.200 == 1", "status.NOPE.200 == 1"]\n')
    [scenario] = load_scenarios(path)
    assert [e.path for e in scenario.expect] == [
        ("status", "DATABASE", "200"),
        ("status", "NOPE", "200"),
    ]


def test_the_text_report_lists_the_status_log(lab5):
    text = render_text(lab5)
    assert "status log  answers per service, by status code" in text
    assert "  LOADBALANCER_AG  21  200: 11, 202: 1, 429: 9" in text
    assert "  MICROSERVICE      0  none" in text


# --- the guide's report in the HTML page -------------------------------------------------

BAR = re.compile(
    r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="([^"]+)">'
    r"<title>([^<]+): ([^<]+) (\d+)</title></rect>"
)


def _chart(page: str, label: str) -> str:
    found = re.search(rf'<svg [^>]*aria-label="{label}"[^>]*>(.*?)</svg>', page, re.S)
    assert found, label
    return found.group(1)


def _bars(chart: str) -> list[tuple[float, str, str, str, int]]:
    """(height, fill, service, series, count) of each bar."""
    return [(float(h), fill, c, s, int(n)) for h, fill, c, s, n in BAR.findall(chart)]


def test_the_page_shows_the_guide_s_three_views(lab5):
    page = render_bench(lab5)
    charts = Page(page).charts
    assert "Total requests per service" in charts and "Status codes per service" in charts
    totals = _bars(_chart(page, "Total requests per service"))
    assert [(c, n) for _, _, c, _, n in totals] == [
        ("LOADBALANCER_AG", 21),
        ("APIGATEWAY", 21),
        ("WORKER", 1),
        ("CACHE", 11),
        ("DATABASE", 1),
    ]  # MICROSERVICE answered nothing: no bar
    per_request = [h / n for h, _, _, _, n in totals]
    assert max(per_request) - min(per_request) < 0.1  # heights proportional to counts


def test_status_codes_are_grouped_bars_with_every_non_2xx_red(lab5):
    bars = _bars(_chart(render_bench(lab5), "Status codes per service"))
    reds, greens = set(svg.STATUS_SHADES["5"]), set(svg.STATUS_SHADES["2"])
    assert {(c, s, n) for _, _, c, s, n in bars} == {
        (service, code, n) for service, codes in lab5.status.items() for code, n in codes.items()
    }
    for _, fill, service, code, _ in bars:
        assert fill in (greens if code.startswith("2") else reds), (service, code, fill)
    assert any(code == "429" for *_, code, _ in bars)
    per_request = [h / n for h, *_, n in bars]
    assert max(per_request) - min(per_request) < 0.1


def test_the_page_has_the_guide_s_text_summary(lab5):
    page = render_bench(lab5)
    for line in (
        "Status Report Summary:",
        "Service: LOADBALANCER_AG",
        "Total Requests: 21",
        "  Code 200: 11 requests",
        "  Code 429: 9 requests",
        "Service: MICROSERVICE",
        "Total Requests: 0",
        "Service: DATABASE",
        "  Code 200: 1 requests",
    ):
        assert line in page, line
    left, right = summary_columns(lab5.status)
    entries = summary(lab5.status)
    assert (left + "\n" + right).split("\n") == "\n".join(entries).split("\n")
    # As the guide joins its entries: the title's own line break, then each service's.
    assert left.startswith("Status Report Summary:\n\n\nService: LOADBALANCER_AG\n")
    assert "print" in page and "PDF" in page  # what the page says of the guide's PDF


def test_a_run_without_a_status_log_has_none_of_it():
    plain = asyncio.run(run_bench(make_topology(), BenchOptions(requests=4)))
    page = render_bench(plain)
    assert "Status log" not in page and "Total requests per service" not in page
    assert "status log" not in render_text(plain)


# --- the command line --------------------------------------------------------------------


def test_bench_writes_the_guide_s_status_log_json(tmp_path, capsys):
    log, report = tmp_path / "status_log.json", tmp_path / "r.json"
    args = ["bench", "--requests", "6", "--status-log", str(log), "--json", str(report)]
    assert main(args) == 0
    written = log.read_text()
    status = json.loads(written)
    assert written == json.dumps(status, indent=4) + "\n"  # as status_tracker.save_log
    assert status == json.loads(report.read_text())["status"]
    assert status["load-balancer"] == {"200": 4, "202": 3}  # the login too
    assert "status log" in capsys.readouterr().out


def test_run_writes_a_status_log_per_variant(tmp_path, capsys):
    scenario = tmp_path / "two ways.toml"
    scenario.write_text(
        '[load]\nrequests = 4\n[[variants]]\nname = "plain"\n'
        '[[variants]]\nname = "with a/slash"\n[variants.database]\nstatus_name = "DB"\n'
    )
    out = tmp_path / "logs"
    assert main(["run", str(scenario), "scenarios/weighted.toml", "--status-log", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "two-ways.plain.status_log.json",
        "two-ways.with-a-slash.status_log.json",
        "weighted.status_log.json",
    ]
    assert "DB" in json.loads((out / "two-ways.with-a-slash.status_log.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--status-log", "missing/log.json"], "--status-log missing/log.json: folder"),
        (["bench", "--status-log", "."], "--status-log '.': give a file name"),
        (["bench", "--status-log", "same", "--json", "same"], "--json and --status-log both"),
        (
            ["bench", "--status-log", "log.json", "--target", "http://127.0.0.1:9"],
            "--status-log reads every component",
        ),
        (["run", "s.toml", "--status-log", "file"], "is a file; give a folder"),
    ],
)
def test_a_bad_status_log_path_is_one_line_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    (tmp_path / "s.toml").write_text("[load]\nrequests = 1\n")
    assert main([*args, "--requests", "1"] if args[0] == "bench" else args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
