"""One user flow as the dashboard's steered load runs it: each arrival is one whole run of
the flow, sent by `flows.py`'s runner (its steps, repeats, think times on the clock, its
login's token), and each step's figures are kept live.

The requests are filed in a tally under `flow/step`, as any load of flows files them,
which also keeps each step's served answers of the last `window` seconds (bounded).
Touches the session's client and clock, nothing else.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..core.clock import Clock
from ..model.flows import Flow
from .flows import flow_runs, label
from .session import Session
from .tally import EndpointStats, Outcome, Tally
from .window import Window, ms, quantile


class _LiveTally(Tally):
    """A tally that also keeps each step's served answers of the last `window` seconds."""

    def __init__(self, clock: Clock, window: float, keep: int, **tally: Any) -> None:
        super().__init__(**tally)
        self.clock, self.window, self.keep = clock, window, keep
        self.recent: dict[str, Window] = {}

    def record(
        self,
        endpoint: str,
        outcome: Outcome,
        latency: float,
        served: bool | None = None,
        sent: float | None = None,
    ) -> None:
        # Not filed by interval (`sent`): the page shows the window, not a run's timeline.
        super().record(endpoint, outcome, latency, served)
        if served:
            recent = self.recent.setdefault(endpoint, Window(self.window, self.keep))
            recent.add(self.clock.now(), latency)


class FlowLoad:
    """Runs of one flow, for a steered load's arrivals: `run(number, scheduled)` sends
    one; `halt` lets no run send any more; `steps(now)` are the figures of each step."""

    def __init__(
        self,
        session: Session,
        flow: Flow,
        token: str | None,
        *,
        seed: int,
        window: float,
        keep: int,
    ) -> None:
        self.flow = flow
        self.stop = asyncio.Event()
        # The bound on the answers kept is the load's, shared by the steps.
        self.tally = _LiveTally(
            session.clock,
            window,
            max(100, keep // len(flow.steps)),
            cached=session.cached,
            entry=session.entry,
        )
        self.run = flow_runs(session, flow, token, self.tally, self.stop, seed)

    @property
    def name(self) -> str:
        return self.flow.name

    def halt(self) -> None:
        self.stop.set()

    def steps(self, now: float) -> list[dict[str, Any]]:
        """Each step's requests since the start (served or failed; `failed` of them) and
        the p50 and p99 of its served answers of the last `window` seconds, in order."""
        out = []
        for name, step in zip(self.flow.step_names(), self.flow.steps, strict=True):
            where = label(self.flow.name, name)
            stats = self.tally.endpoints.get(where, EndpointStats())
            recent = self.tally.recent.get(where)
            latencies = recent.latencies(now) if recent is not None else []
            out.append(
                {
                    "name": name,
                    "request": step.request,
                    "count": stats.ok.count + stats.failed,
                    "failed": stats.failed,
                    "p50_ms": ms(quantile(latencies, 0.5)),
                    "p99_ms": ms(quantile(latencies, 0.99)),
                }
            )
        return out
