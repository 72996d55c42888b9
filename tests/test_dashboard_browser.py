"""The dashboard end to end: `labsim up` in a subprocess, its page in a headless chromium;
and the page's layout of topologies the lab does not have (`dashboard_fakes`).

Debian's `chromium`, driven by Playwright for Python (Playwright's own browser download
does not work everywhere); LABSIM_CHROMIUM names another chromium binary. Without a
browser these tests skip with the reason, unless LABSIM_REQUIRE_BROWSER is set (CI).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from itertools import combinations, pairwise

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from . import dashboard_fakes as fakes
from .conftest import Up, free_ports, write_scenario

CHROMIUM = os.environ.get("LABSIM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000
NO_FIGURE = "\u2013"  # what the page shows where there is no figure yet: an en dash

# A gateway taken down is out of rotation at once: its first failed GET ejects it and is
# retried on another gateway, and health checks every 0.1 s keep it out while it is down.
PATTERNS = """
[load_balancer.health_check]
interval = 0.1
timeout = 0.5
unhealthy_threshold = 1
healthy_threshold = 2
[load_balancer.outlier]
consecutive_failures = 1
base_ejection = 1.0
[load_balancer.retry]
attempts = 1
min_retries = 100
"""


@pytest.fixture(scope="module")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = (
            f"no chromium at {CHROMIUM}: apt-get install chromium "
            "(or set LABSIM_CHROMIUM to a chromium binary)"
        )
        # CI installs the browser and sets LABSIM_REQUIRE_BROWSER: there, a missing
        # browser is a failure; on a user's machine these tests are skipped.
        if os.environ.get("LABSIM_REQUIRE_BROWSER"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def run_lab(tmp_path, patterns: str):
    """(up, load balancer URL, dashboard link, gateway ids) of a running `labsim up`."""
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path / "s.toml", ports, patterns)
    up = Up("--scenario", str(scenario), "--quiet", "--dashboard-port", str(panel))
    link = next(line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard"))
    yield up, f"http://127.0.0.1:{ports[0]}", link, [f"gateway-{p}" for p in ports[1:4]]
    if up.proc.poll() is None:
        up.stop()


@pytest.fixture
def lab(tmp_path):
    """The lab with health checks, ejection and retries (PATTERNS)."""
    yield from run_lab(tmp_path, PATTERNS)


@pytest.fixture
def plain_lab(tmp_path):
    """The lab as it comes: the load balancer sends to a gateway whatever its state."""
    yield from run_lab(tmp_path, "")


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context()  # a session of its own: no token kept from another test
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


class Client:
    """A user of the lab: logs in once, then GETs through the load balancer."""

    def __init__(self, url: str) -> None:
        self.url = url
        answer = self._send("POST", "/login", {"username": "user1", "password": "password123"})
        self.token = json.loads(answer[2])["token"]

    def _send(self, method: str, path: str, body: dict | None = None) -> tuple[int, str, bytes]:
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = self.token
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.headers["X-Served-By"], resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["X-Served-By"], e.read()

    def get_data(self, times: int) -> Counter[tuple[int, str]]:
        """(status, gateway that served it) of each of `times` GET /data."""
        return Counter(self._send("GET", "/data")[:2] for _ in range(times))


def box(page: Page, component: str) -> Locator:
    return page.get_by_test_id(f"box-{component}")


def shown(page: Page, component: str, field: str) -> Locator:
    return box(page, component).locator(f'[data-field="{field}"]')


def number(locator: Locator) -> int:
    return int(locator.inner_text().replace(",", ""))


def admin_post(link: str, path: str, body: dict | None = None) -> int:
    """POST to the dashboard's API with the token of `link`, as the page does."""
    base, token = link.split("#token=", 1)
    request = urllib.request.Request(
        base.rstrip("/") + path,
        json.dumps(body).encode() if body is not None else b"",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status


def test_the_page_follows_traffic_and_the_balancer_routes_around_a_gateway_taken_down(lab, page):
    up, lb, link, gateways = lab
    page.goto(link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    assert "token" not in page.url  # taken out of the address bar, kept in the session
    expect(shown(page, "load-balancer", "requests")).to_have_text("0")

    client = Client(lb)  # one login, then GETs
    assert client.get_data(30) == Counter({(200, g): 10 for g in gateways})
    expect(shown(page, "load-balancer", "requests")).to_have_text("31")
    for gateway in gateways:
        expect(shown(page, gateway, "routed")).to_have_text(re.compile("^1[01]$"))
    expect(shown(page, "cache", "hit-ratio")).to_have_text("97 %")  # 29 hits of 30
    expect(shown(page, "database", "db-calls")).to_have_text("1")

    down, *others = gateways[1], gateways[0], gateways[2]
    answered = shown(page, down, "requests").inner_text()
    page.get_by_test_id(f"down-{down}").click()
    expect(box(page, down)).to_have_attribute("data-state", "down")
    expect(page.get_by_test_id("message")).to_have_text(re.compile(f"^{down} is down"))
    # At once, before the page or the health checks say so: nothing is lost.
    served = client.get_data(30)
    assert sum(served.values()) == 30 and {g for _, g in served} <= set(others), served
    assert {status for status, _ in served} == {200}
    expect(box(page, down)).to_have_attribute("data-rotation", "out")
    expect(shown(page, down, "rotation")).to_have_text(re.compile("^out|^ejected"))
    expect(page.locator(f'#arrows path[data-to="{down}"]')).to_have_class(re.compile(r"\bout\b"))
    expect(shown(page, "load-balancer", "requests")).to_have_text("61")
    expect(shown(page, down, "requests")).to_have_text(answered)  # its dropped health checks
    expect(page.locator(f'#arrows path.edge[data-from="{down}"].busy')).to_have_count(0)
    before = {g: number(shown(page, g, "routed")) for g in gateways}

    assert client.get_data(30) == Counter({(200, g): 15 for g in others})
    expect(shown(page, "load-balancer", "requests")).to_have_text("91")
    after = {g: number(shown(page, g, "routed")) for g in gateways}
    assert after[down] == before[down]
    assert {g: after[g] - before[g] for g in others} == {g: 15 for g in others}

    # Bring back clears every fault of the gateway, not only `down`.
    assert admin_post(link, f"/api/faults/{down}", {"latency": 0.001, "error_rate": 0.5}) == 200
    page.get_by_test_id(f"up-{down}").click()
    expect(page.get_by_test_id("message")).to_have_text(f"{down} is back up, with no fault left.")
    expect(box(page, down)).to_have_attribute("data-state", "up")
    expect(box(page, down)).to_have_attribute("data-rotation", "in")
    assert {g for _, g in client.get_data(6)} == set(gateways)

    # Ctrl-C with the page open: the stream ends, the page says so, labsim exits at once.
    started = time.monotonic()
    code, out, err = up.stop()
    took = time.monotonic() - started
    assert code == 0 and took < 2, (code, took, err)
    assert "Traceback" not in out + err
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^stopped"))


def test_the_buttons_ask_for_the_token_and_the_bench_button_shows_the_result(lab, page):
    _, _, link, _ = lab
    token = link.split("#token=", 1)[1]
    page.goto(link.split("#", 1)[0])  # no token in the link
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))

    page.once("dialog", lambda dialog: dialog.accept("not-the-token"))
    page.get_by_test_id("bench").click()
    expect(page.get_by_test_id("message")).to_have_text(re.compile("admin token was refused"))

    page.once("dialog", lambda dialog: dialog.accept(token))
    page.get_by_test_id("bench").click()
    result = page.get_by_test_id("bench-result")
    expect(result).to_contain_text("100 requests: 100 ok, 0 failed", timeout=30_000)
    expect(result).to_contain_text("/data mean")
    expect(page.get_by_test_id("bench")).to_be_enabled()
    # The bench's login and its 100 requests went through the load balancer.
    expect(shown(page, "load-balancer", "requests")).to_have_text("101")

    latency, set_latency = page.get_by_test_id("db-latency"), page.get_by_test_id("db-latency-set")
    for seconds in ("0.33", "100"):  # any number the API takes
        latency.fill(seconds)
        set_latency.click()  # the token is kept for the session now
        expect(shown(page, "database", "added-latency")).to_have_text(f"{seconds} s")
    expect(box(page, "database")).to_have_attribute("data-state", "degraded")
    message = page.get_by_test_id("message")
    latency.fill("")  # no number at all: the page says so itself
    set_latency.click()
    expect(message).to_have_text("Database latency: give a number of seconds.")
    latency.fill("-1")  # the server refuses it, and the page says why
    set_latency.click()
    expect(message).to_have_text(re.compile(r"^latency must be a number from 0 to [\d,]+ \(got -1"))
    expect(message).to_have_class(re.compile(r"\bproblem\b"))
    expect(shown(page, "database", "added-latency")).to_have_text("100 s")
    page.get_by_test_id("reset-all").click()
    expect(shown(page, "database", "added-latency")).to_have_text("none")
    expect(box(page, "database")).to_have_attribute("data-state", "up")


def test_a_token_link_pasted_into_an_open_page_is_taken(lab, page):
    _, _, link, _ = lab
    page.goto(link.split("#", 1)[0])
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    hint = page.locator("#token-hint")
    expect(hint).to_contain_text("The buttons need the admin token")
    page.goto(link)  # only the fragment changes: the page is not loaded again
    expect(page.get_by_test_id("message")).to_have_text(re.compile("token from the link"))
    assert "token" not in page.url
    expect(hint).to_contain_text("Buttons use the admin token from the link")
    # No prompt: Playwright would dismiss it, and the page would say "No admin token".
    page.get_by_test_id("db-latency-set").click()
    expect(shown(page, "database", "added-latency")).to_have_text("0.5 s")


def test_a_down_gateway_left_in_rotation_shows_what_it_drops(plain_lab, page):
    _, lb, link, gateways = plain_lab
    page.goto(link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    client = Client(lb)
    down = gateways[1]
    expect(shown(page, down, "dropped")).to_be_hidden()
    page.get_by_test_id(f"down-{down}").click()
    expect(page.get_by_test_id("message")).to_have_text(re.compile(f"^{down} is down"))
    # Round robin goes on sending it one request in three, which it drops: 502s.
    assert client.get_data(30) == Counter({(200, g): 10 for g in gateways if g != down}) + Counter(
        {(502, "load-balancer"): 10}
    )
    expect(shown(page, down, "dropped")).to_have_text(re.compile(r"^[1-9]\d* \("))
    expect(shown(page, down, "requests")).to_have_text("0")  # the login went to another
    expect(shown(page, down, "errors")).to_have_text(NO_FIGURE)  # none answered: no 5xx
    expect(shown(page, down, "rotation")).to_have_text("still sends here")
    expect(shown(page, "load-balancer", "errors")).not_to_have_text(NO_FIGURE)  # its 502s
    # No arrow into or out of it is busy: into it, it says the gateway is down.
    expect(page.locator(f'#arrows path.edge[data-to="{down}"]')).to_have_class(
        re.compile(r"\bdown\b")
    )
    expect(page.locator(f'#arrows path.edge[data-from="{down}"].busy')).to_have_count(0)


def test_work_in_flight_shows_while_the_database_hangs(plain_lab, page):
    _, lb, link, gateways = plain_lab
    page.goto(link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    client = Client(lb)  # the login calls no database
    assert admin_post(link, "/api/faults/database", {"hang": True}) == 200
    answers: list[Counter] = []
    waiting = threading.Thread(target=lambda: answers.append(client.get_data(1)))
    waiting.start()  # a cache miss: it waits on the database
    try:
        database = box(page, "database")
        expect(database).to_have_attribute("data-state", "down")
        expect(database.locator('[data-field="state"]')).to_have_text("hung")
        expect(shown(page, "database", "in-flight")).to_have_text("1")
        expect(shown(page, "load-balancer", "in-flight")).to_have_text("1")
        expect(shown(page, "load-balancer", "rate")).to_have_text("0.0/s")
        # Waiting counts as work on the way in; the arrows into the database say it is down.
        expect(page.locator('#arrows path.edge[data-from="load-balancer"].busy')).to_have_count(1)
        expect(page.locator('#arrows path[data-to="database"].down')).to_have_count(len(gateways))
        expect(page.locator("#arrows path.edge.busy")).to_have_count(1)
    finally:
        page.get_by_test_id("reset-all").click()
        waiting.join(timeout=10)
    assert answers and set(answers[0]) <= {(200, g) for g in gateways}, answers
    expect(shown(page, "database", "in-flight")).to_have_text("0")
    expect(database).to_have_attribute("data-state", "up")
    expect(page.locator('#arrows path[data-to="database"].down')).to_have_count(0)


def test_each_component_draws_its_last_minute_and_the_page_fetches_nothing_missing(plain_lab, page):
    _, lb, link, _ = plain_lab
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    page.goto(link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    client = Client(lb)
    for _ in range(4):  # traffic over a few ticks: a line, not a dot
        client.get_data(10)
        time.sleep(0.6)
    rate = shown(page, "load-balancer", "rate-spark").locator("polyline.line-rate")
    expect(rate).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"))
    latency = shown(page, "cache", "latency-spark")
    for line in ("p50", "p99"):
        expect(latency.locator(f"polyline.line-{line}")).to_have_attribute(
            "data-points", re.compile(r"^[1-9]\d*$")
        )
    # The caption gives the latest tick's p50 and p99: traffic goes on until it shows them
    # (on a busy machine the traffic above may be a tick or more behind by now).
    caption = shown(page, "load-balancer", "latency-spark-caption")
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            client.get_data(1)

    sending = threading.Thread(target=send)
    sending.start()
    try:
        expect(caption).to_have_text(re.compile(r"^p50 [\d.]+ ms · p99 [\d.]+ ms, last minute$"))
    finally:
        stop.set()
        sending.join(timeout=10)
    icon = page.evaluate(
        "fetch('/favicon.svg').then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert icon.startswith("200 image/svg+xml")
    assert page.locator('link[rel="icon"]').get_attribute("href") == "/favicon.svg"
    assert failed == [], failed


def test_the_dashboard_of_a_split_lab_shows_every_process_s_components(tmp_path, page, monkeypatch):
    from .test_split import ADMIN, PARTS, scenario

    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", ADMIN)
    *ports, panel = free_ports(9)
    path = str(scenario(tmp_path, ports))
    first = Up("--scenario", path, "--only", PARTS[0], "--quiet", "--dashboard-port", str(panel))
    others = [Up("--scenario", path, "--only", part, "--quiet") for part in PARTS[1:]]
    try:
        link = next(
            line.split(" ", 1)[1].strip() for line in first.banner if line.startswith("Dashboard")
        )
        page.goto(link)
        expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
        client = Client(f"http://127.0.0.2:{ports[0]}")
        client.get_data(20)
        # The cache and the database are another process's: read over HTTP, shown all the same.
        expect(shown(page, "cache", "lookups")).to_have_text("19 · 1")
        expect(shown(page, "database", "db-calls")).to_have_text("1")
        expect(box(page, "worker")).to_have_attribute("data-state", "up")
        # A fault set from the page reaches the other process's database.
        page.get_by_test_id("db-latency").fill("0.25")
        page.get_by_test_id("db-latency-set").click()
        expect(box(page, "database")).to_have_attribute("data-state", "degraded")
        expect(shown(page, "database", "added-latency")).to_have_text("0.25 s")
    finally:
        for up in (first, *others):
            up.stop()


def test_a_component_of_another_process_that_answers_nonsense_is_unreadable(
    tmp_path, page, monkeypatch
):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Worker(BaseHTTPRequestHandler):
        """A worker in "another process" whose /metrics counts NaN tasks."""

        def do_GET(self) -> None:
            body = b'labsim_worker_submitted_total{component="worker"} NaN\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    *ports, panel = free_ports(9)
    path = write_scenario(tmp_path / "s.toml", ports)
    fake = ThreadingHTTPServer(("127.0.0.1", ports[6]), Worker)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", "browser-admin-" + "x" * 32)
    only = "load-balancer,gateways,cache,database,microservice"
    up = Up("--scenario", str(path), "--only", only, "--quiet", "--dashboard-port", str(panel))
    try:
        link = next(
            line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard")
        )
        page.goto(link)
        expect(box(page, "worker")).to_have_attribute("data-state", "unreadable")
        expect(shown(page, "worker", "state")).to_have_text("unreadable")
        expect(shown(page, "worker", "faults")).to_contain_text("labsim_worker_submitted_total")
        # The stream goes on: the page still follows the rest of the lab.
        Client(f"http://127.0.0.1:{ports[0]}").get_data(3)
        expect(shown(page, "load-balancer", "requests")).to_have_text("4")
        expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    finally:
        up.stop()
        fake.shutdown()


# --- the layout: any topology, callers above callees ---------------------------------------

# Where the page drew each box, the frame of replicas drawn in rows (the arrows of their
# boxes end there), and each arrow's two ends, in page pixels: [left, top, right, bottom].
GEOMETRY = """() => {
  const rect = (node) => {
    const r = node.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY];
  };
  const boxes = {};
  const ends = {};
  for (const box of document.querySelectorAll("article.box")) {
    const id = box.dataset.testid.slice("box-".length);
    boxes[id] = rect(box);
    ends[id] = rect(box.closest(".group.rows") || box);
  }
  const arrows = [...document.querySelectorAll("#arrows path.edge")].map((path) => {
    const screen = path.getScreenCTM();
    const length = path.getTotalLength();
    const at = (l) => {
      const p = path.getPointAtLength(l).matrixTransform(screen);
      return [p.x + scrollX, p.y + scrollY];
    };
    return { from: path.dataset.from, to: path.dataset.to, length, start: at(0), end: at(length) };
  });
  const page = document.documentElement;
  return { boxes, ends, arrows, width: page.clientWidth, scrollWidth: page.scrollWidth };
}"""

# Each component's id on its box: every line of it inside the box and the window's width,
# nothing over it (what a click there would hit), and its font size.
NAMES = """(ids) => ids.map((id) => {
  const box = document.querySelector(`[data-testid="box-${id}"]`);
  const name = box.querySelector("h3 .name");
  name.scrollIntoView({ block: "center" });
  const outer = box.getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(name);
  const lines = [...range.getClientRects()];
  const inside = lines.every((r) =>
    r.left >= Math.max(outer.left, 0) - 0.5 && r.top >= outer.top - 0.5 &&
    r.right <= Math.min(outer.right, document.documentElement.clientWidth) + 0.5 &&
    r.bottom <= outer.bottom + 0.5);
  const seen = lines.every((r) => {
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return hit !== null && name.contains(hit);
  });
  const size = parseFloat(getComputedStyle(name).fontSize);
  return { id, text: name.textContent, lines: lines.length, inside, seen, size };
})"""


def overlap(a: list[float], b: list[float]) -> bool:
    """Whether two rectangles share more than half a pixel each way."""
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def near(point: list[float], r: list[float], slack: float = 3) -> bool:
    x, y = point
    return r[0] - slack <= x <= r[2] + slack and r[1] - slack <= y <= r[3] + slack


def drawn(page: Page, edges: list[list[str]]) -> dict:
    """The page's drawing once it settled, checked: no two boxes overlap, and each edge
    has one arrow, from its caller's box (or frame) into its callee's."""
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    seen = page.evaluate(GEOMETRY)
    boxes = seen["boxes"]
    overlapping = [(a, b) for a, b in combinations(boxes, 2) if overlap(boxes[a], boxes[b])]
    assert overlapping == []
    assert Counter((a["from"], a["to"]) for a in seen["arrows"]) == Counter(map(tuple, edges))
    for arrow in seen["arrows"]:
        caller, callee = seen["ends"][arrow["from"]], seen["ends"][arrow["to"]]
        assert arrow["length"] > 10, arrow
        assert near(arrow["start"], caller) and near(arrow["end"], callee), (arrow, caller, callee)
    return seen


def in_layers(boxes: dict, layers: list[list[str]]) -> None:
    """Each layer's boxes all above the next layer's; callers above callees."""
    for upper, lower in pairwise(layers):
        bottom, top = max(boxes[c][3] for c in upper), min(boxes[c][1] for c in lower)
        assert bottom < top, (upper, lower, bottom, top)


def fake_page(page: Page, topology: dict) -> list[str]:
    """The dashboard's page of a made-up `topology` (dashboard_fakes.serve), at 1280 px
    wide, once its snapshot is shown; the page's errors, as they come."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(fakes.serve(page, topology))
    for c in topology["components"]:
        expect(shown(page, c["id"], "requests")).to_have_text("123,456")
    return problems


def test_the_lab_is_drawn_in_layers_with_an_arrow_for_each_edge(plain_lab, page):
    _, _, link, gateways = plain_lab
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(link)
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
    edges = page.evaluate("fetch('/api/topology').then((r) => r.json())")["edges"]
    seen = drawn(page, edges)
    boxes = seen["boxes"]
    backends = ["cache", "database", "worker", "microservice"]
    in_layers(boxes, [["load-balancer"], gateways, backends])
    # The gateways side by side in one row, and so are the components they call.
    for row in (gateways, backends):
        assert max(boxes[c][1] for c in row) - min(boxes[c][1] for c in row) < 1, row
    # The lab's boxes are whole ones, every figure shown: no compact box.
    expect(page.locator("#layers .box.compact")).to_have_count(0)
    expect(shown(page, "cache", "rate-spark")).to_be_visible()
    assert seen["scrollWidth"] <= seen["width"]


def test_forty_components_fit_the_window_in_layers_with_every_id_readable(page):
    topology, layers = fakes.big()
    problems = fake_page(page, topology)
    seen = drawn(page, topology["edges"])
    boxes = seen["boxes"]
    assert len(boxes) == 40
    in_layers(boxes, layers)
    assert [(a, b) for a, b in topology["edges"] if boxes[a][3] >= boxes[b][1]] == []
    # All inside the window's 1280 px: the page does not scroll sideways.
    assert seen["width"] <= 1280 and seen["scrollWidth"] <= seen["width"]
    assert [c for c, r in boxes.items() if r[0] < 0 or r[2] > seen["width"]] == []
    # Each group's replicas together: no other box in the space they span.
    for group in ("gateway", "orders", "users"):
        ids = [c["id"] for c in topology["components"] if c.get("group") == group]
        span = [min(boxes[c][0] for c in ids), min(boxes[c][1] for c in ids)]
        span += [max(boxes[c][2] for c in ids), max(boxes[c][3] for c in ids)]
        assert [c for c in boxes if c not in ids and overlap(boxes[c], span)] == [], group
    names = page.evaluate(NAMES, list(boxes))
    assert [n for n in names if not (n["inside"] and n["seen"])] == []
    assert {n["id"] for n in names if n["text"] == n["id"] and n["size"] >= 12} == set(boxes)
    # Past what fits, boxes are compact: the other figures come on demand, and go.
    service = box(page, "orders-6001")
    expect(service).to_have_class(re.compile(r"\bcompact\b"))
    expect(shown(page, "orders-6001", "rate-spark")).to_be_hidden()
    page.get_by_test_id("more-orders-6001").click()
    expect(shown(page, "orders-6001", "rate-spark")).to_be_visible()
    expect(shown(page, "orders-6001", "busy")).to_have_text("4 of 4 (100 % of the tick)")
    page.keyboard.press("Escape")
    expect(shown(page, "orders-6001", "rate-spark")).to_be_hidden()
    # A compact gateway keeps its buttons, a compact database its latency form.
    expect(page.get_by_test_id("down-gateway-5008")).to_be_visible()
    expect(box(page, "db-3").get_by_test_id("db-latency")).to_be_visible()
    assert problems == []


def test_a_lab_with_two_tiers_of_load_balancers_comes_out_in_its_five_layers(page):
    topology, layers = fakes.lab5()
    problems = fake_page(page, topology)
    seen = drawn(page, topology["edges"])
    in_layers(seen["boxes"], layers)
    # The two gateways in one frame, side by side.
    expect(page.locator('.group[data-group="api"] article.box')).to_have_count(2)
    tops = [seen["boxes"][g][1] for g in layers[1]]
    assert abs(tops[0] - tops[1]) < 1
    found = page.evaluate("(t) => window.labsimLayout(t.components, t.edges).layers", topology)
    assert [sorted(layer) for layer in found] == [sorted(layer) for layer in layers]
    assert problems == []


def plan(page: Page, ids: str, edges: str, groups: dict[str, str] | None = None) -> dict:
    """window.labsimLayout of components `ids` ("a b c") and `edges` ("a>b a>c")."""
    components = [{"id": c, "kind": "service"} for c in ids.split()]
    for c in components:
        if groups and c["id"] in groups:
            c["group"] = groups[c["id"]]
    pairs = [e.split(">") for e in edges.split()]
    return page.evaluate("([c, e]) => window.labsimLayout(c, e)", [components, pairs])


def test_the_layout_layers_a_diamond_and_sends_a_long_edge_down_a_lane(page):
    fake_page(page, fakes.lab5()[0])
    # A diamond, and an edge from its top to its bottom past the middle layer.
    diamond = plan(page, "d c b a", "a>b a>c b>d c>d a>d")
    assert diamond["layer"] == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert [sorted(layer) for layer in diamond["layers"]] == [["a"], ["b", "c"], ["d"]]
    lanes = {r["from"] + ">" + r["to"]: r["lanes"] for r in diamond["routes"]}
    assert {e: len(through) for e, through in lanes.items()} == {
        "a>b": 0,
        "a>c": 0,
        "b>d": 0,
        "c>d": 0,
        "a>d": 1,
    }
    assert {"lane": lanes["a>d"][0]} in diamond["rows"][1]
    assert diamond["crossings"] == 0
    # A longer one: down a lane in each layer it goes past.
    chain = plan(page, "a b c d e", "a>b b>c c>d d>e a>e")
    assert chain["layers"] == [["a"], ["b"], ["c"], ["d"], ["e"]]
    past = next(r["lanes"] for r in chain["routes"] if r["to"] == "e" and r["from"] == "a")
    assert [[item.get("lane") for item in row if "lane" in item] for row in chain["rows"]] == [
        [],
        [past[0]],
        [past[1]],
        [past[2]],
        [],
    ]


def test_the_layout_keeps_replicas_together_orders_layers_against_crossings_and_ends(page):
    fake_page(page, fakes.lab5()[0])
    # The order given crosses (c>f under d>e); the layout uncrosses it.
    found = plan(page, "a b c d e f", "a>c a>e b>d c>f d>e")
    assert found["layers"] == [["a", "b"], ["c", "d"], ["f", "e"]]
    assert found["crossings"] == 0
    # Replicas (a group) share a layer, side by side, even when only one is called, and
    # given apart; a component without a group is a group of its own.
    groups = {"api-1": "api", "api-2": "api"}
    found = plan(page, "api-1 x lb api-2 y", "lb>api-1 lb>x api-1>y api-2>y", groups)
    assert found["layer"] == {"lb": 0, "api-1": 1, "api-2": 1, "x": 1, "y": 2}
    row = found["layers"][1]
    assert abs(row.index("api-1") - row.index("api-2")) == 1
    assert found["group"] == {"api-1": "api", "api-2": "api", "lb": "lb", "x": "x", "y": "y"}
    # One that calls nobody and nobody calls: layer 0. A cycle: its way back up is left
    # out of the layers, and still routed; edges to unknown components are left out.
    found = plan(page, "alone a b c", "a>b b>c c>a a>ghost")
    assert found["layer"] == {"alone": 0, "a": 0, "b": 1, "c": 2}
    assert [(r["from"], r["to"]) for r in found["routes"]] == [("a", "b"), ("b", "c"), ("c", "a")]


LAB5_PORTS = (8000, 8001, 5000, 5001, 5002, 5003, 5004, 5005, 5006, 5009)


def free_ports_at(ports) -> list[int]:
    """Those of `ports` nobody listens on."""
    import socket

    free = []
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                free.append(port)
    return free


def test_the_course_s_lab5_under_up_is_drawn_in_its_layers(page):
    # Lab 5's ports moved to a free block: 8000 -> 8000 + offset, and so on.
    offset = next(
        o for o in range(21000, 40000, 300) if len(free_ports_at(o + p for p in LAB5_PORTS)) == 10
    )
    panel = free_ports(1)[0]
    up = Up(*("--scenario", "lab5", "--port-offset", str(offset)), "--quiet",
            "--dashboard-port", str(panel))  # fmt: skip
    try:
        link = next(line.split(" ", 1)[1].strip() for line in up.banner if "Dashboard" in line)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(link)
        expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
        topology = page.evaluate("fetch('/api/topology').then((r) => r.json())")
        groups = {c["id"]: c["group"] for c in topology["components"]}
        assert groups["api-5000"] == groups["api-5003"] == "api"
        seen = drawn(page, topology["edges"])
        layers = [
            ["lb-ag"],
            ["api-5000", "api-5003"],
            ["lb-ms", "login", "worker"],
            ["microservice-a", "microservice-b"],
            ["cache", "database"],
        ]
        in_layers(seen["boxes"], layers)
        expect(page.locator('.group[data-group="api"] article.box')).to_have_count(2)
    finally:
        up.stop()
