"""The course's Lab 5 status log, as its own files show it: `status_log.json` and the text
summary its `report_generator.py` writes under its two charts.

The log is a result's `status` section: service -> status code (a string) -> answers.
Touches nothing but the text it returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

StatusLog = Mapping[str, Mapping[str, int]]


def log_file(status: StatusLog) -> str:
    """The text of `status_log.json`, as the guide's `status_tracker.save_log` writes it
    (`json.dump(log, f, indent=4)`), with a final line break."""
    return json.dumps(status, indent=4) + "\n"


def totals(status: StatusLog) -> dict[str, int]:
    """Requests answered per service, all status codes together."""
    return {service: sum(codes.values()) for service, codes in status.items()}


def ok(code: str) -> bool:
    """Whether the guide draws a code's bar green: 200 to 299; any other, red."""
    return code.isdigit() and 200 <= int(code) < 300


def summary(status: StatusLog) -> list[str]:
    """The text summary, as `report_generator.py` makes it: its list of entries (each one
    of its `report_text.append` calls; a title, then per service its name after a blank
    line, its total and a line per code)."""
    entries = ["Status Report Summary:\n"]
    for service, codes in status.items():
        entries += [f"\nService: {service}", f"Total Requests: {sum(codes.values())}"]
        entries += [f"  Code {code}: {count} requests" for code, count in codes.items()]
    return entries


def summary_columns(status: StatusLog) -> tuple[str, str]:
    """The summary in the guide's two columns: its entries cut in the middle."""
    entries = summary(status)
    middle = len(entries) // 2
    return "\n".join(entries[:middle]), "\n".join(entries[middle:])
