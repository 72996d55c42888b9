"""A scenario's faults, applied on schedule through each component's own admin API."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.http import DownstreamError
from ..model.scenario import Fault
from .session import BenchError, Session


async def apply_faults(session: Session, faults: Sequence[Fault], start: float) -> None:
    """At each fault's time (seconds from `start` on the run's clock), set or reset it."""
    cluster, clock, client = session.cluster, session.clock, session.client
    assert cluster is not None, "faults need the topology in this process"
    headers = {"Authorization": f"Bearer {cluster.topology.admin_token}"}
    for fault in sorted(faults, key=lambda f: f.at):
        await clock.sleep(start + fault.at - clock.now())
        url = cluster.urls[fault.component]
        try:
            if fault.reset:
                await client.request(fault.component, "POST", f"{url}/admin/reset", headers=headers)
            if fault.changes:
                await client.request(
                    fault.component,
                    "POST",
                    f"{url}/admin/faults",
                    headers=headers,
                    json_body=fault.changes,
                )
        except DownstreamError as e:
            raise BenchError(f"cannot inject the fault at t={fault.at:g}s: {e}") from None
