"""A station on its own (`components/capacity.py`) and its settings (`config.py`)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from labsim.components.answers import JSONError
from labsim.components.capacity import Capacity
from labsim.core.clock import RealClock
from labsim.model.config import EVERY_KIND, MAX_QUEUE, ConfigError, StationConfig
from labsim.model.topology import topology_from_dict

from .conftest import make_topology

DOCS = Path(__file__).parent.parent / "docs" / "scenarios.md"


# Configuration


def test_defaults_are_no_limit():
    topology = make_topology()
    for section in ("load_balancer", "gateways", "cache", "database", "microservice"):
        settings = getattr(topology, section)
        assert settings.concurrency == 0
        assert settings.queue_size == MAX_QUEUE == 1_000_000
        assert settings.service.mean() == 0.0
    assert (topology.worker.concurrency, topology.worker.queue_size) == (100, 1000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"cache": {"concurrency": -1}},
            "x.toml: cache.concurrency: must be from 0 (no limit) to 100000 (got -1)",
        ),
        ({"gateways": {"concurrency": 100_001}}, "x.toml: gateways.concurrency: must be from 0"),
        (
            {"load_balancer": {"queue_size": 1_000_001}},
            "x.toml: load_balancer.queue_size: must be from 0 to 1000000 (got 1000001)",
        ),
        ({"database": {"queue_size": -1}}, "x.toml: database.queue_size: must be from 0"),
        (
            {"microservice": {"concurrency": 1.5}},
            "x.toml: microservice.concurrency: must be an int",
        ),
        ({"database": {"service": -1}}, "x.toml: database.service: latency cannot be negative"),
        ({"cache": {"service": {"model": "gamma"}}}, "x.toml: cache.service.model: unknown"),
        ({"worker": {"service": 1}}, "x.toml: worker.service: unknown key"),
    ],
)
def test_invalid_capacity_names_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        topology_from_dict(data, "x.toml")
    assert message in str(e.value)


def test_bounds_are_accepted():
    top = {"concurrency": 100_000, "queue_size": 1_000_000, "service": 0.5}
    gateways = {"concurrency": 1, "queue_size": 0}
    topology = topology_from_dict({"cache": top, "gateways": gateways}, "x.toml")
    assert (topology.cache.concurrency, topology.cache.queue_size) == (100_000, 1_000_000)
    assert topology.gateways.queue_size == 0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"load_balancer": {"queue_size": 10}}, "load_balancer"),
        ({"gateways": {"queue_size": 0}}, "gateways"),
        ({"cache": {"queue_size": 10, "service": 0.1}}, "cache"),
        ({"database": {"queue_size": 10, "concurrency": 0}}, "database"),
        ({"microservice": {"queue_size": 10}}, "microservice"),
        # Each gateway's own table replaces the shared one: the shared slots do not count.
        (
            {"gateways": {"concurrency": 2, "each": {"gateway-5006": {"queue_size": 1}}}},
            "gateways.each.gateway-5006",
        ),
    ],
)
def test_a_queue_size_without_slots_is_refused_naming_the_key(data, key):
    with pytest.raises(ConfigError) as e:
        topology_from_dict(data, "x.toml")
    assert str(e.value).startswith(f"x.toml: {key}.queue_size: ")
    assert f"without {key}.concurrency" in str(e.value)


def test_a_queue_size_with_slots_or_at_its_default_is_accepted():
    for table in ({"queue_size": 3, "concurrency": 1}, {"queue_size": MAX_QUEUE}, {}):
        topology = topology_from_dict({"database": table}, "x.toml")
        assert topology.database.queue_size == table.get("queue_size", MAX_QUEUE)
    # The worker's queue_size is its task queue, with slots of its own: not a station's.
    assert topology_from_dict({"worker": {"queue_size": 5}}, "x.toml").worker.queue_size == 5


def test_every_component_s_row_of_slots_in_the_docs_names_every_station_key():
    """The `[microservice]` row once left out `holds` and `discipline`, which work there."""
    text = DOCS.read_text()
    for section in ("load_balancer", "gateways", "cache", "database", "microservice"):
        row = _slots_row(text, section)
        for f in dataclasses.fields(StationConfig):
            if f.name not in EVERY_KIND:  # rate_limit, status_name: rows of their own
                assert re.search(rf"[`.]{f.name}`", row), (section, f.name)


def _slots_row(text: str, section: str) -> str:
    """The docs' row of `section`'s slots: its own (`database.concurrency`, ...), or the
    `concurrency` row under its heading."""
    own = [line for line in text.splitlines() if line.startswith(f"| `{section}.concurrency`")]
    if own:
        return own[0]
    part = text.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
    return next(line for line in part.splitlines() if line.startswith("| `concurrency`"))


def test_every_key_is_documented_with_its_default():
    section = DOCS.read_text().split("## Capacity", 1)[1].split("\n## ", 1)[0]
    defaults = {
        "concurrency": "`0` (no limit",
        "queue_size": "`1000000`",
        "service": "`0.0`",
        "holds": '`"request"`',
        "discipline": '`"fifo"`',
    }
    for f in dataclasses.fields(StationConfig):
        if f.name not in EVERY_KIND:  # documented with each kind, not as a station's
            assert f"| `{f.name}` | {defaults[f.name]}" in section


# FIFO, cancellation and refusal, on the real clock


async def test_fifo_on_the_real_clock_and_no_barging():
    release = asyncio.Event()
    served: list[int] = []
    capacity = Capacity("db", 1, 100, lambda: 0.0, RealClock())

    async def handler(i: int) -> int:
        served.append(i)
        if i == 0:
            await release.wait()
        return i

    tasks = []
    for i in range(10):
        tasks.append(asyncio.create_task(capacity.hold(handler, i)))
        await asyncio.sleep(0)  # each one reaches the line before the next is made
    assert (capacity.busy, len(capacity.waiting)) == (1, 9)
    release.set()
    await asyncio.sleep(0)  # the holder finishes: its slot passes to the first waiter
    assert capacity.busy == 1
    late = asyncio.create_task(capacity.hold(handler, 99))  # arrives as the slot passes on
    assert await asyncio.gather(*tasks, late) == [*range(10), 99]
    assert served == [*range(10), 99]
    assert (capacity.busy, len(capacity.waiting)) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_line():
    release = asyncio.Event()
    capacity = Capacity("db", 1, 1, lambda: 0.0, RealClock())

    async def handler(_: object) -> None:
        await release.wait()

    holder = asyncio.create_task(capacity.hold(handler, None))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(capacity.hold(handler, None))
    await asyncio.sleep(0)
    assert len(capacity.waiting) == 1
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert len(capacity.waiting) == 0
    release.set()
    await holder
    assert (capacity.busy, capacity.waits.count) == (0, 1)


async def test_a_slot_granted_as_its_waiter_is_cancelled_passes_on():
    capacity = Capacity("db", 1, 5, lambda: 0.0, RealClock())
    gate = asyncio.Event()

    async def handler(_: object) -> None:
        await gate.wait()

    holder = asyncio.create_task(capacity.hold(handler, None))
    await asyncio.sleep(0)
    first = asyncio.create_task(capacity.hold(handler, None))
    second = asyncio.create_task(capacity.hold(handler, None))
    await asyncio.sleep(0)
    gate.set()
    await holder  # hands the slot to `first` ...
    first.cancel()  # ... which is cancelled before it runs: the slot goes to `second`
    await asyncio.gather(first, return_exceptions=True)
    await second
    assert (capacity.busy, len(capacity.waiting)) == (0, 0)


def test_refusal_is_a_json_error():
    capacity = Capacity("cache", 1, 0, lambda: 0.0, RealClock())
    capacity.busy = 1

    async def refused() -> JSONError:
        with pytest.raises(JSONError) as e:
            await capacity.hold(lambda _: asyncio.sleep(0), None)
        return e.value

    error = asyncio.run(refused())
    assert (error.status, error.headers, error.body["component"]) == (
        503,
        {"Retry-After": "1"},
        "cache",
    )
    assert capacity.rejected == 1
