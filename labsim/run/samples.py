"""`bench --samples`: one CSV line per request, written as it is answered, so memory stays
flat however many requests a run sends. Times are seconds from the start of the load on
the run's clock; `scheduled_s` is when an open load meant to send the request (for a
closed load, when it was sent), and `latency_ms` counts from when it was sent."""

from __future__ import annotations

import csv
from typing import Any, TextIO

SAMPLES = ("endpoint", "scheduled_s", "sent_s", "latency_ms", "status", "gateway", "hit")


class SampleLog:
    def __init__(self, file: TextIO) -> None:
        self._writer = csv.writer(file, lineterminator="\n")
        self.start = 0.0  # the clock's time when the load started
        # A write that failed (a full disk): the run goes on, the CLI says so after it.
        self.error: OSError | None = None
        self._write(SAMPLES)

    def add(
        self,
        endpoint: str,
        scheduled: float,
        sent: float,
        latency: float,
        status: int | None,
        gateway: str | None,
        answer: Any,
    ) -> None:
        hit = answer.get("cached") if endpoint == "data" and isinstance(answer, dict) else None
        self._write(
            (
                endpoint,
                f"{scheduled - self.start:.6f}",
                f"{sent - self.start:.6f}",
                f"{latency * 1000:.3f}",
                "" if status is None else status,
                gateway or "",
                "" if hit is None else str(bool(hit)).lower(),
            )
        )

    def _write(self, row: tuple[Any, ...]) -> None:
        if self.error is not None:
            return
        try:
            self._writer.writerow(row)
        except OSError as e:
            self.error = e
