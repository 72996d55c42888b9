"""A scenario's `[load]` with a caller's changes on top: the command line's options and
the keywords of `labsim.bench()`, through one validation with one set of messages.

Each value is converted and checked as the scenario file's own is (`schema.field_value`);
then the changes must fit together: a setting the load would ignore is refused, never
dropped in silence. Messages name each setting as the caller spelled it (`--max-in-flight`
on the command line, `max_in_flight` in Python).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .flows import check_flows
from .scenario import Load
from .schema import ConfigError, field_value

# Settings only an open load (arrivals at a rate) reads, and only a closed one.
OPEN_ONLY = ("arrivals", "duration", "max_in_flight")
CLOSED_ONLY = ("concurrency",)

Name = Callable[[str], str]


def option_name(key: str) -> str:
    """How the command line spells a `[load]` key: `max_in_flight` -> `--max-in-flight`."""
    return "--" + key.replace("_", "-")


def changed_load(load: Load, changes: Mapping[str, Any], name: Name = str) -> Load:
    """`load` with `changes` (key -> value) on top; ConfigError (a ValueError) naming the
    setting by `name(key)` when a value is wrong or the changes contradict each other."""
    known = [f.name for f in dataclasses.fields(Load)]
    for key in changes:
        if key not in known:
            raise ConfigError(f"{name(key)}: not a setting of the load (known: {', '.join(known)})")
    values = {key: field_value(Load, key, value, name(key)) for key, value in changes.items()}
    # What is given replaces the scenario's way of ending the load: a rate its ramps, a
    # number of requests its duration.
    if "rate" in values and "stages" not in values:
        values["stages"] = ()
    if "requests" in values and "duration" not in values:
        values["duration"] = 0.0
    changed = dataclasses.replace(load, **values)
    _fit(changed, list(changes), name)
    _fit_flows(changed, list(changes), name)
    return changed


def _fit(load: Load, given: list[str], name: Name) -> None:
    """Refuse a given setting that `load`, as changed, would not read."""
    if "requests" in given and "duration" in given and load.duration:
        raise ConfigError(
            f"{name('requests')} and {name('duration')}: an open load sends arrivals for a "
            "time or a number of them; give one"
        )
    if not load.open:
        unread = next((k for k in given if k in OPEN_ONLY), None)
        if unread is not None:
            raise ConfigError(
                f"{name(unread)} needs {name('rate')}: it applies to an open load (arrivals "
                "at a rate) only"
            )
        return
    unread = next((k for k in given if k in CLOSED_ONLY), None)
    if unread is not None:
        raise ConfigError(
            f"{name(unread)} applies to a closed load only; an open load's limit is "
            f"{name('max_in_flight')}"
        )
    ended = next((k for k in given if k in ("requests", "duration")), None)
    if load.stages and ended is not None:
        raise ConfigError(
            f"{name(ended)}: the scenario's load.stages decide when the load ends; "
            f"give {name('rate')} to replace them"
        )


def _fit_flows(load: Load, given: list[str], name: Name) -> None:
    """Refuse a mix or a load's think time given for a load of flows, which sends neither;
    check flows given here as a scenario's are checked."""
    if "flows" in given:
        check_flows(load.flows, name("flows"))
    if not load.flows:
        return
    for key in ("mix", "think"):
        if key in given and (key == "mix" or load.think.mean() > 0):
            raise ConfigError(
                f"{name(key)}: the load runs the scenario's flows (load.flows), whose steps "
                f"say what to send and how long to think; drop {name(key)}"
            )
