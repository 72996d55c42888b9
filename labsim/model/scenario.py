"""A scenario: a topology, the load to send it, faults on a schedule, and what to expect.

One TOML file holds it all (see docs/scenarios.md). `[[variants]]` tables run the same
scenario again with some keys changed, so a pattern can be compared with its absence in
one report. Validation happens here, once; every error names the file and the key.
"""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.numbers import within
from .config import (
    AT_LEAST_ONE,
    GATEWAY_PORT_STEP,
    LIMIT,
    MAX_CONCURRENCY,
    MAX_GATEWAYS,
    NO_TIME,
    ConfigError,
    Topology,
    check,
)
from .faults import check_changes
from .flows import Flow, check_flows
from .keys import NO_KEYS, UNFIT, Keys, fits
from .latency import LatencyModel
from .load import AUTH, ENDPOINTS, LAB_MIX, check_mix
from .result import figure_problem
from .schema import build, finite, read_toml
from .topology import topology_from_dict

if TYPE_CHECKING:
    from .result import BenchResult

_SCENARIO_KEYS = {"load", "expect", "faults", "variants"}
_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_SHORT_FORMS = {"failures": "requests.failed"}
_EXPECTATION = re.compile(r"^\s*([A-Za-z0-9_.:\-]+)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")


def _valid_mix(mix: dict[str, int]) -> bool:
    try:
        check_mix(mix)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Stage:
    """One ramp of an open load: the rate goes linearly to `rate` over `duration` seconds."""

    duration: float = field(metadata=check(lambda d: d > 0, "must be seconds above 0"))
    rate: float = field(metadata=check(lambda r: r >= 0, "must be requests a second, 0 or more"))


ARRIVALS = ("poisson", "constant")
MIN_INTERVAL, MAX_INTERVAL = 0.001, 3600.0


@dataclass(frozen=True)
class Load:
    """The load to send: a closed model (`concurrency` clients, each waiting for its
    answer) unless `rate` or `stages` make it an open one (arrivals at a rate)."""

    requests: int = field(default=100, metadata=AT_LEAST_ONE)
    concurrency: int = field(
        default=10,
        metadata=check(
            lambda c: 1 <= c <= MAX_CONCURRENCY, f"must be from 1 to {MAX_CONCURRENCY:,}"
        ),
    )
    mix: dict[str, int] = field(
        default_factory=lambda: dict(LAB_MIX),
        metadata=check(
            _valid_mix, f"must give whole weights, 0 or more, to some of {', '.join(ENDPOINTS)}"
        ),
    )
    clock: str = field(
        default="virtual",
        metadata=check(lambda c: c in ("virtual", "real"), 'must be "virtual" or "real"'),
    )
    rate: float = field(default=0.0, metadata=check(lambda r: r >= 0, "must be 0 or more"))
    arrivals: str = field(
        default="poisson",
        metadata=check(lambda a: a in ARRIVALS, f"must be one of {', '.join(ARRIVALS)}"),
    )
    duration: float = field(default=0.0, metadata=check(lambda d: d >= 0, "must be 0 or more"))
    stages: tuple[Stage, ...] = field(
        default=(), metadata=check(lambda s: len(s) <= 1000, "must list at most 1000 stages")
    )
    max_in_flight: int = field(
        default=1000,
        metadata=check(
            lambda n: 1 <= n <= MAX_CONCURRENCY, f"must be from 1 to {MAX_CONCURRENCY:,}"
        ),
    )
    auth: str = field(
        default="login",
        metadata=check(lambda a: a in AUTH, f"must be one of {', '.join(AUTH)}"),
    )
    # Closed: each client's pause between an answer and its next request (a latency).
    think: LatencyModel = NO_TIME
    # Users' journeys (`[[load.flows]]`, model/flows.py) instead of the mix: `requests`
    # then counts runs of a flow (an open load's arrivals each run one).
    flows: tuple[Flow, ...] = ()
    # Seconds of each interval of the figures over time (0: chosen from the run's length).
    interval: float = field(
        default=0.0,
        metadata=check(
            lambda s: s == 0 or MIN_INTERVAL <= s <= MAX_INTERVAL,
            f"must be 0 (chosen from the run's length) or seconds from {MIN_INTERVAL:g} "
            f"to {MAX_INTERVAL:,g}",
        ),
    )
    # The key each read asks for (`?key=`), by popularity; none given: the gateways' one.
    keys: Keys = field(default=NO_KEYS, metadata=check(fits, UNFIT))

    @property
    def open(self) -> bool:
        return self.rate > 0 or bool(self.stages)


@dataclass(frozen=True)
class Fault:
    """At `at` seconds into the load, change `component`'s faults (or reset them)."""

    at: float
    component: str
    changes: dict[str, Any]
    reset: bool = False


@dataclass(frozen=True)
class Expectation:
    text: str
    path: tuple[str, ...]
    op: str
    value: float

    def evaluate(self, result: BenchResult) -> tuple[bool, float | None]:
        """(passed, the measured value); a figure that was not measured fails."""
        measured = result.figure(".".join(self.path))
        if measured is None:
            return False, None
        return _OPERATORS[self.op](measured, self.value), measured


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    topology: Topology
    load: Load = Load()
    faults: tuple[Fault, ...] = ()
    expect: tuple[Expectation, ...] = ()
    variant: str | None = None

    @property
    def title(self) -> str:
        return f"{self.name} ({self.variant})" if self.variant else self.name


def lab_scenario() -> Scenario:
    """The lab's own setup, with no file: what `bench` runs without `--scenario`."""
    return Scenario("lab", "", "built-in lab defaults", Topology())


def load_scenarios(path: str | Path, overrides: Mapping[str, Any] | None = None) -> list[Scenario]:
    """The scenario in `path`, once per variant (once when it has none); `overrides`
    (dotted keys such as "load.rate") are laid over each, after the variant's own keys."""
    return scenarios_from(read_toml(path), str(path), overrides)


def scenarios_from(
    data: dict[str, Any], source: str, overrides: Mapping[str, Any] | None = None
) -> list[Scenario]:
    """As `load_scenarios`, from a scenario file's parsed TOML (`source` names it in
    errors): what a sweep sends to a worker on another machine, which has no such file."""
    data = copy.deepcopy(data)
    variants = data.pop("variants", None)
    if variants is None:
        return [_scenario(overridden(data, overrides or {}), source, None)]
    if not isinstance(variants, list) or not variants:
        raise ConfigError(f"{source}: variants: must be a list of tables ([[variants]])")
    scenarios: list[Scenario] = []
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise ConfigError(f"{source}: variants[{i}]: must be a table")
        variant = dict(variant)
        name = variant.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: variants[{i}].name: required, a string")
        if any(s.variant == name for s in scenarios):
            raise ConfigError(f"{source}: variants[{i}].name: {name!r} is used twice")
        if "variants" in variant:
            raise ConfigError(f"{source}: variants[{i}].variants: variants cannot nest")
        if "hosts" in variant:  # it would move components that a split or export placed
            raise ConfigError(
                f"{source}: variants[{i}].hosts: a variant cannot move components; "
                "give [hosts] once, at the top of the file"
            )
        extra = variant.pop("expect", [])
        merged = overridden(merge_tables(data, variant), overrides or {})
        merged["expect"] = list(data.get("expect", [])) + (
            extra if isinstance(extra, list) else [extra]
        )
        scenarios.append(_scenario(merged, f"{source} (variant {name!r})", name))
    return scenarios


def _scenario(data: dict[str, Any], source: str, variant: str | None) -> Scenario:
    topology = topology_from_dict(data, source, ignore=_SCENARIO_KEYS)
    given = data.get("load", {})
    if isinstance(given, dict) and "flows" in given and "mix" in given:
        raise ConfigError(
            f"{source}: load.mix: the load's flows say which requests to send; "
            "give load.mix or load.flows, not both"
        )
    load = check_load(build(Load, given, source, "load"), f"{source}: load")
    faults = tuple(
        _fault(f, i, topology, source) for i, f in enumerate(_list(data, "faults", source))
    )
    expect = tuple(
        parse_expectation(e, source, f"expect[{i}]")
        for i, e in enumerate(_list(data, "expect", source))
    )
    return Scenario(
        name=topology.name,
        description=topology.description,
        source=source.split(" (variant")[0],
        topology=topology,
        load=load,
        faults=faults,
        expect=expect,
        variant=variant,
    )


def check_load(load: Load, where: str) -> Load:
    """The load, if its open-model settings fit together; ConfigError naming `where`."""
    if load.duration and not load.rate:
        raise ConfigError(f"{where}.duration: needs a rate (an open load); give load.rate too")
    if load.stages and load.duration:
        raise ConfigError(
            f"{where}.duration: stages have their own durations; give one or the other"
        )
    if load.open and load.think.mean() > 0:
        raise ConfigError(
            f"{where}.think: a closed load's pause between requests; an open load's "
            "arrivals come at load.rate whatever the answers (drop one or the other)"
        )
    check_flows(load.flows, f"{where}.flows")
    if load.flows and load.think.mean() > 0:
        raise ConfigError(
            f"{where}.think: a flow's steps give their own think times "
            "(load.flows[].steps[].think); drop load.think"
        )
    return load


def _list(data: dict[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key}: must be a list")
    return value


def _fault(data: Any, i: int, topology: Topology, source: str) -> Fault:
    where = f"faults[{i}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where}: must be a table")
    data = dict(data)
    at = data.pop("at", None)
    if not within(at, 0, LIMIT):
        raise ConfigError(f"{source}: {where}.at: required, seconds 0 or more (got {at!r})")
    component = data.pop("component", None)
    known = list(topology.ports())
    if component not in known:
        raise ConfigError(
            f"{source}: {where}.component: unknown component {component!r} "
            f"(known: {', '.join(known)})"
        )
    reset = data.pop("reset", False)
    if not isinstance(reset, bool):
        raise ConfigError(f"{source}: {where}.reset: must be true or false")
    if not data and not reset:
        raise ConfigError(f"{source}: {where}: give a fault to set, or reset = true")
    try:
        changes = check_changes(data) if data else {}
    except ValueError as e:
        raise ConfigError(f"{source}: {where}: {e}") from None
    return Fault(float(at), component, changes, reset)


def parse_expectation(text: Any, source: str, where: str) -> Expectation:
    """`figure op number`, as in a scenario's `expect` or `bench --threshold`.

    Two short forms, as k6 users write them: an endpoint first (`data.p99_ms` for
    `endpoints.data.p99_ms`) and `failures` for `requests.failed`."""
    match = _EXPECTATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"{source}: {where}: {text!r} is not of the form 'figure op number', "
            f"e.g. 'cache.hit_ratio >= 0.8' (op: {' '.join(_OPERATORS)})"
        )
    path, op, number = match.groups()
    value = finite(number, f"{source}: {where}")
    path = _SHORT_FORMS.get(path) or (
        f"endpoints.{path}" if path.split(".")[0] in ENDPOINTS else path
    )
    keys = tuple(path.split("."))
    problem = figure_problem(path, ENDPOINTS)
    if problem:
        raise ConfigError(f"{source}: {where}: {path!r} is not a figure of the report: {problem}")
    return Expectation(text.strip(), keys, op, value)


def overridden(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each dotted key of `overrides` set, tables made on the way.
    "gateways.count = N" is short for N gateway ports, 3 apart from the first one."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        if key == "gateways.count":
            key, value = "gateways.ports", _gateway_ports(out, value)
        *tables, last = key.split(".")
        table = out
        for i, part in enumerate(tables):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{key}: {'.'.join(tables[: i + 1])} is not a table")
        table[last] = value
    return out


def _gateway_ports(data: dict[str, Any], count: Any) -> list[int]:
    if isinstance(count, bool) or not (isinstance(count, int) and 1 <= count <= MAX_GATEWAYS):
        raise ConfigError(f"gateways.count: must be a whole number from 1 to {MAX_GATEWAYS}")
    gateways = data.get("gateways")
    ports = gateways.get("ports") if isinstance(gateways, dict) else None
    first = ports[0] if isinstance(ports, list) and ports and isinstance(ports[0], int) else 5000
    return [first + GATEWAY_PORT_STEP * i if first else 0 for i in range(count)]


def merge_tables(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it: tables merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
