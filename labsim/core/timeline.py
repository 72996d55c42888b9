"""Figures sampled through a bench run on the shared clock, in bounded memory.

The bench adds a sample at `next_at()` seconds from the start (simulated on the virtual
clock). When `limit` samples are kept, every other one is dropped and the step doubles,
so a run of any length keeps between limit/2 and limit evenly spaced samples (and one
last sample when the run ends). Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timeline:
    step: float = 0.01
    limit: int = 200
    t: list[float] = field(default_factory=list)
    series: dict[str, list[int]] = field(default_factory=dict)

    def add(self, t: float, values: dict[str, int]) -> None:
        """One sample at `t` seconds from the start; every sample has the same names."""
        self.t.append(round(t, 6))
        for name, value in values.items():
            self.series.setdefault(name, []).append(value)
        if len(self.t) >= self.limit:
            self.t = self.t[::2]
            self.series = {name: values[::2] for name, values in self.series.items()}
            self.step *= 2

    def next_at(self) -> float:
        """When the next sample is due, in seconds from the start."""
        return self.t[-1] + self.step if self.t else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"step_s": self.step, "t_s": self.t, **self.series}
