"""What the official client costs per API request, with the proxy looked up once or per request.

The client's loaders re-apply their settings before every request (its
``refresh_api_key_hook``), and setting ``host`` made the client search the whole
environment for a proxy each time. ``kubernetes_access.load_configuration`` fixes the
proxy once at load. Side by side in one run, for an environment as this process has it
and with the variables kubelet adds for 50 Services in a pod's namespace (7 each):

- *hook*: the per-request refresh alone (``Configuration.auth_settings``);
- *read*: a whole ``read_node`` against the in-test API server, CPU of the calling thread
  (the server runs in threads of its own).

The baseline is the same configuration with the client's own per-request lookup put back.

    .venv/bin/python benchmarks/client_requests.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from extender_inprocess import machine  # noqa: E402

from kubernetes_access import Places, load_configuration  # noqa: E402
from tests.kube_api import FakeKubeAPI  # noqa: E402

SERVICES = 50
"""Services in the pod's namespace: kubelet sets 7 variables for each in every container."""


def service_variables(count: int) -> dict[str, str]:
    """What kubelet adds to a container's environment for ``count`` Services."""
    variables = {}
    for index in range(count):
        name, address = f"SERVICE_{index}", f"10.96.{index // 250}.{index % 250}"
        variables |= {
            f"{name}_SERVICE_HOST": address, f"{name}_SERVICE_PORT": "8080",
            f"{name}_PORT": f"tcp://{address}:8080", f"{name}_PORT_8080_TCP": f"tcp://{address}:8080",
            f"{name}_PORT_8080_TCP_PROTO": "tcp", f"{name}_PORT_8080_TCP_PORT": "8080",
            f"{name}_PORT_8080_TCP_ADDR": address,
        }
    return variables


def cpu_microseconds(call: Callable[[], object], repeat: int) -> float:
    """Median CPU microseconds of the calling thread over 5 batches of ``repeat`` calls."""
    call()
    batches = []
    for _ in range(5):
        started = time.thread_time()
        for _ in range(repeat):
            call()
        batches.append((time.thread_time() - started) / repeat * 1e6)
    return statistics.median(batches)


def configurations(kubeconfig: Path) -> dict[str, client.Configuration]:
    fixed = load_configuration(kubeconfig, Places(environ={}))
    per_request = load_configuration(kubeconfig, Places(environ={}))
    per_request._proxy_from_env = True  # the client's own behaviour: look the proxy up on every ``host =``
    return {"once (netsched)": fixed, "per request (client default)": per_request}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print("environment          proxy looked up                 hook µs   read µs (CPU)")
    with FakeKubeAPI() as api, tempfile.TemporaryDirectory() as folder:
        api.seed("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
        kubeconfig = api.write_kubeconfig(Path(folder) / "kubeconfig")
        for label, extra in (("this process", {}), (f"+{SERVICES} Services", service_variables(SERVICES))):
            os.environ.update(extra)
            try:
                for how, configuration in configurations(kubeconfig).items():
                    with client.ApiClient(configuration) as api_client:
                        nodes = client.CoreV1Api(api_client)
                        hook = cpu_microseconds(configuration.auth_settings, args.repeat)
                        read = cpu_microseconds(lambda: nodes.read_node("node-a"), args.repeat // 10)
                    print(f"{label:20} {how:30} {hook:9.1f} {read:9.0f}   ({len(os.environ)} variables)")
            finally:
                for name in extra:
                    del os.environ[name]
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
