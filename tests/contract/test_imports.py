"""What the contract and its node-side users load: pydantic, and nothing of the extender's.

``contract`` promises pydantic as its only third-party dependency, so that every node's
CNI daemon and reporter read the API objects and the reservation without the extender's
graph (networkx, numpy), its web framework (FastAPI) or, for the contract itself, the
kubernetes client. Each statement runs in a fresh interpreter, as the part's process
starts, and the test reads that interpreter's ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

CONTRACT = (
    "import contract, contract.annotations, contract.group, contract.objects, "
    "contract.quantity, contract.rates, contract.reservation, contract.wire"
)
CNI_DAEMON = (  # what `netsched-cni daemon` imports before it serves (cni.main.warm_up)
    "import cni.main, cni.daemon, cni.commands, cni.config, cni.kube, cni.netns, "
    "cni.shaping, cni.state, cni.validate"
)
REPORTER = "import node_reporter.main, node_reporter.publish"

EXTENDER_ONLY = {"networkx", "numpy", "fastapi"}
PYDANTIC = {"pydantic", "pydantic_core", "annotated_types", "typing_extensions",
            "typing_inspection"}
"""pydantic and the distributions it imports itself."""


def top_level_modules(statement: str) -> set[str]:
    """Top-level names in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    probe = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], cwd=REPOSITORY, check=True,
                            capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in json.loads(output)}


def test_the_contract_needs_only_pydantic() -> None:
    started = top_level_modules("pass")  # the interpreter's own start (site, .pth hooks)
    loaded = {
        name for name in top_level_modules(CONTRACT) - started - set(sys.stdlib_module_names)
        if not name.startswith("_sysconfigdata")  # the standard library's, named per platform
    }
    assert loaded == PYDANTIC | {"contract"}


@pytest.mark.parametrize("statement", [CNI_DAEMON, REPORTER], ids=["cni-daemon", "reporter"])
def test_the_node_parts_load_nothing_of_the_extender(statement: str) -> None:
    loaded = top_level_modules(statement)
    assert "contract" in loaded
    assert not loaded & EXTENDER_ONLY, sorted(loaded & EXTENDER_ONLY)
    assert not loaded & {"topology", "bandwidth_accounting", "scheduler_extender"}


def test_a_daemon_without_dra_does_not_load_grpc() -> None:
    """grpc and protobuf cost the daemon about 18 MiB of memory on every node; they load
    only when ``--kubelet-registry`` turns the DRA kubelet plugin on."""
    probe = (f"{CNI_DAEMON}; cni.main.daemon_parser().parse_args([]); cni.main.warm_up(); "
             "import json, sys; print(json.dumps(sorted(sys.modules)))")
    output = subprocess.run([sys.executable, "-c", probe], cwd=REPOSITORY, check=True,
                            capture_output=True, text=True).stdout
    loaded = [name for name in json.loads(output)
              if name.split(".")[0] == "grpc" or name.startswith("google.protobuf")]
    assert not loaded, loaded
