"""Each deployed part runs with only its own extras installed (``pyproject.toml``).

The node image installs ``netsched[node]``, the extender image ``netsched[extender]``
(``deploy/Dockerfile``). These tests run the parts' real commands with the other extras'
distributions made unimportable (``tests/packaging/absent.py``), so an import that would
drag numpy, networkx, FastAPI or matplotlib onto every node fails here first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
EXTENDER_ONLY = "fastapi,starlette,uvicorn,uvloop,httptools,zttp,numpy,networkx,orjson,httpx,cryptography"
PLOT_ONLY = "matplotlib"
NODE_DISTRIBUTIONS = {"pyroute2": "pyroute2", "grpcio": "grpc", "protobuf": "google"}
"""The node extra's distributions and the top-level module each installs."""
NODE_ONLY = ",".join(NODE_DISTRIBUTIONS.values())
ASYNCIO_CLIENT = "kubernetes.aio,aiohttp,aiohttp_retry"
"""What deploy/environment.py prunes from both images: the kubernetes client's asyncio
half and the distributions only it needs."""
NOT_IN_NODE_IMAGE = f"{EXTENDER_ONLY},{PLOT_ONLY},{ASYNCIO_CLIENT}"
NOT_IN_EXTENDER_IMAGE = f"{NODE_ONLY},{PLOT_ONLY},{ASYNCIO_CLIENT}"


def run_without(absent: str, module: str, *arguments: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.packaging.absent", absent, module, *arguments],
        cwd=REPOSITORY, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


@pytest.mark.kernel
def test_reporter_once_runs_on_the_node_extras(tmp_path: Path) -> None:
    """netlink discovery, the report and its JSON: pydantic, pyroute2, pyyaml only."""
    process = run_without(
        NOT_IN_NODE_IMAGE, "netsched.cli", "reporter", "--once",
        "--node-name", "node-a", "--sample-seconds", "0.1",
        env={"PATH": os.environ["PATH"]},
    )
    code, out, err = finish(process)
    assert code == 0, err
    report = json.loads(out)
    assert report["metadata"]["name"] == "node-a"
    assert report["kind"] == "NodeNetwork"


def test_cni_install_and_daemon_run_on_the_node_extras(tmp_path: Path) -> None:
    """The CNI DaemonSet's two containers: the installer, then the daemon with the plugin's
    modules and the kubernetes client imported at start, answering over its socket, and
    the DRA kubelet plugin (grpcio, protobuf) answering the kubelet's GetInfo over its own."""
    bin_dir, conf_dir = tmp_path / "bin", tmp_path / "net.d"
    bin_dir.mkdir()
    conf_dir.mkdir()
    (conf_dir / "10-bridge.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "bridge", "bridge": "cni0"}],
    }))
    code, _, err = finish(run_without(
        NOT_IN_NODE_IMAGE, "cni.main", "install",
        "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir), "--timeout", "5",
        env={**os.environ, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    ))
    assert code == 0, err
    chained = json.loads((conf_dir / "10-bridge.conflist").read_text())
    assert [p["type"] for p in chained["plugins"]] == ["bridge", "netsched-cni"]

    socket_path = tmp_path / "run" / "cni.sock"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.96.0.1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    daemon = run_without(
        NOT_IN_NODE_IMAGE, "cni.main", "daemon", "--socket", str(socket_path),
        "--kubelet-registry", str(tmp_path / "registry"), "--kubelet-plugin-dir",
        str(tmp_path / "plugin"), "--state-dir", str(tmp_path / "state"), "--kubeconfig",
        str(kubeconfig), "--node-name", "node-a",
    )
    try:
        assert daemon.stdout.readline() == f"ready {socket_path}\n"
        from cni.client import forward

        code, output = forward(str(socket_path), {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
        assert code == 0 and "1.0.0" in json.loads(output)["supportedVersions"]
        from tests.cni.dra_objects import Kubelet

        assert Kubelet(tmp_path / "registry").register().name == "netsched.io"
        daemon.send_signal(signal.SIGTERM)
    finally:
        code, _, err = finish(daemon)
    assert code == 0, err
    assert "Traceback" not in err


def test_simulate_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    code, _, err = finish(run_without(
        PLOT_ONLY, "netsched.cli", "simulate", "--nodes", "50", "--pods", "20",
        "--plot", str(plot),
    ))
    assert code == 2
    assert "pip install 'netsched[plot]'" in err and "Traceback" not in err, err
    assert not plot.exists()


def test_extender_commands_on_the_node_extras_name_the_extender_extra(tmp_path: Path) -> None:
    code, _, err = finish(run_without(
        EXTENDER_ONLY, "netsched.cli", "serve", "--cluster", str(tmp_path / "none.yaml"),
    ))
    assert code == 2
    assert "pip install 'netsched[extender]'" in err and "Traceback" not in err, err


def test_the_node_extras_are_disjoint_from_the_extenders() -> None:
    """The modules made absent above are exactly what ``pyproject.toml`` puts in other extras."""
    import tomllib

    extras = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def names(extra: str) -> set[str]:
        return {r.split("[")[0].split(">")[0].split("=")[0].strip() for r in extras[extra]}

    assert names("plot") == set(PLOT_ONLY.split(","))
    assert names("node") == set(NODE_DISTRIBUTIONS)
    assert names("extender") <= set(EXTENDER_ONLY.split(","))


def test_the_demo_runs_on_the_extender_extras() -> None:
    """The extender image has no pyroute2 and no matplotlib: the whole extender stack
    (webhook, scheduler, dashboard) serves the demo without them."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = run_without(NOT_IN_EXTENDER_IMAGE, "netsched.cli", "demo", "--port", str(port))
    try:
        while "webhook" not in (line := demo.stdout.readline()):
            assert line, demo.stderr.read()
        # bound to loopback by default: it says how to reach it from outside a container
        assert demo.stdout.readline() == (
            "Listening on 127.0.0.1 only: in a container, add --host 0.0.0.0 to reach it "
            "from outside.\n"
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/topology", timeout=10) as answer:
            assert len(json.load(answer)["nodes"]) == 12
        demo.send_signal(signal.SIGTERM)
    finally:
        code, _, err = finish(demo)
    assert code == 0 and "Traceback" not in err, err


def test_every_module_imports_without_the_asyncio_client() -> None:
    """Both images lose the kubernetes client's asyncio half and aiohttp (deploy/
    environment.py): no module of netsched, nor any of the synchronous client it loads,
    may import them."""
    code, out, err = finish(run_without(ASYNCIO_CLIENT, "tests.packaging.import_every_module"))
    assert code == 0, err
    imported = set(out.split())
    assert {"kubernetes_access", "scheduler_extender.kubernetes_source", "scheduler_extender.leader",
            "node_reporter.main", "cni.daemon"} <= imported


def deploy_environment():
    """deploy/environment.py, the image build's pruning step, as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("environment", REPOSITORY / "deploy/environment.py")
    environment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(environment)
    return environment


def test_the_asyncio_client_is_what_prune_removes() -> None:
    """The names made absent above are the ones deploy/environment.py sets aside."""
    environment = deploy_environment()
    assert environment.ASYNCIO_HALF == "kubernetes/aio/"
    assert {n.replace("_", "-") for n in ASYNCIO_CLIENT.split(",")} == {
        "kubernetes.aio", *environment.ASYNCIO_REQUIREMENTS
    }


def test_prune_drops_aiohttp_and_keeps_what_the_node_image_runs() -> None:
    """On this environment's installed metadata, with the node image's requirements as
    roots (deploy/requirements.py): aiohttp and what only it needs go; the synchronous
    client's own requirements stay, and an extra nobody asked for (prometheus-client's
    ``aiohttp``) keeps nothing."""
    import tomllib

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    roots = [*project["dependencies"], *project["optional-dependencies"]["node"]]
    unneeded = set(deploy_environment().unneeded(roots))
    assert {"aiohttp", "aiohttp-retry", "multidict", "yarl", "frozenlist"} <= unneeded
    assert unneeded.isdisjoint({
        "kubernetes", "urllib3", "requests", "requests-oauthlib", "websocket-client",
        "python-dateutil", "certifi", "pyyaml", "pydantic", "pydantic-core", "pyroute2",
        "prometheus-client",
    })
