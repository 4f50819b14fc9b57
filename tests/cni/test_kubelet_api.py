"""The committed gRPC code of ``cni/kubelet_api`` is what its protos generate, and the
node extra's pins admit it.

The node image imports the generated modules without grpcio-tools; they check at import
that protobuf is of their major version and not older than the protoc that wrote them,
and that grpcio is not older than the grpcio-tools that wrote them. So a stale copy, or
a pin that lets pip install a runtime the code refuses, fails here instead of on a node.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cni import kubelet_api

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = Path(kubelet_api.__file__).parent
GENERATED = ["dra_pb2.py", "dra_pb2_grpc.py", "pluginregistration_pb2.py",
             "pluginregistration_pb2_grpc.py"]


def test_the_committed_code_is_what_make_kubelet_api_generates(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-s", "-C", str(REPOSITORY), "-o", "venv", "kubelet-api",
         f"VENV={Path(sys.executable).parent.parent}", f"KUBELET_API_OUT={tmp_path}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    fresh = tmp_path / "cni" / "kubelet_api"
    assert sorted(p.name for p in fresh.iterdir()) == GENERATED
    for name in GENERATED:
        assert (fresh / name).read_text() == (PACKAGE / name).read_text(), (
            f"cni/kubelet_api/{name} is stale: run `make kubelet-api`")


def test_the_node_extra_pins_the_runtimes_the_generated_code_accepts() -> None:
    node = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["node"]
    protoc = re.search(r"Protobuf Python Version: (\d+)\.(\d+)\.(\d+)",
                       (PACKAGE / "dra_pb2.py").read_text())
    grpc_tools = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'",
                           (PACKAGE / "dra_pb2_grpc.py").read_text())
    assert protoc and grpc_tools
    major = int(protoc[1])
    assert f"protobuf>={'.'.join(protoc.groups())},<{major + 1}" in node
    assert f"grpcio>={grpc_tools[1]}" in node
