"""``netsched`` hands ``reporter`` its arguments untouched and refuses strays elsewhere."""

import subprocess
import sys


def netsched(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsched.cli", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_reporter_owns_its_flags():
    result = netsched("reporter", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: netsched reporter")
    assert "--once" in result.stdout


def test_unknown_flags_of_other_commands_are_errors():
    result = netsched("demo", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_help_lists_every_command():
    result = netsched("--help")
    for command in ("demo", "serve", "reporter", "topology", "explain", "reservations"):
        assert command in result.stdout
