"""Which optional extra of netsched brings a missing module, read from the installed metadata.

Each deployed part installs only its own dependencies (``pyproject.toml``: ``node``,
``extender``, ``plot``), so a command of another part may find a module missing. The
user is then told which extra to install instead of shown a traceback; the answer comes
from the package's own requirement list, so it cannot drift from ``pyproject.toml``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re

DISTRIBUTION = "netsched"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def extra_providing(module: str | None) -> str | None:
    """The extra whose requirements include the distribution named like ``module``'s
    top-level package (true of every optional dependency netsched has), else None."""
    if not module:
        return None
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = _normalized(module.partition(".")[0])
    for requirement in requirements:
        name, extra = _NAME.match(requirement), _EXTRA_MARKER.search(requirement)
        if name and extra and extra.group(1) != "test" and _normalized(name.group()) == wanted:
            return extra.group(1)
    return None


def require_module(module: str) -> None:
    """Raise ``ModuleNotFoundError`` now when ``module`` is not installed, so a command
    fails before its work rather than after it (``simulate --plot``)."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def missing_extra_message(command: str, error: ModuleNotFoundError) -> str | None:
    """What to tell the user for ``error``; None when no extra of netsched provides it."""
    extra = extra_providing(error.name)
    if extra is None:
        return None
    return (
        f"netsched {command}: needs {error.name!r}, which this installation lacks; "
        f"install netsched's {extra!r} extra: pip install 'netsched[{extra}]'"
    )
