"""Everything about "a run": its session, its load, its faults, its samples, its result.

`execute` (or `run_bench` inside an event loop) runs one bench and returns a typed
`BenchResult`; `run_scenario` runs a scenario file's variants and checks their
expectations. The CLI, the dashboard and the tests all go through here.
"""

from importlib import import_module
from typing import Any

# Imported on first use: `scenario.py` reads `result.py` to check expectations, and
# must not pull in the whole run layer (and aiohttp) to do so.
_EXPORTS = {
    "BenchError": "session",
    "BenchOptions": "session",
    "BenchResult": "result",
    "ScenarioRun": "scenarios",
    "execute": "bench",
    "run_bench": "bench",
    "run_scenario": "scenarios",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'labsim.run' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
