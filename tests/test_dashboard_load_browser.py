"""The dashboard's load control in a browser: `labsim up` in a subprocess, its page in
headless chromium (skipped with the reason where there is none, as the dashboard's other
browser tests). The saturation lesson as a slider: a database of one slot held 20 ms a
request serves 50 requests a second; past that rate its line and p99 climb, below it
they drain. And a scenario's user flow picked in the page: its steps' figures appear."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import Up, free_ports, write_scenario
from .test_dashboard_browser import browser, page  # noqa: F401

SLOT_S = 0.02  # the database's service time: 50 requests a second at most
WAIT_MS = 10_000

# The figure a page shows, as a number: a station's line ("12 of 1,000,000 · 0"), its p99
# ("p50 3.10 ms · p99 1.20 s, last minute"), or one of the load's ("1,234", "1.20 s").
_READ = """([selector, what]) => {
  const node = document.querySelector(selector);
  if (!node) return null;
  const text = node.textContent;
  const time = (m) => (m ? Number(m[1].replace(/,/g, "")) * (m[2] === "s" ? 1000 : 1) : null);
  if (what === "count") {
    const m = /^[\\d,]+/.exec(text);
    return m ? Number(m[0].replace(/,/g, "")) : null;
  }
  if (what === "p99") return time(/p99 ([\\d.,]+) (ms|s)/.exec(text));
  return time(/^([\\d.,]+) (ms|s)$/.exec(text));
}"""

LINE = '[data-testid="box-database"] [data-field="waiting"]'
STATION_P99 = '[data-testid="box-database"] [data-field="latency-spark-caption"]'
LOAD = '#load [data-load="{}"]'


def read(shown: Page, selector: str, what: str) -> float | None:
    return shown.evaluate(_READ, [selector, what])


def wait_until(shown: Page, selector: str, what: str, test: str) -> None:
    """Until the figure at `selector` passes `test` (JavaScript of `v`), as the page
    updates it."""
    shown.wait_for_function(
        f"(args) => {{ const v = ({_READ})(args); return v !== null && ({test}); }}",
        arg=[selector, what],
        timeout=WAIT_MS,
    )


@pytest.fixture
def station_link(tmp_path):
    """The dashboard link of a `labsim up` whose reads all go to a database of one slot."""
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path / "s.toml", ports)
    text = scenario.read_text()
    text = text.replace("[gateways]\n", "[gateways]\nuse_cache = false\n", 1)
    text = text.replace("[database]\n", f"[database]\nconcurrency = 1\nservice = {SLOT_S}\n", 1)
    scenario.write_text(text.replace("latency = 0.2", "latency = 0", 1))
    up = Up("--scenario", str(scenario), "--quiet", "--dashboard-port", str(panel))
    yield next(line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard"))
    up.stop()


def test_the_rate_past_a_station_s_capacity_fills_its_line_and_lowering_it_drains_it(
    page: Page,  # noqa: F811
    station_link: str,
):
    page.set_default_timeout(WAIT_MS)
    page.goto(station_link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    message = page.get_by_test_id("load-message")
    rate, slider = page.get_by_test_id("load-rate"), page.get_by_test_id("load-rate-slider")
    expect(slider).to_have_attribute("max", "500")
    expect(page.get_by_test_id("load-flow")).to_be_hidden()  # the scenario has no flows

    # What the server refuses, the page shows: a rate above its limit starts nothing.
    rate.fill("5000")
    page.get_by_test_id("load-start").click()
    expect(message).to_have_text("rate 5000/s is above the dashboard's limit of 500/s")
    expect(message).to_have_class(re.compile(r"\bproblem\b"))
    page.get_by_test_id("load-mix").fill("data=1, nope=2")
    rate.fill("20")
    page.get_by_test_id("load-start").click()
    expect(message).to_have_text(re.compile("^mix: 'nope' is neither an endpoint"))
    expect(page.locator(LOAD.format("sent"))).to_have_text("\u2013")  # nothing was sent

    # Below capacity (20 of 50 a second): answered at about the service time.
    page.get_by_test_id("load-mix").fill("data=1")
    page.get_by_test_id("load-start").click()
    expect(message).to_have_text("Load started at 20/s: data \u00d71 (seed 1).")
    expect(page.get_by_test_id("load-stop")).to_be_enabled()
    expect(page.get_by_test_id("load-start")).to_be_disabled()
    wait_until(page, LOAD.format("answered"), "count", "v >= 10")
    calm = read(page, LOAD.format("p99"), "time")
    assert calm is not None and calm < 500, calm

    # Past capacity (150 a second): the database's line and p99 climb, and the load's.
    slider.fill("150")
    expect(message).to_have_text("The load now sends 150 requests a second.")
    expect(rate).to_have_value("150")
    expect(page.locator(LOAD.format("rate"))).to_have_text("150/s")
    wait_until(page, LINE, "count", "v >= 30")
    wait_until(page, STATION_P99, "p99", "v >= 300")
    wait_until(page, LOAD.format("p99"), "time", "v >= 300")
    wait_until(page, LOAD.format("in-flight"), "count", "v >= 30")

    # Back below it (5 a second): the line drains, and the station's p99 with it.
    slider.fill("5")
    expect(message).to_have_text("The load now sends 5 requests a second.")
    wait_until(page, LINE, "count", "v === 0")
    wait_until(page, STATION_P99, "p99", "v < 100")
    wait_until(page, LOAD.format("in-flight"), "count", "v <= 3")

    page.get_by_test_id("load-stop").click()
    expect(message).to_have_text(re.compile(r"^Load stopped: [\d,]+ sent, [\d,]+ answered"))
    expect(page.locator(LOAD.format("rate"))).to_have_text("5/s, stopped")
    expect(page.get_by_test_id("load-start")).to_be_enabled()
    sent = read(page, LOAD.format("sent"), "count")
    assert sent is not None and sent >= 100


FLOWS = """
[[load.flows]]
name = "reader"
steps = [
  { request = "POST /login" },
  { request = "GET /data", repeat = 3, think = 0.01 },
  { request = "POST /longtask", body = { task = "report" } },
]

[[load.flows]]
name = "browser"
steps = [{ request = "GET /data" }]
"""
STEP = '[data-testid="load-steps"] tr[data-step="{}"] [data-col="{}"]'


@pytest.fixture
def flow_link(tmp_path):
    """The dashboard link of a `labsim up` whose scenario has two user flows."""
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path / "s.toml", ports, FLOWS)
    up = Up("--scenario", str(scenario), "--quiet", "--dashboard-port", str(panel))
    yield next(line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard"))
    up.stop()


def test_a_flow_picked_in_the_page_runs_and_its_steps_figures_appear(
    page: Page,  # noqa: F811
    flow_link: str,
):
    page.set_default_timeout(WAIT_MS)
    page.goto(flow_link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    choice = page.get_by_test_id("load-flow")
    expect(choice.locator("option")).to_have_text(
        [
            "none: the mix",
            "reader (3 steps, 5 requests a run)",
            "browser (1 step, 1 request a run)",
        ]
    )
    choice.select_option("reader")
    expect(page.get_by_test_id("load-mix")).to_be_disabled()  # a start refuses both
    expect(page.locator("#load-rate-label")).to_have_text("Rate (runs/s)")
    page.get_by_test_id("load-rate").fill("20")
    page.get_by_test_id("load-start").click()
    message = page.get_by_test_id("load-message")
    expect(message).to_have_text("Load started at 20 runs/s of the flow reader (seed 1).")
    expect(page.locator('[data-load-label="in-flight"]')).to_have_text("runs in flight")
    steps = page.get_by_test_id("load-steps")
    expect(steps).to_be_visible()
    expect(steps.locator("tbody th")).to_have_text(["post-login", "get-data", "post-longtask"])
    wait_until(page, STEP.format("get-data", "count"), "count", "v >= 30")
    wait_until(page, STEP.format("get-data", "p99"), "time", "v > 0")
    expect(page.locator(STEP.format("get-data", "failed"))).to_have_text("0")

    page.get_by_test_id("load-stop").click()
    expect(message).to_have_text(re.compile(r"^Load stopped: [\d,]+ runs started, [\d,]+ ran"))
    runs = read(page, LOAD.format("sent"), "count")
    logins = read(page, STEP.format("post-login", "count"), "count")
    data = read(page, STEP.format("get-data", "count"), "count")
    assert runs is not None and runs == logins and data is not None
    assert data <= 3 * runs  # each run reads /data 3 times at most
