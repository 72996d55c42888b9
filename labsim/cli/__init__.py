"""The command line: `python -m labsim up | bench | run | sweep | ...`.

User mistakes (a bad option value, a broken scenario, a port already taken) end as one
line on stderr naming the bad value, with exit code 2, never a traceback. Each
sub-command lives in its own module, imported only when it runs, so that a mistyped
option is answered before aiohttp loads.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import import_module

from ..core.clock import StalledError
from ..model.config import ConfigError
from .common import UsageError
from .parser import EXIT_USAGE, build_parser

# As a shell reports a program stopped by Ctrl-C (128 + SIGINT); SIGTERM is taken as
# Ctrl-C (one meaning: stopped, with what finished reported), so it ends with 130 too.
EXIT_INTERRUPTED = 130

# sub-command -> (module, function)
_COMMANDS = {
    "up": ("up", "run_up"),
    "bench": ("bench", "run_bench_command"),
    "run": ("run", "run_scenarios_command"),
    "sweep": ("sweep", "run_sweep_command"),
    "compare": ("compare", "run_compare_command"),
    "export": ("export", "run_export_command"),
    "scenarios": ("scenarios", "run_scenarios_list"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()  # signals reach it only
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c) if main_thread else None
    try:
        return _run(args)
    finally:
        if main_thread:  # as it was: `main` is called by tests in their own process too
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _run(args: argparse.Namespace) -> int:
    module, function = _COMMANDS[args.command]
    try:
        command: Callable[..., int] = getattr(import_module(f".{module}", __name__), function)
        return command(args)
    except (UsageError, ConfigError) as e:
        print(f"labsim: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StalledError as e:
        print(f"labsim: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): not an error to report. Python's own advice:
        # point stdout at devnull so that flushing it at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # Ctrl-C where no partial report can be made
        print("\nlabsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _as_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (`kill`, a service manager, a CI runner's timeout) does what Ctrl-C does
    wherever the command is: the SIGINT handler of the moment gets it (a run's own, which
    stops sending and reports what finished; asyncio's; Python's KeyboardInterrupt)."""
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        raise KeyboardInterrupt  # Ctrl-C ignored here (a background job): stop all the same
    signal.raise_signal(signal.SIGINT)
