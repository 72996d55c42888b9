"""The README's figures of a load steered from the dashboard, measured on the real clock.

`labsim up --scenario scenarios/mm1.toml` (ports moved by --port-offset 1000): the
microservice has one slot and an exponential service time of mean 100 ms (10 requests a
second). Through the dashboard's API, as the page's slider does: a load of `process=1`
at 5, 8, 15, then 3 requests a second; after each stretch, the load's figures
(`/api/load`) and the microservice's line (the third snapshot of `/api/events`, past the
first ticks whose rates are not yet known). Run from the repository:
`python docs/steered.py` (about 70 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import unquote

STRETCHES = ((5, 20), (8, 20), (15, 10), (3, 15))  # (requests a second, seconds)


def main() -> None:
    command = ["up", "--scenario", "scenarios/mm1.toml", "--quiet", "--port-offset", "1000"]
    up = subprocess.Popen(
        [sys.executable, "-m", "labsim", *command], stdout=subprocess.PIPE, text=True
    )
    try:
        link = next(
            line.split(" ", 1)[1].strip() for line in up.stdout if line.startswith("Dashboard")
        )
        base, token = link.split("#token=")
        base, token = base.rstrip("/"), unquote(token)

        def post(path: str, body: dict | None = None) -> tuple[int, dict]:
            data = json.dumps(body).encode() if body is not None else b""
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            request = urllib.request.Request(base + path, data, headers, method="POST")
            try:
                with urllib.request.urlopen(request) as reply:
                    return reply.status, json.load(reply)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        def line() -> dict:
            with urllib.request.urlopen(base + "/api/events") as stream:
                seen = 0
                for raw in stream:
                    if raw.startswith(b"data:"):
                        seen += 1
                        if seen == 3:
                            return json.loads(raw[5:])["components"]["microservice"]["capacity"]
            raise AssertionError("the stream ended")

        print(post("/api/load/start", {"rate": 600}))
        print(post("/api/load/start", {"rate": STRETCHES[0][0], "mix": {"process": 1}})[0])
        print("rate/s  after  sent  answered  in flight  answers/s  p50 ms  p99 ms  line")
        for rate, seconds in STRETCHES:
            post("/api/load/rate", {"rate": rate})
            time.sleep(seconds)
            with urllib.request.urlopen(base + "/api/load") as reply:
                f = json.load(reply)
            print(
                f"{rate:>6}  {seconds:>4} s  {f['sent']:>4}  {f['answered']:>8}"
                f"  {f['in_flight']:>9}  {f['answered_rate']:>9}"
                f"  {f['p50_ms']:>6.0f}  {f['p99_ms']:>6.0f}"
                f"  {line()['queue_length']:>4}"
            )
        print(post("/api/load/stop"))
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=10)


if __name__ == "__main__":
    main()
