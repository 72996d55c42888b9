"""Make the pictures in the README: the dashboard and a sample HTML report.

- docs/dashboard.png: `labsim up` on the lab's ports under load, one gateway taken down
  from the page and a bench run from its button;
- docs/sample-report.html: `python -m labsim bench --requests 100 --html ...`;
- docs/sample-report.png: that page as the browser draws it;
- docs/dashboard-load.png: `labsim up --scenario scenarios/mm1.toml` (ports moved by
  --port-offset 1000) with the page's load steered past the microservice's capacity.

Run from the repository: `python docs/screenshot.py` (the lab's ports, 8000, 5000-5006
and 8080, must be free). It needs Playwright for Python (the `test` extra) and Debian's
chromium (or LABSIM_CHROMIUM naming another).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("LABSIM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

SCENARIO = """
name = "dashboard demo"
[load_balancer]
health_check = { interval = 0.25, timeout = 0.2, unhealthy_threshold = 1, healthy_threshold = 2 }
outlier = { consecutive_failures = 1, base_ejection = 2.0 }
retry = { attempts = 1, min_retries = 100 }
[gateways]
latency = { model = "uniform", low = 0.002, high = 0.008 }
[cache]
ttl = 0.5
[database]
latency = 0.15
[worker]
task_duration = { model = "uniform", low = 0.5, high = 1.5 }
concurrency = 50
queue_size = 200
"""
DOCS = Path(__file__).parent


def call(method: str, url: str, token: str | None = None, body: dict | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except OSError:
        return 0


def traffic(lb: str, stop: threading.Event) -> None:
    request = urllib.request.Request(
        f"{lb}/login",
        data=json.dumps({"username": "user1", "password": "password123"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.load(response)["token"]
    n = 0
    while not stop.is_set():
        n += 1
        if n % 4 == 0:
            call("POST", f"{lb}/longtask", token)
        elif n % 9 == 0:
            call("GET", f"{lb}/process", token)
        else:
            call("GET", f"{lb}/data", token)
        time.sleep(0.02)


def dashboard(out: Path) -> None:
    lb, down = 8000, 5003
    scenario = Path(tempfile.mkdtemp()) / "demo.toml"
    scenario.write_text(SCENARIO)
    command = ["up", "--scenario", str(scenario), "--quiet"]
    up = subprocess.Popen(
        [sys.executable, "-m", "labsim", *command], stdout=subprocess.PIPE, text=True
    )
    stop = threading.Event()
    try:
        url = None
        for line in up.stdout:
            if line.startswith("Dashboard: "):
                url = line.split(" ", 1)[1].strip()
            if "Press Ctrl-C" in line:
                break
        assert url, "labsim up printed no dashboard URL"
        senders = [
            threading.Thread(target=traffic, args=(f"http://127.0.0.1:{lb}", stop))
            for _ in range(4)
        ]
        for sender in senders:
            sender.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
            time.sleep(2)
            page.get_by_test_id(f"down-gateway-{down}").click()
            expect(page.get_by_test_id(f"box-gateway-{down}")).to_have_attribute(
                "data-rotation", "out"
            )
            page.get_by_test_id("bench").click()
            expect(page.get_by_test_id("bench-result")).to_contain_text("failed", timeout=30_000)
            time.sleep(1.5)
            page.screenshot(path=str(out))
            browser.close()
        print(f"wrote {out}")
    finally:
        stop.set()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=10)


def report(html: Path, out: Path) -> None:
    command = ["bench", "--requests", "100", "--html", str(html)]
    labsim = [sys.executable, "-m", "labsim"]
    subprocess.run([*labsim, *command], check=True, stdout=subprocess.DEVNULL)
    print(f"wrote {html}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 800})
        page.goto(html.resolve().as_uri())
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out}")


def steered(out: Path) -> None:
    """The page's load at 5 requests a second to the microservice (one slot, 100 ms mean:
    10 a second), then the slider to 15: its line grows by about 5 a second."""
    command = ["up", "--scenario", "scenarios/mm1.toml", "--quiet", "--port-offset", "1000"]
    up = subprocess.Popen(
        [sys.executable, "-m", "labsim", *command], stdout=subprocess.PIPE, text=True
    )
    try:
        url = None
        for line in up.stdout:
            if line.startswith("Dashboard: "):
                url = line.split(" ", 1)[1].strip()
            if "Press Ctrl-C" in line:
                break
        assert url, "labsim up printed no dashboard URL"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
            page.get_by_test_id("load-mix").fill("process=1")
            page.get_by_test_id("load-rate").fill("5")
            page.get_by_test_id("load-start").click()
            time.sleep(8)
            page.get_by_test_id("load-rate-slider").fill("15")
            time.sleep(8)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        print(f"wrote {out}")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=10)


if __name__ == "__main__":
    dashboard(DOCS / "dashboard.png")
    steered(DOCS / "dashboard-load.png")
    report(DOCS / "sample-report.html", DOCS / "sample-report.png")
