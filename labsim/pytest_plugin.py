"""A pytest fixture for testing your own client against the lab: `labsim_topology`.

Installed with labsim (an entry point in the `pytest11` group), so any test suite in the
same environment can ask for it:

    def test_my_client_sees_a_hit(labsim_topology):
        client = MyClient(labsim_topology.url)
        ...

    @pytest.mark.labsim(scenario="zero-latency.toml", variant=None)
    def test_with_a_scenario(labsim_topology): ...

A scenario's relative path is read from the test file's folder first, then from the
current one, so a suite finds its scenarios wherever pytest is started. Each test gets
its own topology on free ports of 127.0.0.1, on the real clock, served by a thread of
its own, stopped when the test ends (`labsim.api.serve`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .api import Lab, load_scenario, serve


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "labsim(scenario=None, variant=None): the scenario the labsim_topology fixture serves",
    )


@pytest.fixture
def labsim_topology(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab (or the scenario a `labsim` marker names), served for this test."""
    marker = request.node.get_closest_marker("labsim")
    options = dict(marker.kwargs) if marker else {}
    path = options.get("scenario")
    if path:
        beside = request.path.parent / path  # an absolute `path` stays itself
        path = beside if beside.exists() else path
    scenario = load_scenario(path, options.get("variant")) if path else None
    with serve(scenario) as lab:
        yield lab
