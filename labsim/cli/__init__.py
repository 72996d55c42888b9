"""The command line: `python -m labsim up | bench | run | sweep | ...`.

User mistakes (a bad option value, a broken scenario, a port already taken) end as one
line on stderr naming the bad value, with exit code 2, never a traceback. Each
sub-command lives in its own module, imported only when it runs, so that a mistyped
option is answered before aiohttp loads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from ..clock import StalledError
from ..config import ConfigError
from .common import UsageError
from .parser import EXIT_USAGE, build_parser

EXIT_INTERRUPTED = 130  # as a shell reports a program stopped by Ctrl-C (128 + SIGINT)

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
