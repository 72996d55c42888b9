"""The command line's value types: each checks one option's value for argparse and says,
in one line, what is wrong with it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from urllib.parse import urlsplit

from ..core.numbers import within
from ..model.config import LIMIT
from ..model.keys import Keys, parse_keys
from ..model.load import parse_mix


def number(kind: type, minimum: float, what: str, maximum: float = LIMIT) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if not within(value, minimum, maximum):
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return value

    parse.__name__ = what
    return parse


# The load's options are only read here: their bounds are the scenario's own [load] checks
# (`load_changes.py`), so that the command line and `labsim.bench()` say the same.
whole = number(int, -math.inf, "a whole number", maximum=math.inf)
decimal = number(float, -math.inf, "a number", maximum=math.inf)
positive_int = number(int, 1, f"a whole number from 1 to {LIMIT:,}")
non_negative_int = number(int, 0, f"a whole number from 0 to {LIMIT:,}")
seconds = number(float, 0, f"a number of seconds from 0 to {LIMIT:,}")
timeout_seconds = number(float, 0.001, f"a number of seconds from 0.001 to {LIMIT:,}")
port_number = number(int, 1, "a port number from 1 to 65535", maximum=65535)


def mix(text: str) -> dict[str, int]:
    try:
        return parse_mix(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def keys(text: str) -> Keys:
    try:
        return parse_keys(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_url(text: str) -> str:
    url = urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(f"must be an http:// URL (got {text!r})")
    return text


def duration(text: str) -> float:
    """Seconds, as `30`, `30s`, `2m` or `1h`, for argparse (its bounds: the load's)."""
    number, scale = text, 1.0
    for unit, seconds in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit):
            number, scale = text[: -len(unit)], seconds
            break
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"must be a duration such as 30, 30s, 2m or 1h (got {text!r})"
        )
    return value


def scheduler_address(text: str) -> str:
    """A Dask scheduler's address, `tcp://host:port` (or tls://), for `sweep --cluster`."""
    problem = f"must be a scheduler's address such as tcp://10.0.0.5:8786 (got {text!r})"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path:
        raise argparse.ArgumentTypeError(problem)
    return text
