"""``netsched-cni install`` on plain directories: what it leaves in a node's CNI dirs.

No kernel and no root needed: the conf dir and bin dir are temporary directories with
real files, the installed native client is executed with an empty environment (no
interpreter to lean on), and the kubeconfig is loaded by the official kubernetes client.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cni import install
from cni.versions import version_report

FLANNEL = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "disableCheck": True,
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
BRIDGE_CONF = {
    "cniVersion": "1.0.0",
    "name": "mynet",
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": True,
    "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"},
}
ENTRY = {
    "type": "netsched-cni",
    "capabilities": {"bandwidth": True},
    "kubeconfig": "/etc/cni/net.d/netsched-cni.kubeconfig",
    "stateDir": "/var/lib/cni/netsched",
    "maxQueueMs": 25,
    "socket": "/run/netsched/cni.sock",
}


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_client: Path) -> Node:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return Node(tmp_path)


class Node:
    """A node's CNI bin and conf dirs, and the installer run against them."""

    def __init__(self, root: Path) -> None:
        self.bin_dir = root / "opt-cni-bin"
        self.conf_dir = root / "etc-cni-net.d"
        self.bin_dir.mkdir()
        self.conf_dir.mkdir()

    def write(self, name: str, document: Any, mode: int = 0o644) -> Path:
        path = self.conf_dir / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        path.chmod(mode)
        return path

    def run(self, *flags: str) -> int:
        return install.main(["--bin-dir", str(self.bin_dir), "--conf-dir", str(self.conf_dir),
                             *flags])

    def read(self, name: str) -> Any:
        return json.loads((self.conf_dir / name).read_text())

    def files(self) -> dict[str, bytes]:
        """Every file of both dirs with its bytes (temporary files would show up here)."""
        return {
            f"{d.name}/{p.name}": p.read_bytes()
            for d in (self.bin_dir, self.conf_dir) for p in sorted(d.iterdir()) if not p.is_dir()
        }

    @property
    def client(self) -> Path:
        return self.bin_dir / "netsched-cni"

    @property
    def kubeconfig(self) -> Path:
        return self.conf_dir / "netsched-cni.kubeconfig"


# -- chaining --------------------------------------------------------------------------


def test_chains_last_into_a_flannel_conflist_and_keeps_every_other_field(node: Node, capsys):
    node.write("10-flannel.conflist", FLANNEL, mode=0o600)
    assert node.run() == 0
    chained = node.read("10-flannel.conflist")
    assert chained == {**FLANNEL, "plugins": [*FLANNEL["plugins"], ENTRY]}
    assert list(chained) == list(FLANNEL)  # key order too
    assert stat.S_IMODE((node.conf_dir / "10-flannel.conflist").stat().st_mode) == 0o600
    assert set(node.files()) == {
        "opt-cni-bin/netsched-cni",
        "etc-cni-net.d/10-flannel.conflist",
        "etc-cni-net.d/netsched-cni.kubeconfig",
    }
    assert "chained netsched-cni into" in capsys.readouterr().err


def test_the_written_entry_is_a_netconf_the_plugin_accepts():
    from cni.config import DEFAULT_MAX_QUEUE_MS, DEFAULT_STATE_DIR, parse_netconf

    assert (install.DEFAULT_STATE_DIR, install.DEFAULT_MAX_QUEUE_MS) == (
        DEFAULT_STATE_DIR, DEFAULT_MAX_QUEUE_MS
    )
    conf = parse_netconf(json.dumps(
        {"cniVersion": "1.0.0", "name": "cbr0", **install.plugin_entry()}
    ).encode())
    assert conf.socket == install.DEFAULT_SOCKET
    assert conf.kubeconfig == install.DEFAULT_KUBECONFIG_PATH
    assert install.plugin_entry() == ENTRY
    assert install.plugin_entry(max_queue_ms=12.5)["maxQueueMs"] == 12.5


@pytest.mark.parametrize("name", ["10-bridge.conf", "10-bridge.json"])
def test_converts_a_single_plugin_file_to_a_conflist_of_the_same_base_name(node: Node, name):
    node.write(name, BRIDGE_CONF)
    assert node.run() == 0
    assert not (node.conf_dir / name).exists()  # else the runtime would keep using it
    assert node.read("10-bridge.conflist") == {
        "cniVersion": "1.0.0", "name": "mynet", "plugins": [BRIDGE_CONF, ENTRY]
    }
    assert install.primary_conf(node.conf_dir) == node.conf_dir / "10-bridge.conflist"
    assert node.run() == 0
    assert node.read("10-bridge.conflist")["plugins"] == [BRIDGE_CONF, ENTRY]

    assert node.run("--uninstall") == 0
    assert node.read(name) == BRIDGE_CONF
    assert set(node.files()) == {f"etc-cni-net.d/{name}"}


def test_picks_the_lexicographically_first_config_file(node: Node):
    node.write("20-calico.conflist", {**FLANNEL, "name": "k8s-pod-network"})
    first = node.write("10-flannel.conflist", FLANNEL)
    node.write("99-loopback.conf", {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"})
    node.write("05-old.conflist.bak", "not json at all")  # extension .bak: runtimes skip it
    node.write("00-notes.txt", "not json either")
    (node.conf_dir / "01-dir.conflist").mkdir()  # a directory is never a config
    untouched = {k: v for k, v in node.files().items() if "10-flannel" not in k}

    assert install.primary_conf(node.conf_dir) == first
    assert node.run() == 0
    assert node.read("10-flannel.conflist")["plugins"][-1] == ENTRY
    after = node.files()
    assert all(after[k] == v for k, v in untouched.items())


def test_a_second_run_changes_nothing_and_a_changed_flag_replaces_the_entry(node: Node):
    path = node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    before, mtime = node.files(), path.stat().st_mtime_ns
    time.sleep(0.01)
    assert node.run() == 0
    assert node.files() == before and path.stat().st_mtime_ns == mtime  # not even rewritten

    assert node.run("--max-queue-ms", "10", "--socket", "/run/other.sock") == 0
    plugins = node.read("10-flannel.conflist")["plugins"]
    assert [p["type"] for p in plugins] == ["flannel", "portmap", "netsched-cni"]
    assert plugins[-1] == {**ENTRY, "maxQueueMs": 10, "socket": "/run/other.sock"}


def test_an_entry_written_by_hand_elsewhere_in_the_list_moves_to_the_end(node: Node):
    node.write("10-flannel.conflist", {
        **FLANNEL, "plugins": [FLANNEL["plugins"][0], {"type": "netsched-cni"},
                               FLANNEL["plugins"][1]],
    })
    assert node.run() == 0
    assert node.read("10-flannel.conflist")["plugins"] == [*FLANNEL["plugins"], ENTRY]


def test_uninstall_restores_the_original_document_and_is_idempotent(node: Node, capsys):
    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    assert node.run("--uninstall") == 0
    assert node.read("10-flannel.conflist") == FLANNEL
    assert set(node.files()) == {"etc-cni-net.d/10-flannel.conflist"}
    again = node.files()
    assert node.run("--uninstall") == 0
    assert node.files() == again
    assert "error" not in capsys.readouterr().err


def test_uninstall_leaves_a_netsched_cni_executable_it_did_not_write(node: Node):
    node.write("10-flannel.conflist", FLANNEL)
    node.client.write_text("#!/bin/sh\nexec /usr/local/bin/netsched-cni \"$@\"\n")
    assert node.run("--uninstall") == 0
    assert node.client.exists()


# -- bad configs and flags: one line, exit 1, nothing written --------------------------


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("10-broken.conflist", '{"name": "x", "plugins": [', "not JSON"),
        ("10-broken.conflist", "[1, 2]", "not a JSON object"),
        ("10-broken.conflist", {"name": "x", "cniVersion": "1.0.0"}, 'no "plugins" list'),
        ("10-broken.conflist", {"name": "x", "cniVersion": "1.0.0", "plugins": []},
         'no "plugins" list'),
        ("10-broken.conflist",
         {"name": "x", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"mtu": 1}]},
         'plugins[1] has no "type"'),
        ("10-broken.conflist", {"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]},
         'no "name"'),
        ("10-broken.conf", {"name": "x", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]},
         'no "type" (a list of plugins belongs in a .conflist file)'),
        ("10-broken.conf", {"name": "x", "cniVersion": "0.2.0", "type": "bridge"},
         "cniVersion '0.2.0' is not one netsched-cni speaks"),
        ("10-broken.conflist",
         {"name": "x", "cniVersion": "1.0.0", "plugins": [{"type": "netsched-cni"}]},
         "holds no plugin but netsched-cni"),
    ],
)
def test_a_bad_primary_config_is_named_and_nothing_is_written(node: Node, capsys, name,
                                                              content, problem):
    path = node.write(name, content)
    before = node.files()
    assert node.run() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"error: {path}: " in err and problem in err, err
    assert "Traceback" not in err
    assert node.files() == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-queue-ms", "abc"], "argument --max-queue-ms: 'abc' is not a number"),
        (["--max-queue-ms", "0"], "argument --max-queue-ms: '0' must be in (0, 1000]"),
        (["--max-queue-ms", "5000"], "argument --max-queue-ms: '5000' must be in (0, 1000]"),
        (["--socket", "cni.sock"], "argument --socket: 'cni.sock' is not an absolute path"),
        (["--state-dir", "state"], "argument --state-dir: 'state' is not an absolute path"),
        (["--timeout", "-1"], "argument --timeout: '-1' must be 0 or more seconds"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_a_bad_flag_is_one_line_naming_flag_and_value(node: Node, capsys, flags, message):
    node.write("10-flannel.conflist", FLANNEL)
    before = node.files()
    assert node.run(*flags) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"netsched-cni install: error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert node.files() == before


def test_a_missing_bin_dir_or_api_environment_is_named(node: Node, capsys, monkeypatch):
    node.write("10-flannel.conflist", FLANNEL)
    assert install.main(["--bin-dir", str(node.bin_dir / "nope"),
                         "--conf-dir", str(node.conf_dir)]) == 1
    assert f"--bin-dir: '{node.bin_dir / 'nope'}' is not a directory" in capsys.readouterr().err
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert node.run() == 1
    assert "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set" in capsys.readouterr().err
    assert set(node.files()) == {"etc-cni-net.d/10-flannel.conflist"}


# -- waiting for the cluster's network plugin ------------------------------------------


def test_waits_for_a_primary_config_that_appears_later(node: Node, capsys):
    def main_cni_installs() -> None:
        time.sleep(0.3)
        node.write("10-flannel.conflist", FLANNEL)

    writer = threading.Thread(target=main_cni_installs)
    started = time.monotonic()
    writer.start()
    try:
        assert node.run("--timeout", "20") == 0
    finally:
        writer.join()
    assert time.monotonic() - started >= 0.3
    assert node.read("10-flannel.conflist")["plugins"][-1] == ENTRY
    err = capsys.readouterr().err
    assert err.count("waiting for the cluster's network plugin") == 1, err


def test_gives_up_cleanly_after_the_timeout(node: Node, capsys):
    started = time.monotonic()
    assert node.run("--timeout", "0.3") == 1
    assert 0.3 <= time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"error: --timeout: no CNI config appeared in {node.conf_dir} within 0.3 s" in err
    assert "Traceback" not in err and node.files() == {}


# -- the thin client -------------------------------------------------------------------

PT_INTERP = 3  # the ELF program header naming a dynamic loader


def elf_interpreter_headers(executable: bytes) -> int:
    """How many PT_INTERP program headers a 64-bit little-endian ELF file has."""
    assert executable[:6] == b"\x7fELF\x02\x01", "a 64-bit little-endian ELF executable"
    phoff, = struct.unpack_from("<Q", executable, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", executable, 0x36)
    return sum(struct.unpack_from("<I", executable, phoff + i * phentsize)[0] == PT_INTERP
               for i in range(phnum))


def test_the_client_is_the_static_native_executable(node: Node, native_client: Path):
    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    assert stat.S_IMODE(node.client.stat().st_mode) == 0o755
    assert node.client.read_bytes() == native_client.read_bytes()
    assert elf_interpreter_headers(node.client.read_bytes()) == 0, "no dynamic loader, no libc"
    assert install.is_our_client(node.client)


def _run_client(client: Path, config: dict[str, Any], cwd: Path, **env: str) -> tuple[int, Any]:
    done = subprocess.run([str(client)], input=json.dumps(config).encode(), capture_output=True,
                          cwd=cwd, env=env, timeout=30, check=False)
    return done.returncode, json.loads(done.stdout)


def test_the_client_runs_with_nothing_from_the_host(node: Node, tmp_path):
    """Exec'd with an empty environment but the CNI variables: no PATH, no python3."""
    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    code, out = _run_client(node.client, {"cniVersion": "0.4.0"}, tmp_path, CNI_COMMAND="VERSION")
    assert (code, out) == (0, version_report("0.4.0"))

    config = {"cniVersion": "1.0.0", "name": "cbr0", **ENTRY,
              "socket": str(tmp_path / "no-daemon.sock")}
    code, out = _run_client(node.client, config, tmp_path, CNI_COMMAND="ADD",
                            CNI_CONTAINERID="c1", CNI_IFNAME="eth0", CNI_NETNS="/var/run/netns/x")
    assert code == 1 and out["code"] == 11 and "no netsched-cni daemon answers" in out["msg"]


def test_a_missing_or_foreign_client_is_named_and_nothing_is_written(node: Node, capsys,
                                                                     tmp_path):
    node.write("10-flannel.conflist", FLANNEL)
    before = node.files()
    missing = tmp_path / "no-such-client"
    assert node.run("--client", str(missing)) == 1
    err = capsys.readouterr().err
    assert f"error: --client: '{missing}': No such file or directory" in err, err
    foreign = tmp_path / "script"
    foreign.write_text("#!/bin/sh\necho '{}'\n")
    assert node.run("--client", str(foreign)) == 1
    err = capsys.readouterr().err
    assert f"--client: '{foreign}' is not the native netsched-cni client" in err, err
    assert node.files() == before


# -- the kubeconfig --------------------------------------------------------------------


def test_the_kubeconfig_loads_with_the_official_client_and_sends_the_token_file(
        node: Node, tmp_path):
    from kubernetes import config as kube_config

    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    assert stat.S_IMODE(node.kubeconfig.stat().st_mode) == 0o600
    written = node.kubeconfig.read_text()
    account = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert f"{account}/token" in written and f"{account}/ca.crt" in written
    assert node.read("10-flannel.conflist")["plugins"][-1]["kubeconfig"] == \
        "/etc/cni/net.d/netsched-cni.kubeconfig"

    # the daemon pod's service-account mount, stood in for by temporary files
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (mount / "token").write_text("first-token")
    node.kubeconfig.write_text(written.replace(account, str(mount)))

    def authorization() -> tuple[str, str | None, dict[str, str]]:
        client = kube_config.new_client_from_config(config_file=str(node.kubeconfig))
        headers: dict[str, str] = {}
        # what the client adds to each request's headers (here, a pod read)
        client.update_params_for_auth(headers, [], ["BearerToken"],
                                      "/api/v1/namespaces/default/pods/web", "GET", None)
        return client.configuration.host, client.configuration.ssl_ca_cert, headers

    assert authorization() == ("https://10.96.0.1:443", str(mount / "ca.crt"),
                               {"authorization": "Bearer first-token"})
    # kubelet rotates the projected token in place; a client built afterwards sends the new one
    (mount / "token").write_text("rotated-token")
    assert authorization()[2] == {"authorization": "Bearer rotated-token"}


def test_the_api_server_url_brackets_an_ipv6_service_address():
    assert install.api_server_url({"KUBERNETES_SERVICE_HOST": "fd00:10:96::1",
                                   "KUBERNETES_SERVICE_PORT": "443"}) == "https://[fd00:10:96::1]:443"


def test_the_kubeconfig_goes_where_the_flags_say(node: Node, tmp_path):
    node.write("10-flannel.conflist", FLANNEL)
    elsewhere = tmp_path / "kc"
    assert node.run("--kubeconfig-path", "/etc/netsched/kc", "--kubeconfig-file",
                    str(elsewhere)) == 0
    assert elsewhere.is_file() and not node.kubeconfig.exists()
    assert node.read("10-flannel.conflist")["plugins"][-1]["kubeconfig"] == "/etc/netsched/kc"
    assert node.run("--uninstall", "--kubeconfig-file", str(elsewhere)) == 0
    assert not elsewhere.exists()


def test_install_is_reachable_from_the_netsched_cni_executable(node: Node):
    node.write("10-flannel.conflist", FLANNEL)
    binary = Path(sys.executable).parent / "netsched-cni"
    done = subprocess.run(
        [str(binary), "install", "--bin-dir", str(node.bin_dir), "--conf-dir",
         str(node.conf_dir)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "KUBERNETES_SERVICE_HOST": "10.96.0.1",
             "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert done.returncode == 0, done.stderr
    assert node.read("10-flannel.conflist")["plugins"][-1] == ENTRY


def test_the_image_builds_the_client_where_install_looks():
    """deploy/Dockerfile's cni-client stage, copied under the node image's Python prefix
    (its virtualenv, /opt/netsched)."""
    dockerfile = (Path(__file__).parents[2] / "deploy" / "Dockerfile").read_text()
    built = re.search(r"^RUN /src/(cni/thin_client/build\.sh) (\S+)$", dockerfile, re.MULTILINE)
    assert built, "the cni-client stage builds with the Makefile's script"
    where = install.CLIENT_BUILD.relative_to(sys.prefix)
    assert f"COPY --from=cni-client {built[2]} /opt/netsched/{where}\n" in dockerfile


# -- modes, versions, and what a re-run reports -----------------------------------------


def test_a_rerun_reports_what_it_found_in_place_and_changes_nothing(node: Node, capsys):
    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0
    first = capsys.readouterr().err
    assert f"wrote {node.client}" in first and f"wrote {node.kubeconfig}" in first
    before = node.files()
    assert node.run() == 0
    again = capsys.readouterr().err
    assert "wrote" not in again and "chained" not in again, again
    assert f"{node.client} already in place" in again
    assert f"{node.kubeconfig} already in place" in again
    assert "already chains this netsched-cni entry" in again
    assert node.files() == before


def test_annotation_mode_installs_no_kubeconfig_and_the_plugin_takes_its_entry(node: Node, capsys):
    from cni.config import parse_netconf

    node.write("10-flannel.conflist", FLANNEL)
    assert node.run() == 0 and node.kubeconfig.exists()  # reservation mode: the default
    assert node.run("--mode", "annotation") == 0
    entry = node.read("10-flannel.conflist")["plugins"][-1]
    assert "kubeconfig" not in entry and entry == {k: v for k, v in ENTRY.items()
                                                   if k != "kubeconfig"}
    assert not node.kubeconfig.exists()
    assert f"removed {node.kubeconfig}" in capsys.readouterr().err
    conf = parse_netconf(json.dumps({"cniVersion": "0.3.1", "name": "cbr0", **entry}).encode())
    assert conf.kubeconfig is None and conf.socket == ENTRY["socket"]


def test_scheduler_names_go_into_the_entry_in_reservation_mode_only(node: Node, capsys):
    node.write("10-flannel.conflist", FLANNEL)
    assert node.run("--scheduler-name", "netsched-scheduler", "--scheduler-name", "gpu") == 0
    assert node.read("10-flannel.conflist")["plugins"][-1]["schedulerNames"] == [
        "netsched-scheduler", "gpu"]
    assert node.run("--mode", "annotation", "--scheduler-name", "gpu") == 1
    assert "--scheduler-name: only reservation mode" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_the_conflist_keeps_its_cni_version(node: Node, version: str):
    """containerd 1.6 and 1.7 refuse a 1.1.0 result: the plugin answers in the version
    the conflist names, so the installer must never change it."""
    node.write("10-flannel.conflist", {**FLANNEL, "cniVersion": version})
    assert node.run() == 0
    written = node.read("10-flannel.conflist")
    assert written["cniVersion"] == version
    assert all("cniVersion" not in plugin for plugin in written["plugins"])
