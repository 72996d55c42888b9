"""The README's figures of a user flow steered from the dashboard, on the real clock.

`labsim up --scenario scenarios/user-flow.toml` (ports moved by --port-offset 1100): its
flow `shopper` logs in, reads /data 5 times with 1 s of think time after each, then
queues a report; the database takes 0.5 s, the cache holds /data after the first read.
Through the dashboard's API, as the page's Flow select and Start do: 2 runs of `shopper`
a second for 20 s, then the load's figures (`/api/load`: runs, and a row per step), then
a stop. Run from the repository: `python docs/steered_flow.py` (about 25 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from urllib.parse import unquote


def main() -> None:
    command = ["up", "--scenario", "scenarios/user-flow.toml", "--quiet", "--port-offset", "1100"]
    up = subprocess.Popen(
        [sys.executable, "-m", "labsim", *command], stdout=subprocess.PIPE, text=True
    )
    try:
        link = next(
            line.split(" ", 1)[1].strip() for line in up.stdout if line.startswith("Dashboard")
        )
        base, token = link.split("#token=")
        base, token = base.rstrip("/"), unquote(token)

        def post(path: str, body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else b""
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            request = urllib.request.Request(base + path, data, headers, method="POST")
            with urllib.request.urlopen(request) as reply:
                return json.load(reply)

        with urllib.request.urlopen(base + "/api/load") as reply:
            print("flows:", [f["name"] for f in json.load(reply)["limits"]["flows"]])
        post("/api/load/start", {"rate": 2, "flow": "shopper", "seed": 1})
        time.sleep(20)
        with urllib.request.urlopen(base + "/api/load") as reply:
            f = json.load(reply)
        print(
            f"after {f['for_s']:.0f} s: {f['sent']} runs started, {f['answered']} done, "
            f"{f['in_flight']} in flight, {f['failed']} failed; "
            f"run p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms"
        )
        print("step           request         count  failed  p50 ms  p99 ms")
        for s in f["steps"]:
            p50 = "-" if s["p50_ms"] is None else f"{s['p50_ms']:.1f}"
            p99 = "-" if s["p99_ms"] is None else f"{s['p99_ms']:.1f}"
            print(
                f"{s['name']:<14} {s['request']:<15} {s['count']:>5}  {s['failed']:>6}"
                f"  {p50:>6}  {p99:>6}"
            )
        done = post("/api/load/stop")
        print(f"stopped: {done['sent']} runs started, {done['answered']} done, {done['cut']} cut")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=10)


if __name__ == "__main__":
    main()
