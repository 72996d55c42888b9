"""The HTML report: self-contained, drawn from the run's own figures; `--html` on the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from html.parser import HTMLParser

import pytest

from labsim.cli import main
from labsim.core.metrics import Histogram, distribution
from labsim.core.timeline import Timeline
from labsim.model.scenario import load_scenarios
from labsim.model.topology import load_topology
from labsim.run import BenchOptions, BenchResult, run_bench
from labsim.views.report.html import render_bench
from labsim.views.report.svg import nice_ticks, status_colours

from .conftest import make_topology

CHARTS = {
    "Latency distribution per endpoint",
    "Requests per gateway",
    "Cache hits and misses over time",
    "Requests completed over time",
    "Worker queue over time",
    "Requests per second over time",  # the figures over time: see test_intervals.py
    "Latency over time",  # (no errors chart: the lab's run has no failure)
    "Status codes per component",
}


class Page(HTMLParser):
    """What a browser would fetch from the page besides itself, its charts and hover titles."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.tags: set[str] = set()
        self.charts: list[str] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        for name in ("src", "href", "xlink:href"):
            if name in attrs and not attrs[name].endswith(".html"):
                self.fetches.append(attrs[name])
        if tag == "svg":
            self.charts.append(attrs["aria-label"])
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data.strip())

    def handle_endtag(self, tag):
        self._in_title = False


@pytest.fixture(scope="module")
def lab() -> BenchResult:
    return asyncio.run(run_bench(load_topology(None), BenchOptions()))


def test_the_page_is_self_contained_with_every_chart(lab):
    page = Page(render_bench(lab))
    assert page.fetches == []
    assert "script" not in page.tags and "link" not in page.tags
    assert set(page.charts) == CHARTS
    assert "url(" not in render_bench(lab)


def test_the_charts_show_the_run_s_own_figures(lab):
    titles = Page(render_bench(lab)).titles
    # requests per gateway: one bar each, the counts the text report gives
    for gateway, n in lab.gateways.items():
        assert f"{gateway}: requests {n}" in titles
    # status codes per component: the load balancer answered every request and the login
    assert "load-balancer: 200 51" in titles and "load-balancer: 202 50" in titles
    assert "database: 200 10" in titles
    # latency distribution: 40 hits in the first bin, 10 misses in the last
    hits = [t for t in titles if ": data hit " in t]
    misses = [t for t in titles if ": data miss " in t]
    assert hits == ["3 to 3.93: data hit 40"] and misses == ["1,528 to 2,004: data miss 10"]
    # cache over time: the lines end at the totals
    assert "hits so far: 40 at the end" in titles and "misses so far: 10 at the end" in titles
    assert "running: 0 at the end" in titles


def test_settings_and_summary_are_in_the_page(lab):
    text = render_bench(lab)
    for needle in (
        "round_robin",
        "database 2000 ms",
        "TTL 120 s",
        "40 hits, 10 misses, hit ratio 0.80",
        "measured 668.0x, predicted 668.0x",
        "No request failed.",
    ):
        assert needle in text


def test_the_timeline_follows_the_run(lab):
    timeline = lab.timeline
    t = timeline["t_s"]
    assert t[0] == 0 and t == sorted(t) and len(t) <= Timeline().limit
    assert timeline["hits"][-1] == 40 and timeline["misses"][-1] == 10
    # nothing is answered before the first 2 s database reads return
    before = [i for i, x in enumerate(t) if x < 2.0]
    assert all(timeline["ok"][i] == 0 for i in before)
    # 50 five-second tasks run at once after 2 s, and the worker finishes them all
    assert max(timeline["worker_running"]) == 50 and timeline["worker_running"][-1] == 0
    assert t[-1] == pytest.approx(lab.time.simulated_s + 5, abs=0.01)


def test_a_worker_queue_shows_waiting_tasks():
    topology = make_topology({"worker": {"concurrency": 2, "task_duration": 1}})
    r = asyncio.run(
        run_bench(topology, BenchOptions(requests=10, mix={"longtask": 1}, concurrency=10))
    )
    timeline = r.timeline
    assert max(timeline["worker_queued"]) == 8 and max(timeline["worker_running"]) == 2
    assert timeline["worker_queued"][-1] == 0
    assert timeline["t_s"][-1] == pytest.approx(5.0, abs=0.05)  # 10 tasks, 2 at a time


def test_a_failed_run_lists_its_failures_and_failed_latencies():
    topology = make_topology({"worker": {"concurrency": 1, "queue_size": 1, "task_duration": 10}})
    r = asyncio.run(
        run_bench(topology, BenchOptions(requests=5, mix={"longtask": 1}, concurrency=1))
    )
    text = render_bench(r)
    assert "queue is full" in text
    assert r.latency_distribution["series"]["longtask failed"] != []
    assert sum(r.latency_distribution["series"]["longtask failed"]) == 3


def test_a_remote_run_says_what_it_cannot_know(lab):
    remote = dataclasses.replace(
        lab,
        target="http://127.0.0.1:8000",
        scenario=None,
        seed=None,
        settings=None,
        components=None,
        timeline={k: v for k, v in lab.timeline.items() if not k.startswith("worker")},
    )
    text = render_bench(remote)
    assert "Not known for a topology in another process." in text
    assert "Per component only for a topology in this process" in text
    assert "the running topology&#x27;s" in text
    assert "Status codes per component" not in Page(text).charts


def test_distribution_shares_log_bins_across_series():
    fast, slow, empty = Histogram(), Histogram(), Histogram()
    for _ in range(4):
        fast.add(0.003)
    slow.add(2.0)
    d = distribution({"fast": fast, "slow": slow, "empty": empty}, bins=10)
    assert d["series"] == {"fast": [4] + [0] * 9, "slow": [0] * 9 + [1]}
    edges = d["edges_ms"]
    assert edges[0] == 3.0 and edges[-1] == 2000.0 and len(edges) == 11
    ratios = [b / a for a, b in itertools.pairwise(edges)]
    assert max(ratios) == pytest.approx(min(ratios), rel=0.01)
    assert distribution({"empty": empty}) == {"edges_ms": [], "series": {}}
    one = Histogram()
    one.add(0.001)
    assert distribution({"one": one}, bins=3)["series"] == {"one": [1, 0, 0]}


def test_timeline_thins_to_even_spacing_in_bounded_memory():
    timeline = Timeline(step=1, limit=10)
    while timeline.next_at() <= 1000:  # a run 1000 steps long
        at = timeline.next_at()
        timeline.add(at, {"n": int(at)})
    assert 5 <= len(timeline.t) < 10 and timeline.step == 128
    gaps = {b - a for a, b in itertools.pairwise(timeline.t)}
    assert gaps == {128}
    assert timeline.series["n"] == timeline.t  # values stay with their times


def test_ticks_and_status_colours():
    assert nice_ticks(40) == [0, 10, 20, 30, 40]
    assert nice_ticks(51) == [0, 20, 40, 60]
    assert nice_ticks(0) == [0.0, 1.0]
    colours = status_colours(["200", "202", "503", "error"])
    assert colours["200"] != colours["202"]
    assert colours["503"].startswith("#c") and colours["error"] == "#888888"


def test_cli_bench_writes_html_and_json(tmp_path, capsys):
    html, data = tmp_path / "report.html", tmp_path / "report.json"
    assert main(["bench", "--requests", "20", "--html", str(html), "--json", str(data)]) == 0
    assert set(Page(html.read_text()).charts) == CHARTS
    assert data.exists()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/report.html", "folder"),
        (".", "give a file name"),
        ("nodir/", "give a file name"),
        ("file/report.html", "is not a folder"),
    ],
)
def test_cli_bench_html_bad_path_is_one_line_exit_2(tmp_path, capsys, monkeypatch, where, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    assert main(["bench", "--requests", "5", "--html", where]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--html" in err and where in err and message in err


def test_cli_run_writes_a_page_per_file_and_an_index(tmp_path, capsys):
    out = tmp_path / "reports"
    files = ["scenarios/stampede.toml", "scenarios/weighted.toml"]
    assert main(["run", *files, "--html", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "stampede.html", "weighted.html"]
    index = (out / "index.html").read_text()
    assert re.search(r'href="stampede.html">scenarios/stampede.toml</a>', index)
    assert '<td class="pass">6 of 6 passed</td>' in index  # stampede: 3 per variant
    assert '<td class="pass">4 of 4 passed</td>' in index
    described = "<td>10 concurrent misses make 10 database calls; coalesced, they make 1</td>"
    assert described in index  # each scenario's description beside its link
    stampede = (out / "stampede.html").read_text()
    assert "Variants side by side" in stampede and "PASS" in stampede
    assert Page(stampede).fetches == [] and Page(stampede).charts.count("Requests per gateway") == 2
    assert f"HTML reports: {out / 'index.html'}" in capsys.readouterr().out


def test_cli_run_html_on_a_file_is_one_line_exit_2(tmp_path, capsys):
    taken = tmp_path / "file"
    taken.write_text("")
    assert main(["run", "scenarios/stampede.toml", "--html", str(taken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file; give a folder" in err


def test_cli_run_html_marks_a_failed_expectation(tmp_path, capsys):
    scenario = tmp_path / "wrong.toml"
    scenario.write_text('name = "wrong"\nexpect = ["db_calls == 99"]\n[load]\nrequests = 5\n')
    assert main(["run", str(scenario), "--html", str(tmp_path / "out")]) == 1
    assert '<td class="fail">0 of 1 passed</td>' in (tmp_path / "out" / "index.html").read_text()
    page = (tmp_path / "out" / "wrong.html").read_text()
    assert '<td class="fail">FAIL</td>' in page and "<code>db_calls == 99</code>" in page


def test_cli_refuses_a_folder_it_cannot_write_into_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as root, every folder is open
    assert main(["bench", "--requests", "5", "--html", str(tmp_path / "r.html")]) == 2
    assert f"no permission to write into folder {tmp_path}" in capsys.readouterr().err
    assert main(["run", "scenarios/stampede.toml", "--html", str(tmp_path)]) == 2
    assert f"no permission to write into folder {tmp_path}" in capsys.readouterr().err


def test_cli_refuses_one_file_for_json_and_html(tmp_path, capsys):
    same = str(tmp_path / "report")
    assert main(["bench", "--requests", "5", "--json", same, "--html", same]) == 2
    assert "--json and --html both name" in capsys.readouterr().err


def test_index_links_survive_odd_file_names(tmp_path, capsys):
    scenario = tmp_path / "z#1 a.toml"
    scenario.write_text('name = "odd"\n[load]\nrequests = 5\n')
    assert main(["run", str(scenario), "--html", str(tmp_path / "out")]) == 0
    assert 'href="z%231%20a.html"' in (tmp_path / "out" / "index.html").read_text()
    assert (tmp_path / "out" / "z#1 a.html").exists()


def test_dropped_requests_show_apart_from_statuses():
    [unprotected, _] = load_scenarios("scenarios/gateway-failure.toml")
    r = asyncio.run(
        run_bench(unprotected.topology, BenchOptions(requests=1000), unprotected.faults)
    )
    down = r.components["gateway-5003"].statuses
    assert down["dropped"] >= r.requests.failed > 0  # aiohttp may send a GET twice
    assert "503" not in down  # a down gateway answers nothing
    titles = Page(render_bench(r)).titles
    assert f"gateway-5003: dropped {down['dropped']}" in titles
