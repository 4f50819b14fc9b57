"""Start-up trimming for the ``netsched-cni`` executable (and nothing else).

Two package ``__init__`` modules cost more than a whole ADD: ``pyroute2``'s loads every
subsystem (NDB, IPDB, conntrack, nftables, …) and ``topology``'s loads networkx and
numpy for the graph, while the plugin needs only ``pyroute2.iproute`` and
``topology.models``. Registering the bare packages first lets Python import just the
submodules. Only the executable's ``main`` calls this, before any other import: in a
long-lived process (tests, the extender) the full packages must stay importable.
"""

from __future__ import annotations

import importlib.util
import sys
import types

SKIPPED_INITS = ("pyroute2", "topology")


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
