"""A station's figures read at one moment: plain data, shared by the HTTP engine's
stations (`components/capacity.py`) and the model engine's (`run/model_engine.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.metrics import Histogram


@dataclass(frozen=True)
class CapacityFigures:
    """One component's station, read at one moment (`at_s`, on the clock).

    Time-weighted figures cover `span_s` seconds, from when the component started. For
    another window, read twice and subtract: utilization over it is the change in
    `busy_slot_seconds` / (`slots` * the window's length).
    """

    slots: int  # concurrency: requests served at once
    queue_size: int  # requests that may wait beyond those
    busy_now: int  # slots busy at `at_s`
    utilization: float  # busy slot-seconds / (slots * span_s), 0 to 1 (0 when span_s is 0)
    busy_slot_seconds: float  # the integral of busy slots over clock time
    queue_length_now: int  # requests waiting at `at_s`
    queue_length_mean: float  # time-weighted mean of the queue's length over span_s
    queue_wait: Histogram  # a copy: seconds each admitted request waited (0 included)
    rejected: int  # requests refused with 503: every slot busy, the queue full
    at_s: float  # the clock's time of this reading
    span_s: float  # seconds on the clock since the component started

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the same fields, `queue_wait` as its summary in milliseconds."""
        return {
            "slots": self.slots,
            "queue_size": self.queue_size,
            "busy_now": self.busy_now,
            "utilization": round(self.utilization, 6),
            "busy_slot_seconds": round(self.busy_slot_seconds, 6),
            "queue_length_now": self.queue_length_now,
            "queue_length_mean": round(self.queue_length_mean, 6),
            "queue_wait": self.queue_wait.summary(),
            "rejected": self.rejected,
            "at_s": round(self.at_s, 6),
            "span_s": round(self.span_s, 6),
        }
