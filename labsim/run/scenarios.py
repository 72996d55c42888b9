"""A scenario file, run: each of its variants, then every expectation checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.config import Topology
from ..model.result import BenchResult, Check
from ..model.scenario import Scenario
from .bench import execute
from .session import BenchOptions


@dataclass
class ScenarioRun:
    """The variants of one scenario file, run in order, and their checks."""

    scenarios: list[Scenario]
    results: list[BenchResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: `results` ends with the partial one

    @property
    def passed(self) -> bool:
        return not self.interrupted and all(c.passed for c in self.checks)

    def named(self) -> list[tuple[str, BenchResult]]:
        """(variant or scenario name, result) for each run."""
        names = [s.variant or s.name for s in self.scenarios]
        return list(zip(names, self.results, strict=False))  # all of them, or those run


def run_scenario(
    scenarios: list[Scenario],
    prepare: Callable[[Topology], Topology] = lambda t: t,
    *,
    interruptible: bool = False,
    engine: str = "http",
) -> ScenarioRun:
    """Run each variant (`prepare` sets what the scenario does not: secrets, overrides),
    by `engine` (`bench.execute`)."""
    run = ScenarioRun(scenarios)
    for scenario in scenarios:
        options = BenchOptions.of(scenario.load, interruptible=interruptible)
        result = execute(prepare(scenario.topology), options, scenario.faults, engine=engine)
        run.results.append(result.titled(scenario.title))
        if result.interrupted:
            run.interrupted = True
            return run
    for scenario, result in zip(scenarios, run.results, strict=True):
        for e in scenario.expect:
            passed, measured = e.evaluate(result)
            run.checks.append(Check(scenario.variant or "", e.text, passed, measured))
    return run
