"""Any topology runs (issue 22): a user-written graph under `bench` on the virtual clock,
its steps' times and slots measured against what they must add up to."""

from __future__ import annotations

from pathlib import Path

import pytest

import labsim

ONE_TIER = """
name = "steps"
seed = 1

[load]
requests = {requests}
concurrency = {concurrency}
mix = {{ data = 1 }}
clock = "virtual"

[components.front]
kind = "gateway"
port = 0
latency = 0
endpoints."GET /data" = [{{ call = "work" }}]

[components.work]
kind = "service"
port = 0
latency = 0
{station}
endpoints."GET /data" = [{{ io = 0.05 }}, {{ cpu = 0.1 }}, {{ call = "db", path = "/db" }}]

[components.db]
kind = "database"
port = 0
latency = 0.2
"""


def run(tmp_path: Path, requests: int, concurrency: int, station: str = "") -> labsim.BenchResult:
    path = tmp_path / "steps.toml"
    path.write_text(ONE_TIER.format(requests=requests, concurrency=concurrency, station=station))
    return labsim.bench(path)


def test_steps_add_up_along_the_route(tmp_path):
    result = run(tmp_path, requests=3, concurrency=1)
    data = result.endpoints["data"]
    assert result.requests.failed == 0
    # io 50 ms + cpu 100 ms + the database's 200 ms, one request at a time.
    assert data.mean_ms == pytest.approx(350, abs=0.5)


def test_a_cpu_step_waits_for_a_slot_and_io_does_not(tmp_path):
    # One slot held for the cpu step only: two requests at once overlap their io and
    # database time, but their cpu steps take turns (the second waits 100 ms).
    station = 'concurrency = 1\nholds = "service"'
    result = run(tmp_path, requests=2, concurrency=2, station=station)
    data = result.endpoints["data"]
    assert data.p50_ms == pytest.approx(350, abs=1) and data.max_ms == pytest.approx(450, abs=1)


def test_a_slot_held_throughout_serializes_the_whole_request(tmp_path):
    result = run(tmp_path, requests=2, concurrency=2, station="concurrency = 1")
    assert result.endpoints["data"].max_ms == pytest.approx(700, abs=1)


def test_the_figures_of_a_kind_add_up_over_its_components(tmp_path):
    result = run(tmp_path, requests=4, concurrency=2)
    # Clients come in at the gateway itself: no load balancer spreads them.
    assert result.gateways == {} and result.db_calls == 4


def test_a_token_bucket_on_any_component_refuses_a_caller_past_its_burst(tmp_path):
    # The database keeps a bucket per caller: 2 at once, then one a second. The service
    # calls it once a request, 1 ms apart: the third is refused, and the 429 passes on.
    station = ""
    path = tmp_path / "steps.toml"
    text = ONE_TIER.format(requests=4, concurrency=1, station=station)
    text = text.replace("latency = 0.2", "latency = 0.001\nrate_limit = { rate = 1, burst = 2 }")
    path.write_text(text)
    result = labsim.bench(path)
    assert result.requests.by_status == {"200": 2, "429": 2}
    assert result.db_calls == 2
