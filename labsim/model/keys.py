"""Keys with popularity: which cache key each request of the load reads.

A key space of `count` keys (`k0` ... `k<count-1>`, the most popular first) and how often
each is read: `uniform`, `zipf` (key i, from 1, read in proportion to 1 / i**s, the
classic model of web and cache traffic) or `hot` (`hot_requests` % of the requests go to
the first `hot_keys` % of the keys, uniformly within the hot set and within the rest).
Draws come from a generator the caller seeds, so a run is repeatable. `count = 0` (the
default): no key is drawn, every request reads the one key the gateways read (today's load).

Plain data and functions, no I/O: the CLI checks `--keys` with them before anything runs.
"""

from __future__ import annotations

import bisect
import itertools
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from .schema import ConfigError, check, field_value

POPULARITIES = ("uniform", "zipf", "hot")
# A key space past this is memory (8 bytes a key for the cumulative weights), not a lab.
MAX_KEYS = 1_000_000
MAX_S = 10.0  # a Zipf exponent past this puts every request on the first key anyway
_PERCENT = check(lambda v: 0 < v < 100, "must be a percentage above 0 and below 100")


@dataclass(frozen=True)
class Keys:
    """How the load picks the key each read asks for (`?key=`); off when `count` is 0."""

    count: int = field(
        default=0,
        metadata=check(
            lambda n: 0 <= n <= MAX_KEYS, f"must be from 0 (one key, the gateways') to {MAX_KEYS:,}"
        ),
    )
    popularity: str = field(
        default="uniform",
        metadata=check(lambda p: p in POPULARITIES, f"must be one of {', '.join(POPULARITIES)}"),
    )
    s: float = field(
        default=1.0,
        metadata=check(lambda s: 0 <= s <= MAX_S, f"must be from 0 to {MAX_S:g} (Zipf's exponent)"),
    )
    hot_keys: float = field(default=20.0, metadata=_PERCENT)  # % of the keys that are hot
    hot_requests: float = field(default=80.0, metadata=_PERCENT)  # % of requests to them

    @property
    def on(self) -> bool:
        return self.count > 0

    def describe(self) -> str:
        """In words, for the report: `1000 keys, zipf s=0.8`."""
        shown = f"{self.count:,} keys, {self.popularity}"
        if self.popularity == "zipf":
            return f"{shown} s={self.s:g}"
        if self.popularity == "hot":
            return f"{shown} {self.hot_requests:g}% of requests to {self.hot_keys:g}% of keys"
        return shown


NO_KEYS = Keys()  # every read asks for the gateways' own key


def key_name(rank: int) -> str:
    """The key of popularity rank `rank` (0: the most read)."""
    return f"k{rank}"


def hot_count(keys: Keys) -> int:
    """How many keys the hot set holds: at least one, and at least one key left cold."""
    return min(keys.count - 1, max(1, round(keys.count * keys.hot_keys / 100)))


def probabilities(keys: Keys) -> list[float]:
    """The chance that a read asks for each key, by rank (summing to 1)."""
    n = keys.count
    if n <= 0:
        return []
    if keys.popularity == "zipf":
        weights = [1.0 / (i**keys.s) for i in range(1, n + 1)]
        total = sum(weights)
        return [w / total for w in weights]
    if keys.popularity == "hot" and n > 1:
        hot = hot_count(keys)
        share = keys.hot_requests / 100
        return [share / hot] * hot + [(1 - share) / (n - hot)] * (n - hot)
    return [1.0 / n] * n


def drawer(keys: Keys, rng: random.Random) -> Callable[[], str]:
    """A function returning one key per call, drawn by `keys`' popularity from `rng`."""
    n = keys.count
    if keys.popularity == "uniform" or n == 1:
        return lambda: key_name(rng.randrange(n))
    if keys.popularity == "hot":
        hot, share = hot_count(keys), keys.hot_requests / 100
        # One uniform draw per part: the hot set's own ranks, or the rest's.
        return lambda: key_name(
            rng.randrange(hot) if rng.random() < share else hot + rng.randrange(n - hot)
        )
    cumulative = array("d", itertools.accumulate(probabilities(keys)))
    last = n - 1  # a draw of the sum's rounding error past the last bound is the last key

    def draw() -> str:
        return key_name(min(last, bisect.bisect_right(cumulative, rng.random())))

    return draw


def fits(keys: Keys) -> bool:
    """Whether the settings fit together: a hot set needs a key that is not hot."""
    return not (keys.popularity == "hot" and keys.count == 1)


UNFIT = "a hot set needs at least 2 keys (count)"


def parse_keys(text: str) -> Keys:
    """`count=1000,popularity=zipf,s=0.8` (the `[load] keys` table's keys), as `bench
    --keys` takes them, as Keys; ConfigError naming the bad part."""
    given: dict[str, object] = {}
    names = [f.name for f in fields(Keys)]
    for part in text.split(","):
        name, sep, value = (p.strip() for p in part.partition("="))
        if name not in names or not sep or not value:
            raise ConfigError(
                f"{text!r}: give key=value parts, of {', '.join(names)} "
                "(e.g. count=1000,popularity=zipf,s=0.8)"
            )
        if name in given:
            raise ConfigError(f"{text!r}: {name} is given twice")
        given[name] = value if name == "popularity" else _number(value, name)
    made = {n: field_value(Keys, n, v, n) for n, v in given.items()}
    keys = Keys(**made)
    if not fits(keys):
        raise ConfigError(f"{text!r}: {UNFIT}")
    return keys


def _number(text: str, name: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}: must be a number (got {text!r})") from None
