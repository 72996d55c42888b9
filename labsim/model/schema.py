"""A small typed reader from TOML to frozen dataclasses, and the error it raises.

`read_toml` reads a scenario file (or a shipped one, by name) within a size limit; `build`
makes a dataclass from a table, converting and checking every value (the `check` metadata
of each field), so every mistake is one `ConfigError` naming the file and the key. Used by
`config.py` and `scenario.py`; it knows no particular setting.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ..core.numbers import within
from . import shipped
from .latency import MODELS, LatencyModel

# The largest number any setting takes: 31 years of seconds, a billion requests.
LIMIT = 1_000_000_000
# A scenario file is read whole before it is parsed: bigger than this is not a scenario.
MAX_SCENARIO_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """A scenario or override the user must fix; the message names the key."""


# `check` metadata: (predicate, problem) applied to the field's value after conversion.
def check(predicate: typing.Callable[[Any], bool], problem: str) -> dict[str, Any]:
    return {"check": (predicate, problem)}


def one_of(*words: str) -> dict[str, Any]:
    """`check` metadata for a setting that takes one of a few words."""
    return check(lambda w: w in words, "must be " + " or ".join(f'"{w}"' for w in words))


def read_limited(path: str | Path, limit: int, what: str) -> bytes:
    """At most `limit` bytes of the file `what` at `path`; ConfigError naming it otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)  # never more: the path may be /dev/zero
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(raw) > limit:
        raise ConfigError(f"{path}: larger than {limit:,} bytes: not a {what}")
    return raw


def finite(number: str, where: str) -> float:
    """`number` as a finite float; ConfigError naming `where` otherwise."""
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {number!r} is not a finite number")
    return value


def read_toml(path: str | Path) -> dict[str, Any]:
    return parse_toml(read_scenario(path), path)


def read_scenario(path: str | Path) -> str:
    """The text of the scenario file `path`, or of the shipped scenario of that name.

    Read once: `path` may be a pipe (`<(cat lab.toml)`), which a second read finds empty."""
    found = shipped.find(path)
    if found is not None:
        raw = found.read_bytes()
    else:
        try:
            raw = read_limited(path, MAX_SCENARIO_BYTES, "scenario file")
        except ConfigError:
            if shipped.is_name(path) and not os.path.lexists(path):
                raise ConfigError(
                    f"{path}: no such scenario file, nor a shipped scenario "
                    "(python -m labsim scenarios lists them)"
                ) from None
            raise
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def parse_toml(text: str, source: str | Path) -> dict[str, Any]:
    """A scenario's text as TOML; ConfigError naming `source` otherwise."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None


def build(
    cls: Any,
    data: Any,
    source: str,
    where: str,
    exclude: AbstractSet[str] = frozenset(),
    read_elsewhere: AbstractSet[str] = frozenset(),
) -> Any:
    """An instance of dataclass `cls` from a TOML table, every value checked.

    `read_elsewhere`: keys of the same table that another layer reads, named among the
    known ones when a key is unknown."""
    if not isinstance(data, dict):
        raise ConfigError(f"{_in(source)}{where or 'scenario'}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields.keys() | read_elsewhere))
            shown = key if key.isprintable() else repr(key)  # a quoted TOML key: "a\nb"
            raise ConfigError(f"{_in(source)}{_join(where, shown)}: unknown key (known: {known})")
    values = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{_in(source)}{key}: required")
            continue
        values[name] = _field(f, hints[name], data[name], source, key)
    return cls(**values)


def field_value(cls: Any, name: str, value: Any, key: str) -> Any:
    """Field `name` of dataclass `cls` made from `value`, converted and checked as `build`
    does it from a file; ConfigError naming `key` (how the caller called it)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return _field(f, typing.get_type_hints(cls)[name], value, "", key)


def _field(f: dataclasses.Field[Any], hint: Any, raw: Any, source: str, key: str) -> Any:
    value = _convert(hint, raw, source, key)
    check = f.metadata.get("check")
    if check and not check[0](value):
        raise ConfigError(f"{_in(source)}{key}: {check[1]} (got {raw!r})")
    return value


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    if hint is LatencyModel:
        return latency_value(value, source, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # made in Python already (`labsim.bench(stages=...)`)
            return value
        return build(hint, value, source, key)
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_in(source)}{key}: must be a table (got {value!r})")
        item = typing.get_args(hint)[1]
        return {k: _convert(item, v, source, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{_in(source)}{key}: must be a list (got {value!r})")
        return tuple(_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    return _scalar(hint, value, source, key)


def _scalar(hint: type, value: Any, source: str, key: str) -> Any:
    number = within(value, -math.inf, math.inf) or isinstance(value, float)  # NaN, inf too
    if number and (hint is float or (hint is int and isinstance(value, int))):
        if not within(value, -LIMIT, LIMIT):
            raise ConfigError(
                f"{_in(source)}{key}: must be a finite number of at most {LIMIT:,} (got {value!r})"
            )
        return hint(value)
    if hint is str and isinstance(value, str):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    article = "an" if hint.__name__[0] in "aeiou" else "a"
    raise ConfigError(f"{_in(source)}{key}: must be {article} {hint.__name__} (got {value!r})")


def latency_value(value: Any, source: str, key: str) -> LatencyModel:
    """A latency is seconds (a number) or a table such as {model = "uniform", low, high}."""
    if within(value, -math.inf, math.inf) or isinstance(value, float):
        seconds = _scalar(float, value, source, key)
        if seconds < 0:
            raise ConfigError(f"{_in(source)}{key}: latency cannot be negative (got {value!r})")
        return LatencyModel.fixed(seconds)
    if not isinstance(value, dict):
        raise ConfigError(
            f"{_in(source)}{key}: must be seconds or a table like "
            f'{{ model = "uniform", low = 0.001, high = 0.003 }} (got {value!r})'
        )
    table = dict(value)
    model = table.pop("model", "fixed")
    if model not in MODELS:
        raise ConfigError(
            f"{_in(source)}{key}.model: unknown latency model {model!r} "
            f"(known: {', '.join(MODELS)})"
        )
    names = MODELS[model]
    extra = set(table) - set(names)
    if extra:
        raise ConfigError(
            f"{_in(source)}{key}.{sorted(extra)[0]}: unknown key for model {model!r} "
            f"(known: model, {', '.join(names)})"
        )
    params = []
    for name in names:
        if name not in table:
            raise ConfigError(f"{_in(source)}{key}.{name}: required for model {model!r}")
        number = _scalar(float, table[name], source, f"{key}.{name}")
        if number < 0:
            raise ConfigError(f"{_in(source)}{key}.{name}: cannot be negative (got {number!r})")
        params.append((name, number))
    if model == "uniform" and params[0][1] > params[1][1]:
        raise ConfigError(f"{_in(source)}{key}: low must not exceed high")
    latency = LatencyModel(model, tuple(params))
    try:
        mean = latency.mean()
    except OverflowError:  # lognormal: median * exp(sigma**2 / 2)
        mean = math.inf
    if not mean <= LIMIT:
        raise ConfigError(
            f"{_in(source)}{key}: the model's mean is more than {LIMIT:,} seconds (got {value!r})"
        )
    return latency


def _in(source: str) -> str:
    """What a message starts with: the file it is about, if it is about one."""
    return f"{source}: " if source else ""


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
