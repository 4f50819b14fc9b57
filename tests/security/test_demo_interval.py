"""``netsched demo --interval`` of zero or less spun a core at 100 %: it is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "inf", "soon"])
def test_an_interval_that_is_not_a_positive_number_is_refused(interval):
    result = subprocess.run(
        [sys.executable, "-m", "netsched.cli", "demo", "--port", "0", f"--interval={interval}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "argument --interval:" in result.stderr and repr(interval) in result.stderr
    assert "netsched demo:" not in result.stdout, "the demo must not have started"
