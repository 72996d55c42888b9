"""The dashboard shows a component's slots: busy over the last tick, its line, refusals."""

from __future__ import annotations

import asyncio
import re
import threading
import urllib.request

import pytest
from playwright.sync_api import expect

from labsim.core.clock import VirtualClock
from labsim.core.http import HttpClient
from labsim.views.snapshot import Sampler

# The browser, as the dashboard's own browser tests have it (skipped, with the reason, without).
from .conftest import Up, free_ports, write_scenario
from .test_dashboard_browser import browser, shown  # noqa: F401


async def test_the_snapshot_has_each_station_and_its_utilization_per_tick(start_cluster):
    clock = VirtualClock()
    changes = {"database": {"latency": 0, "concurrency": 2, "service": 1.0, "queue_size": 1}}
    cluster = await start_cluster(changes, clock)
    client = HttpClient(clock)
    sampler = Sampler(cluster)
    url = cluster.urls["database"] + "/db"

    async def scenario():
        first = sampler.snapshot()["components"]
        sent = [
            asyncio.create_task(client.request("database", "GET", url, check=False))
            for _ in range(4)
        ]
        await clock.sleep(0.5)  # two in the slots, one waiting, one refused
        middle = sampler.snapshot()["components"]
        await clock.sleep(2.0)  # the third was served from 1 to 2 s
        for reply in sent:
            await reply
        return first, middle, sampler.snapshot()["components"]

    try:
        first, middle, last = await clock.run(scenario())
    finally:
        await client.close()
    assert "capacity" not in first["cache"]
    assert first["database"]["capacity"] == {
        "slots": 2,
        "busy": 0,
        "utilization": None,
        "queue_length": 0,
        "queue_size": 1,
        "rejected": 0,
    }
    assert middle["database"]["capacity"] | {"utilization": None} == {
        "slots": 2,
        "busy": 2,
        "utilization": None,
        "queue_length": 1,
        "queue_size": 1,
        "rejected": 1,
    }
    assert middle["database"]["capacity"]["utilization"] == 1.0  # both slots, all 0.5 s
    # From 0.5 to 2.5 s: 2 slots busy to 1 s, 1 slot to 2 s: 2 of 4 slot-seconds.
    assert last["database"]["capacity"]["utilization"] == 0.5


@pytest.fixture
def lab_with_slots(tmp_path):
    """`labsim up` whose database has one slot held 1 s a request, and a line of 5."""
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path / "s.toml", ports)
    text = scenario.read_text().replace(
        "[database]\n", "[database]\nconcurrency = 1\nqueue_size = 5\nservice = 1.0\n", 1
    )
    scenario.write_text(text)
    up = Up("--scenario", str(scenario), "--quiet", "--dashboard-port", str(panel))
    link = next(line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard"))
    yield link, f"http://127.0.0.1:{ports[5]}"
    up.stop()


def test_the_page_shows_slots_busy_and_the_line(browser, lab_with_slots):  # noqa: F811
    link, database = lab_with_slots
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(link)
        expect(page.get_by_test_id("status")).to_have_text(re.compile("^live"))
        expect(shown(page, "database", "busy")).to_have_text(re.compile("^0 of 1"))
        expect(shown(page, "database", "waiting")).to_have_text("0 of 5 · 0")
        expect(shown(page, "cache", "busy")).to_have_count(0)  # no slots, no line
        readers = [
            threading.Thread(target=urllib.request.urlopen, args=(f"{database}/db",))
            for _ in range(2)
        ]
        for reader in readers:
            reader.start()
        expect(shown(page, "database", "busy")).to_have_text(re.compile("^1 of 1"))
        expect(shown(page, "database", "waiting")).to_have_text("1 of 5 · 0")
        for reader in readers:
            reader.join()
    finally:
        context.close()
