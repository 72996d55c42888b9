"""The course's Lab 5 as `scenarios/lab5.toml` (issue 22): its simulator's run on the
virtual clock, and the guide's own simulator script, run unchanged against `up`, getting
the answers the guide's Flask processes give (tests/data/lab5_guide: the guide's code
and what it measured when run for real)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import labsim

HERE = Path(__file__).resolve().parent
GUIDE = HERE / "data" / "lab5_guide"
LAB5 = HERE.parent / "scenarios" / "lab5.toml"
EXPECTED = json.loads((GUIDE / "expected_status_log.json").read_text())
# Where the guide's status tracker counts every answer its service gives, labsim's counts
# are the same. Elsewhere the guide's code registers a subset (tests/data/lab5_guide/README.md):
# the first load balancer a 200 for each request it forwards, whatever the answer; the
# second only its 429s; the microservices not the answer of the one miss.
COUNTS_EVERY_ANSWER = ("APIGATEWAY", "LOGIN_MS", "CACHE", "DATABASE", "WORKER")


def test_the_simulator_s_load_meets_the_guide_s_rate_limits():
    result = labsim.bench(LAB5)
    data, longtask = result.endpoints["data"], result.endpoints["longtask"]
    # Microservice B takes 50 of its 150 /data in the minute, the 100 others get 429,
    # passed on by the gateways; the worker takes 200 tasks in the minute, and the
    # gateways answer 202 for all 300, as the guide's do.
    assert (data.count, data.failed) == (200, 100)
    assert (longtask.count, longtask.failed) == (300, 0)
    assert result.requests.by_status == {"200": 200, "202": 300, "429": 100}
    assert result.db_calls == 1
    assert result.worker.completed == 200
    assert result.status is not None
    for service in COUNTS_EVERY_ANSWER:
        assert result.status[service] == EXPECTED[service], service
    assert result.status["LOADBALANCER_AG"] == {"200": 201, "429": 100, "202": 300}
    assert result.status["MICROSERVICE"] == {"200": 200, "429": 100}
    assert result.status["LOADBALANCER_MS"] == {"200": 200, "429": 100}


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_the_guide_s_simulator_runs_unchanged_against_up(tmp_path):
    ports = (8000, 8001, 5000, 5001, 5002, 5003, 5004, 5005, 5006, 5009)
    busy = [p for p in ports if not _free(p)]
    assert not busy, f"Lab 5's ports must be free for this test: {busy} are taken"
    for folder in ("Components", "simulator"):
        shutil.copytree(GUIDE / folder, tmp_path / folder)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    up = subprocess.Popen(
        [
            *(sys.executable, "-m", "labsim", "up", "--scenario", str(LAB5)),
            "--no-dashboard",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert up.stdout is not None
        said = ""
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in said and time.monotonic() < deadline:
            said += up.stdout.readline()
        assert "Press Ctrl-C" in said, said
        run = subprocess.run(
            [sys.executable, "-c", "from simulator.simulator import main; main()"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout == (GUIDE / "expected_simulator_output.txt").read_text()
        # The guide's tracker file stays as reset_log() left it: labsim's components keep
        # their counts themselves, and answer them at GET /status.
        assert json.loads((tmp_path / "simulator" / "status_log.json").read_text()) == {}
        status: dict[str, dict[str, int]] = {}
        for port in ports:
            for service, codes in _get(f"http://127.0.0.1:{port}/status").items():  # type: ignore[union-attr]
                merged = status.setdefault(service, {})
                for code, count in codes.items():
                    merged[code] = merged.get(code, 0) + count
        for service in COUNTS_EVERY_ANSWER:
            assert status[service] == EXPECTED[service], service
    finally:
        up.terminate()
        up.wait(timeout=15)
