"""Fault injection, Toxiproxy-style: the faults one component has now.

A component can be made slower (latency ± jitter), flaky (a share of requests answered
500), down (connections closed without an answer) or hung (no answer until the fault is
cleared). The middleware applies them; `components/admin.py` changes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..core.numbers import within
from .config import LIMIT

FIELDS = {"latency": float, "jitter": float, "error_rate": float, "down": bool, "hang": bool}


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every request
    jitter: float = 0.0  # ± seconds, uniform
    error_rate: float = 0.0  # share of requests answered 500
    down: bool = False
    hang: bool = False

    def __post_init__(self) -> None:
        import asyncio  # here, so that checking a scenario file does not load asyncio

        self._cleared = asyncio.Event()
        self._cleared.set()

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        if self.hang:
            self._cleared.clear()
        else:
            self._cleared.set()

    def reset(self) -> None:
        self.update({f.name: f.default for f in dataclasses.fields(self)})

    def active(self) -> bool:
        return bool(self.latency or self.jitter or self.error_rate or self.down or self.hang)

    async def wait_until_unhung(self) -> None:
        await self._cleared.wait()

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies: it was half of a dashboard snapshot.
        return {name: getattr(self, name) for name in FIELDS}


def check_changes(body: Any) -> dict[str, Any]:
    """The fault changes in `body`, or ValueError naming the bad key."""
    if not isinstance(body, dict) or not body:
        raise ValueError(f"body must be a JSON object with some of: {', '.join(FIELDS)}")
    changes = {}
    for key, value in body.items():
        kind = FIELDS.get(key)
        if kind is None:
            raise ValueError(f"unknown fault {key!r} (known: {', '.join(FIELDS)})")
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false (got {value!r})")
        else:
            if not within(value, 0, LIMIT):
                raise ValueError(f"{key} must be a number from 0 to {LIMIT:,} (got {value!r})")
            if key == "error_rate" and value > 1:
                raise ValueError(f"error_rate must be from 0 to 1 (got {value!r})")
            value = float(value)
        changes[key] = value
    return changes
