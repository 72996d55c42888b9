"""Service-time models: how long a component takes, as a seeded draw in seconds.

A model is plain data (`LatencyModel`); `sampler(model, rng)` turns it into a function.
Each component gets its own `random.Random` seeded from the scenario seed and its id, so
one component's draws never shift another's and a run is repeatable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

MODELS = {
    "fixed": ("seconds",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
}


@dataclass(frozen=True)
class LatencyModel:
    """A service-time distribution. `params` are in seconds (sigma is unitless)."""

    model: str = "fixed"
    params: tuple[tuple[str, float], ...] = (("seconds", 0.0),)

    @classmethod
    def fixed(cls, seconds: float) -> LatencyModel:
        return cls("fixed", (("seconds", float(seconds)),))

    def param(self, name: str) -> float:
        return dict(self.params)[name]

    def mean(self) -> float:
        """The model's expected value, used to predict latencies."""
        p = dict(self.params)
        match self.model:
            case "fixed":
                return p["seconds"]
            case "uniform":
                return (p["low"] + p["high"]) / 2
            case "exponential":
                return p["mean"]
            case "lognormal":
                return p["median"] * math.exp(p["sigma"] ** 2 / 2)
        raise ValueError(f"unknown latency model {self.model!r}")

    def describe(self) -> str:
        if self.model == "fixed":
            return f"{self.param('seconds') * 1000:g} ms"
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.model}({args})"


def sampler(model: LatencyModel, rng: random.Random) -> Callable[[], float]:
    """A function returning one service time (seconds, never negative) per call."""
    p = dict(model.params)
    match model.model:
        case "fixed":
            seconds = p["seconds"]
            return lambda: seconds
        case "uniform":
            return lambda: rng.uniform(p["low"], p["high"])
        case "exponential":
            return lambda: rng.expovariate(1 / p["mean"]) if p["mean"] > 0 else 0.0
        case "lognormal":
            mu = math.log(p["median"]) if p["median"] > 0 else -math.inf
            return lambda: rng.lognormvariate(mu, p["sigma"]) if p["median"] > 0 else 0.0
    raise ValueError(f"unknown latency model {model.model!r}")


def component_rng(seed: int, component_id: str) -> random.Random:
    """An RNG for one component, independent of every other component's draws."""
    return random.Random(f"{seed}:{component_id}")
