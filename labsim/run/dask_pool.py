"""Sweep points on a Dask distributed cluster: `sweep ... --cluster tcp://host:8786`.

Optional: `pip install 'labsim[cluster]'` on this machine and on every worker (each
worker imports labsim to run its points). A point is the same single-core, seeded run as
in a local pool, so the results are the same point for point; only the wall time changes.
Each task carries the scenario file's parsed text, so the workers need no copy of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..model.config import ConfigError

# Seconds to reach the scheduler before saying so.
CONNECT_TIMEOUT = 10.0


def points_on(
    address: str, run: Callable[..., Any], tasks: list[tuple[Any, ...]]
) -> Iterator[tuple[int, Any]]:
    """(index, result) of `run(*task)` for each task, run on the cluster at `address`, as
    each finishes; every task still pending is cancelled if the caller stops early."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError(
            "--cluster needs Dask's distributed scheduler: pip install 'labsim[cluster]'"
        ) from None
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT:g}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"--cluster {address}: cannot reach the scheduler: {reason}") from None
    run_id = uuid.uuid4().hex[:8]  # each sweep's tasks apart from any other's
    futures = {
        client.submit(run, *task, key=f"labsim-point-{run_id}-{i}", pure=False): i
        for i, task in enumerate(tasks)
    }
    try:
        for future in as_completed(futures, loop=client.loop):
            yield futures[future], future.result()
    finally:
        client.cancel(list(futures))
        client.close()
