"""Import pyroute2's IPRoute without the package's ``__init__``.

``import pyroute2`` loads every pyroute2 subsystem (NDB, IPDB, conntrack, nftables,
…): about 50 ms that a CNI plugin pays on every ADD and DEL for nothing. Registering
the bare package first lets Python import only the modules IPRoute needs. If pyroute2
was already imported normally (tests, a long-lived process), that module is reused.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _bare_package(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not installed")
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules[name] = package


_bare_package("pyroute2")

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
