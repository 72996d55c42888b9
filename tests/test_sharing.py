"""Processor sharing (`discipline = "processor_sharing"`): service times run down together.

Finishing times are worked out by hand from the definition (k requests each progress at
min(1, c / k)); the station's mean response is checked against M/M/1-PS theory, whose
mean equals FIFO's and whose mean for a request of size x is x / (1 - rho).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from labsim.components.sharing import ProcessorSharing
from labsim.core.clock import VirtualClock
from labsim.model.config import ConfigError
from labsim.model.scenario import load_scenarios
from labsim.run import BenchOptions, run_bench

from .conftest import make_topology


def _finishing_times(processors: int, jobs: list[tuple[float, float]]) -> list[float]:
    """(start, work) per request; when each finishes, on the virtual clock."""
    clock = VirtualClock()
    sharing = ProcessorSharing(processors, clock)
    finished: list[float] = [0.0] * len(jobs)

    async def one(i: int, start: float, work: float) -> None:
        await clock.sleep(start)
        await sharing.serve(work)
        finished[i] = clock.now()

    async def all_of_them() -> None:
        await asyncio.gather(*(one(i, s, w) for i, (s, w) in enumerate(jobs)))

    asyncio.run(clock.run(all_of_them()))
    return finished


def test_one_processor_shared_by_two_and_then_three():
    # 0-2 s: A (1 s) and B (3 s) at half speed each: A done at 2 s, B has 2 s left.
    # From 2 s, B alone; C (1 s) arrives at 2.5 s: both at half speed, C done at 4.5 s,
    # B then has 2 - 0.5 - 1 = 0.5 s left, done at 5 s.
    assert _finishing_times(1, [(0, 1), (0, 3), (2.5, 1)]) == pytest.approx([2, 5, 4.5])


def test_a_lone_request_takes_its_service_time_and_spare_processors_cost_nothing():
    assert _finishing_times(1, [(0, 0.7)]) == pytest.approx([0.7])
    assert _finishing_times(2, [(0, 1), (0, 3)]) == pytest.approx([1, 3])
    # Three on two processors: each at 2/3 speed until the first is done.
    assert _finishing_times(2, [(0, 1), (0, 1), (0, 1)]) == pytest.approx([1.5] * 3)


def test_a_station_refuses_past_concurrency_plus_queue_size():
    topology = make_topology(
        {
            "gateways": {"ports": [0]},
            "microservice": {
                "concurrency": 1,
                "queue_size": 1,
                "service": 1.0,
                "discipline": "processor_sharing",
                "holds": "service",
            },
        }
    )
    options = BenchOptions(requests=3, concurrency=3, mix={"process": 1})
    result = asyncio.run(run_bench(topology, options))
    assert result.requests.by_status == {"200": 2, "503": 1}
    # The two admitted shared one processor: both done after 2 s of their 1 s each.
    assert result.endpoints["process"].max_ms == pytest.approx(2000, abs=5)


def test_m_m_1_processor_sharing_has_fifos_mean():
    # The M/M/1 scenario (lambda 8/s, mu 10/s) with its slot shared instead of queued for.
    [_, high] = load_scenarios("scenarios/mm1.toml")
    micro = dataclasses.replace(high.topology.microservice, discipline="processor_sharing")
    topology = dataclasses.replace(high.topology, microservice=micro, seed=3)
    result = asyncio.run(run_bench(topology, BenchOptions.of(high.load, requests=30_000)))
    assert result.endpoints["process"].mean_ms / 1000 == pytest.approx(1 / (10 - 8), rel=0.1)


def test_discipline_takes_only_its_two_words():
    with pytest.raises(ConfigError, match=r'discipline: must be "fifo" or "processor_sharing"'):
        make_topology({"cache": {"discipline": "lifo"}})
