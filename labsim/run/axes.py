"""The settings a sweep varies: `--set key=v1,v2,...`, read and bounded.

Plain parsing with the standard library only, so the command line checks every `--set`
before anything heavy loads. Values are split on commas first, then each is read as TOML
(20, 0.5, true, "x") or, failing that, taken as text: a list or table value cannot be
swept (set its keys one by one, such as `load.mix.data=1,3`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

MAX_POINTS = 1000  # a grid past this is a typo, not an experiment
MAX_JOBS = 64
MAX_VALUES = 100  # per axis
MAX_SPEC = 1000  # characters in one --set
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*")
# Keys a sweep cannot vary: what a scenario file lists rather than sets, and the clock.
_FIXED = {
    "variants": "pick a variant with --variant",
    "expect": "a sweep checks no expectations",
    "faults": "faults are a list: put them in the file",
    "load.clock": "sweeps run on the virtual clock",
}


@dataclass(frozen=True)
class Axis:
    """One setting and the values the sweep gives it."""

    key: str
    values: tuple[Any, ...]


def parse_axis(spec: str) -> Axis:
    """`key=v1,v2,...` as an Axis. ValueError naming the setting if it is not one."""
    if len(spec) > MAX_SPEC:
        raise ValueError(f"--set {spec[:40]}...: longer than {MAX_SPEC} characters")
    key, equals, text = spec.partition("=")
    key = key.strip()
    if not equals or not _KEY.fullmatch(key):
        raise ValueError(f"--set {spec!r}: give key=value[,value...], e.g. load.rate=20,40,60")
    for fixed, why in _FIXED.items():
        if key == fixed or key.startswith(f"{fixed}."):
            raise ValueError(f"--set {key}: cannot be swept: {why}")
    texts = [v.strip() for v in text.split(",")]
    if "" in texts:
        raise ValueError(f"--set {spec!r}: a value is empty (values are split on commas)")
    if len(texts) > MAX_VALUES:
        raise ValueError(f"--set {key}: at most {MAX_VALUES} values per setting")
    return Axis(key, tuple(_value(t) for t in texts))


def _value(text: str) -> Any:
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError):  # ValueError: an integer too long
        return text
    # Dates and times are TOML values no setting takes: keep what was typed.
    return value if isinstance(value, bool | int | float | str) else text
