"""Start-up trimming for the ``netsched-cni`` executable (and nothing else).

``pyroute2``'s package ``__init__`` costs more than a whole ADD: it loads every
subsystem (NDB, IPDB, conntrack, nftables, …), while the plugin needs only
``pyroute2.iproute``. Registering the bare package first lets Python import just the
submodules. (netsched's own packages need no such help: their ``__init__`` modules
import nothing.) Only the executable's ``main`` calls this, before any other import: in a
long-lived process (tests, the extender) the full packages must stay importable.
"""

from __future__ import annotations

import importlib.util
import sys
import types

SKIPPED_INITS = ("pyroute2",)


def skip_package_inits(names: tuple[str, ...] = SKIPPED_INITS) -> None:
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            continue
        package = types.ModuleType(name)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        sys.modules[name] = package
