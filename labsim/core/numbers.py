"""The one check of a number from outside (a file, a body, the command line)."""

from __future__ import annotations

import math
from typing import Any


def within(value: Any, low: float, high: float) -> bool:
    """Whether `value` is a real number (not a bool, not NaN or infinite) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):  # exact: an int past a float's range cannot be one (10**400)
        return low <= value <= high
    return math.isfinite(value) and low <= value <= high
