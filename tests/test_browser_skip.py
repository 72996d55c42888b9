"""Without a browser, the dashboard's browser tests skip with the reason, unless CI
requires them (LABSIM_REQUIRE_BROWSER), where a missing browser fails."""

from __future__ import annotations

import os
import subprocess
import sys

BROWSER_TESTS = ("tests/test_dashboard_browser.py", "tests/test_capacity_dashboard.py")


def _browser_tests(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "LABSIM_REQUIRE_BROWSER"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *BROWSER_TESTS],
        env=clean | {"LABSIM_CHROMIUM": "/no/such/chromium"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_machine_without_a_browser_skips_with_the_reason():
    run = _browser_tests()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SKIPPED" in run.stdout and "FAILED" not in run.stdout and "ERROR" not in run.stdout
    assert "no chromium at /no/such/chromium: apt-get install chromium" in run.stdout


def test_ci_requires_the_browser():
    run = _browser_tests(LABSIM_REQUIRE_BROWSER="1")
    assert run.returncode == 1
    assert "no chromium at /no/such/chromium" in run.stdout and "SKIPPED" not in run.stdout
