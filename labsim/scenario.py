"""A scenario: a topology, the load to send it, faults on a schedule, and what to expect.

One TOML file holds it all (see docs/scenarios.md). `[[variants]]` tables run the same
scenario again with some keys changed, so a pattern can be compared with its absence in
one report. Validation happens here, once; every error names the file and the key.
"""

from __future__ import annotations

import copy
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, Topology, build, read_toml, topology_from_dict
from .faults import check_changes
from .load import ENDPOINTS, LAB_MIX

_SCENARIO_KEYS = {"load", "expect", "faults", "variants"}
_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_EXPECTATION = re.compile(r"^\s*([A-Za-z0-9_.:\-]+)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")
# The top-level keys of the bench report that hold figures.
REPORT_SECTIONS = (
    "requests",
    "time",
    "throughput_rps",
    "endpoints",
    "cache",
    "db_calls",
    "speedup",
    "gateways",
    "worker",
    "load_balancer",
    "rate_limited",
)


def _valid_mix(mix: dict[str, int]) -> bool:
    return (
        bool(mix) and all(k in ENDPOINTS and v >= 0 for k, v in mix.items()) and any(mix.values())
    )


@dataclass(frozen=True)
class Load:
    requests: int = field(default=100, metadata={"check": (lambda v: v >= 1, "must be at least 1")})
    concurrency: int = field(
        default=10, metadata={"check": (lambda v: v >= 1, "must be at least 1")}
    )
    mix: dict[str, int] = field(
        default_factory=lambda: dict(LAB_MIX),
        metadata={
            "check": (
                _valid_mix,
                f"must give whole weights, 0 or more, to some of {', '.join(ENDPOINTS)}",
            )
        },
    )
    clock: str = field(
        default="virtual",
        metadata={"check": (lambda c: c in ("virtual", "real"), 'must be "virtual" or "real"')},
    )


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

    def evaluate(self, result: dict[str, Any]) -> tuple[bool, float | None]:
        """(passed, the measured value); a figure that was not measured fails."""
        measured: Any = result
        for key in self.path:
            if not isinstance(measured, dict) or key not in measured:
                return False, None
            measured = measured[key]
        if isinstance(measured, bool) or not isinstance(measured, int | float):
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


def load_scenarios(path: str | Path) -> list[Scenario]:
    """The scenario in `path`, once per variant (once when it has none)."""
    source = str(path)
    data = read_toml(path)
    variants = data.pop("variants", None)
    if variants is None:
        return [_scenario(data, source, None)]
    if not isinstance(variants, list) or not variants:
        raise ConfigError(f"{source}: variants: must be a list of tables ([[variants]])")
    scenarios = []
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise ConfigError(f"{source}: variants[{i}]: must be a table")
        variant = dict(variant)
        name = variant.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: variants[{i}].name: required, a string")
        extra = variant.pop("expect", [])
        merged = merge_tables(data, variant)
        merged["expect"] = list(data.get("expect", [])) + (
            extra if isinstance(extra, list) else [extra]
        )
        scenarios.append(_scenario(merged, f"{source} (variant {name!r})", name))
    return scenarios


def _scenario(data: dict[str, Any], source: str, variant: str | None) -> Scenario:
    topology = topology_from_dict(data, source, ignore=_SCENARIO_KEYS)
    load = build(Load, data.get("load", {}), source, "load")
    faults = tuple(
        _fault(f, i, topology, source) for i, f in enumerate(_list(data, "faults", source))
    )
    expect = tuple(_expectation(e, i, source) for i, e in enumerate(_list(data, "expect", source)))
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
    if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
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


def _expectation(text: Any, i: int, source: str) -> Expectation:
    where = f"expect[{i}]"
    match = _EXPECTATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"{source}: {where}: {text!r} is not of the form 'figure op number', "
            f"e.g. 'cache.hit_ratio >= 0.8' (op: {' '.join(_OPERATORS)})"
        )
    path, op, number = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"{source}: {where}: {number!r} is not a number") from None
    keys = tuple(path.split("."))
    if keys[0] not in REPORT_SECTIONS:
        raise ConfigError(
            f"{source}: {where}: {keys[0]!r} is not a figure of the report "
            f"(known: {', '.join(REPORT_SECTIONS)})"
        )
    return Expectation(text.strip(), keys, op, value)


def merge_tables(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it: tables merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
