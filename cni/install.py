"""``netsched-cni install``: puts netsched-cni on a node, chained after the cluster's CNI.

The init container of the ``netsched-cni`` DaemonSet runs this with the host's CNI
directories mounted under ``/host``. It leaves three things on the node:

- ``<bin dir>/netsched-cni``: the native thin client (``cni/thin_client``, a static C
  executable), copied from this image's ``<prefix>/libexec/netsched-cni/``. The runtime
  execs it for every ADD/DEL/CHECK; it forwards the call over ``socket`` to
  ``netsched-cni daemon``, which runs the plugin warm. The host needs nothing: no
  python3, no shared C library (libc is linked in), so immutable node OSes (Flatcar, Talos, Bottlerocket,
  Container-Optimized OS) run it as they run the reference plugins.
- netsched-cni's plugin entry at the end of the ``plugins`` of the config the runtime
  actually uses (the lexicographically first ``*.conf``/``*.conflist``/``*.json`` of the
  conf dir: containerd, CRI-O and kubelet choose so), i.e. chained after the cluster's
  main plugin, whose result it extends.
- in reservation mode (``--mode reservation``, the default and the DaemonSet's), a
  kubeconfig for the daemon, pointing at the daemon pod's own service-account token and
  CA, which kubelet keeps fresh: rates and attachments come from the pod's
  ``netsched.io/reservation``, one API read per ADD. In annotation mode (``--mode
  annotation``) there is none: rates come from the runtime's ``bandwidth`` capability
  (the pod's bandwidth annotations), no API access, no attachments (docs/cni.md, "Modes").

Each line of its log says what it changed ("wrote …") or found already in place.

Every file is written under a temporary name in its own directory and renamed: a runtime
never reads half a config nor execs half a binary, and the temporary names end in none
of the extensions a runtime reads. The installer itself is standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from cni.client import DEFAULT_SOCKET
from cni.versions import SUPPORTED_VERSIONS
from contract.group import CNI_TYPE, SCHEDULER_NAME

CLIENT_NAME = CNI_TYPE  # a runtime runs the executable its conflist entry's type names
# Where the build puts the native client: `make cni-client` in the venv, the Dockerfile's
# thin-client stage in the image (whose prefix is the virtualenv /opt/netsched).
CLIENT_BUILD = Path(sys.prefix) / "libexec" / "netsched-cni" / CLIENT_NAME
# The phrase the native client carries (cni/thin_client/main.c: IDENTITY): uninstall
# removes only an executable that has it.
CLIENT_MARKER = b"netsched-cni native thin client"

# libcni's ConfFiles: the extensions a runtime reads in the conf dir.
CONF_EXTENSIONS = (".conf", ".conflist", ".json")
# Notes that a single-plugin file was converted, so uninstall can put it back. Its name
# has none of CONF_EXTENSIONS: no runtime reads it.
CONVERTED_RECORD = "netsched-cni.converted"
TEMP_SUFFIX = ".netsched-tmp"

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_BIN_DIR = "/host/opt/cni/bin"
DEFAULT_CONF_DIR = "/host/etc/cni/net.d"
# The same defaults as cni.config's NetConf (not imported: it needs pydantic).
DEFAULT_STATE_DIR = "/var/lib/cni/netsched"
DEFAULT_MAX_QUEUE_MS = 25.0
DEFAULT_KUBECONFIG_PATH = "/etc/cni/net.d/netsched-cni.kubeconfig"
POLL_S = 0.5


class InstallError(Exception):
    """A problem the operator has to fix; the message names the file or flag and value."""


def say(message: str) -> None:
    """One line on stderr: the init container's log is what an operator reads."""
    print(f"netsched-cni install: {message}", file=sys.stderr, flush=True)


# -- writing files ---------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, mode: int) -> bool:
    """Write ``path`` whole or not at all; False when it already held exactly that.

    The temporary file is created with ``mode`` (a kubeconfig is never readable by
    others, not even for a moment) in the same directory, so the rename is atomic.
    """
    try:
        if path.read_bytes() == data and stat.S_IMODE(path.stat().st_mode) == mode:
            return False
    except OSError:
        pass
    temporary = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # os.open's mode went through the umask
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; a node that loses power keeps the old or the new file."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


# -- the thin client -------------------------------------------------------------------


def client_bytes(source: Path = CLIENT_BUILD) -> bytes:
    """The native thin client this image was built with."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InstallError(f"--client: {str(source)!r}: {exc.strerror} (the image has it; "
                           "from a checkout, build it with `make cni-client`)") from exc
    if not data.startswith(b"\x7fELF") or CLIENT_MARKER not in data:
        raise InstallError(f"--client: {str(source)!r} is not the native netsched-cni client")
    return data


def is_our_client(path: Path) -> bool:
    """True for a native thin client, as this installer writes it."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return CLIENT_MARKER in data


# -- the kubeconfig --------------------------------------------------------------------


def api_server_url(environ: Any) -> str:
    """The API server as every pod sees it (kubelet sets these two in each container)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise InstallError(
            "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
            f"(got {host!r}/{port!r}): run install in a pod, where kubelet sets them"
        )
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"https://{host}:{port}"


def write_kubeconfig(
    path: Path,
    server: str,
    ca_file: str = f"{SERVICE_ACCOUNT_DIR}/ca.crt",
    token_file: str = f"{SERVICE_ACCOUNT_DIR}/token",
) -> bool:
    """Write the daemon's kubeconfig (mode 0600): ``server`` with the pod's own credentials.

    It names files rather than embedding a token: ``tokenFile`` is the daemon pod's
    projected service-account token, which kubelet rotates in place, and the client reads
    the file each time it loads the kubeconfig, so nothing here expires. The paths only
    resolve inside the daemon container; the installer copies no secret onto the host.
    JSON is YAML, so every kubeconfig reader takes it.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "in-cluster", "cluster": {"server": server, "certificate-authority": ca_file}}
        ],
        "users": [{"name": "netsched-cni", "user": {"tokenFile": token_file}}],
        "contexts": [
            {"name": "netsched-cni", "context": {"cluster": "in-cluster", "user": "netsched-cni"}}
        ],
        "current-context": "netsched-cni",
    }
    return write_atomic(path, _json_bytes(config), 0o600)


# -- the chained entry -----------------------------------------------------------------


def plugin_entry(
    kubeconfig: str | None = DEFAULT_KUBECONFIG_PATH,
    state_dir: str = DEFAULT_STATE_DIR,
    max_queue_ms: float = DEFAULT_MAX_QUEUE_MS,
    socket: str = DEFAULT_SOCKET,
    scheduler_names: Sequence[str] = (),
) -> dict[str, Any]:
    """netsched-cni's element of ``plugins``; ``bandwidth`` so runtimes pass pod rates.

    ``kubeconfig`` None is annotation mode. The entry carries no ``cniVersion``: a
    runtime gives every plugin the conflist's, and the plugin answers in it (containerd
    1.6 and 1.7 refuse a 1.1.0 result).
    """
    entry: dict[str, Any] = {"type": CNI_TYPE, "capabilities": {"bandwidth": True}}
    if kubeconfig is not None:
        entry["kubeconfig"] = kubeconfig
    entry.update({
        "stateDir": state_dir,
        "maxQueueMs": int(max_queue_ms) if float(max_queue_ms).is_integer() else max_queue_ms,
        "socket": socket,
    })
    if scheduler_names:
        entry["schedulerNames"] = list(scheduler_names)
    return entry


def _extension(name: str) -> str:
    """Go's filepath.Ext, which libcni uses: from the last dot on (``.conf`` for ``.conf``)."""
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def conf_files(conf_dir: Path) -> list[Path]:
    """The files a runtime considers, in the order it considers them (by name, bytewise)."""
    try:
        entries = list(os.scandir(conf_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = sorted(
        e.name for e in entries if _extension(e.name) in CONF_EXTENSIONS and not e.is_dir()
    )
    return [conf_dir / name for name in names]


def primary_conf(conf_dir: Path) -> Path | None:
    """The config file the runtime uses for pods: the first of :func:`conf_files`."""
    files = conf_files(conf_dir)
    return files[0] if files else None


def wait_for_primary(conf_dir: Path, timeout: float | None = None, poll_s: float = POLL_S) -> Path:
    """The primary config, waiting for one to appear: the main CNI may install after us.

    Says once that it waits (the log shows why the init container is not done), then
    polls; ``timeout`` None waits forever, as an init container should.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        primary = primary_conf(conf_dir)
        if primary is not None:
            return primary
        if not announced:
            say(f"waiting for the cluster's network plugin to write its config "
                f"(*.conflist, *.conf, *.json) in {conf_dir}")
            announced = True
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InstallError(
                    f"--timeout: no CNI config appeared in {conf_dir} within {timeout:g} s"
                )
            time.sleep(min(poll_s, left))
        else:
            time.sleep(poll_s)


def read_network(path: Path) -> dict[str, Any]:
    """The network in ``path`` as a conflist document, checked as a runtime would load it.

    A single-plugin ``.conf``/``.json`` is upconverted the way libcni's ConfListFromConf
    does it: the whole original document becomes the only plugin, and the list takes its
    ``name`` and ``cniVersion``. Raises :class:`InstallError` naming the file and problem.
    """
    if path.is_symlink():
        raise InstallError(f"{path}: is a symbolic link; netsched-cni install edits only "
                           "regular files (replacing it would cut the link)")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InstallError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InstallError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InstallError(f"{path}: not a JSON object")
    if _extension(path.name) == ".conflist":
        plugins = document.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise InstallError(f'{path}: no "plugins" list')
        for position, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) \
                    or not plugin["type"]:
                raise InstallError(f'{path}: plugins[{position}] has no "type"')
        conflist = document
    else:
        if not isinstance(document.get("type"), str) or not document["type"]:
            hint = " (a list of plugins belongs in a .conflist file)" if "plugins" in document else ""
            raise InstallError(f'{path}: no "type"{hint}')
        conflist = {
            "cniVersion": document.get("cniVersion"),
            "name": document.get("name"),
            "plugins": [document],
        }
    if not isinstance(conflist.get("name"), str) or not conflist["name"]:
        raise InstallError(f'{path}: no "name"')
    version = conflist.get("cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise InstallError(
            f"{path}: cniVersion {version!r} is not one netsched-cni speaks "
            f"({', '.join(SUPPORTED_VERSIONS)}); every ADD would fail"
        )
    if all(p["type"] == CNI_TYPE for p in conflist["plugins"]):
        raise InstallError(f"{path}: holds no plugin but netsched-cni, which only chains "
                           "after a main plugin")
    return conflist


def _read_record(conf_dir: Path) -> dict[str, str]:
    try:
        record = json.loads((conf_dir / CONVERTED_RECORD).read_bytes())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def chain_into_primary(
    conf_dir: Path, plugin: dict[str, Any], timeout: float | None = None
) -> Path:
    """Put ``plugin`` last in the primary config's ``plugins``; the conflist written.

    Waits for a primary config first (see :func:`wait_for_primary`). An existing
    netsched-cni entry is replaced, wherever it stood, so a re-run changes nothing and an
    upgrade changes only our entry; every other field is kept as it was. A ``.conf`` or
    ``.json`` becomes a ``.conflist`` of the same base name and the original is removed,
    else the runtime would keep using it (it sorts first). A bad primary config raises
    :class:`InstallError` before anything is written.
    """
    primary = wait_for_primary(conf_dir, timeout)
    conflist = read_network(primary)
    others = [p for p in conflist["plugins"] if p["type"] != CNI_TYPE]
    updated = {**conflist, "plugins": [*others, plugin]}
    mode = stat.S_IMODE(primary.stat().st_mode)
    if _extension(primary.name) == ".conflist":
        if write_atomic(primary, _json_bytes(updated), mode):
            say(f"chained netsched-cni into {primary}")
        else:
            say(f"{primary} already chains this netsched-cni entry")
        return primary

    target = primary.with_name(primary.name[: -len(_extension(primary.name))] + ".conflist")
    record = {"conflist": target.name, "original": primary.name}
    if target.exists() and _read_record(conf_dir) != record:
        raise InstallError(f"{primary}: cannot convert it to {target.name}, which exists "
                           "and was not written by netsched-cni install")
    # The record first: a crash before the unlink leaves a state a re-run completes.
    write_atomic(conf_dir / CONVERTED_RECORD, _json_bytes(record), 0o644)
    write_atomic(target, _json_bytes(updated), mode)
    primary.unlink()
    _fsync_directory(conf_dir)
    say(f"converted {primary.name} to {target.name} and chained netsched-cni into it")
    return target


def unchain(conf_dir: Path) -> list[Path]:
    """Remove netsched-cni's entry from every conflist in ``conf_dir``; the files changed.

    Each document goes back to what it was before install; a conflist that install made
    from a ``.conf``/``.json`` is turned back into it. Files without our entry, or that
    are not valid conflists, are left alone. Running it again changes nothing.
    """
    record = _read_record(conf_dir)
    changed: list[Path] = []
    for path in conf_files(conf_dir):
        if _extension(path.name) != ".conflist" or path.is_symlink():
            continue
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        plugins = document.get("plugins") if isinstance(document, dict) else None
        if not isinstance(plugins, list):
            continue
        kept = [p for p in plugins if not (isinstance(p, dict) and p.get("type") == CNI_TYPE)]
        if len(kept) == len(plugins) or not kept:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        original_name = record.get("original")
        if record.get("conflist") == path.name and len(kept) == 1 \
                and isinstance(original_name, str) and _extension(original_name) != ".conflist":
            original = conf_dir / PurePosixPath(original_name).name
            if not original.exists():
                write_atomic(original, _json_bytes(kept[0]), mode)
                changed.append(original)
            # else the main plugin has written its file anew: ours is a stale copy
            path.unlink()
            say(f"removed {path.name}, which install had made from {original.name}")
        else:
            write_atomic(path, _json_bytes({**document, "plugins": kept}), mode)
            say(f"removed netsched-cni from {path}")
        changed.append(path)
    (conf_dir / CONVERTED_RECORD).unlink(missing_ok=True)
    return changed


# -- install / uninstall ---------------------------------------------------------------


def report(path: Path, changed: bool) -> None:
    say(f"wrote {path}" if changed else f"{path} already in place")


def install(
    bin_dir: Path,
    conf_dir: Path,
    plugin: dict[str, Any],
    kubeconfig_file: Path,
    server: str | None,
    timeout: float | None = None,
    client: Path = CLIENT_BUILD,
) -> Path:
    """Client, kubeconfig, then the chained entry; the conflist that now runs netsched-cni.

    ``server`` None is annotation mode: no kubeconfig, and one left by an earlier
    reservation-mode install is removed. The primary config and the client are checked
    before anything is written, and the entry comes last, so a runtime never finds a
    netsched-cni entry whose executable is not there yet.
    """
    if not bin_dir.is_dir():
        raise InstallError(f"--bin-dir: {str(bin_dir)!r} is not a directory "
                           "(mount the host's CNI bin dir there)")
    executable = client_bytes(client)
    read_network(wait_for_primary(conf_dir, timeout))
    report(bin_dir / CLIENT_NAME, write_atomic(bin_dir / CLIENT_NAME, executable, 0o755))
    if server is not None:
        report(kubeconfig_file, write_kubeconfig(kubeconfig_file, server))
    elif kubeconfig_file.exists():
        kubeconfig_file.unlink()
        say(f"removed {kubeconfig_file} (annotation mode reads no reservations)")
    return chain_into_primary(conf_dir, plugin, timeout=0)


def uninstall(bin_dir: Path, conf_dir: Path, kubeconfig_file: Path) -> None:
    """Undo :func:`install`: the entry first (so no runtime calls a missing client), then files."""
    unchain(conf_dir)
    client = bin_dir / CLIENT_NAME
    if is_our_client(client):
        client.unlink()
        say(f"removed {client}")
    elif client.exists():
        say(f"left {client}: not a thin client netsched-cni install wrote")
    if kubeconfig_file.exists():
        kubeconfig_file.unlink()
        say(f"removed {kubeconfig_file}")


# -- command line ----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line and exit 1 like every other install error."""

    def error(self, message: str) -> NoReturn:
        raise InstallError(message)


def _absolute(value: str) -> str:
    if not PurePosixPath(value).is_absolute():
        raise argparse.ArgumentTypeError(f"{value!r} is not an absolute path")
    return value


def _number(check: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: a number that passes ``check``, else an error naming value and rule."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not check(number):
            raise argparse.ArgumentTypeError(f"{value!r} {rule}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netsched-cni install",
        description="Install netsched-cni on this node: the native thin-client executable, the "
        "daemon's kubeconfig, and its entry chained last into the runtime's CNI config. "
        "The defaults suit the init container of deploy/cni/daemonset.yaml.",
    )
    parser.add_argument("--mode", choices=("reservation", "annotation"), default="reservation",
                        help="reservation: rates and attachments from the pod's "
                        "netsched.io/reservation, read with a kubeconfig (default); "
                        "annotation: rates from the runtime's bandwidth capability only, "
                        "no API access")
    parser.add_argument("--scheduler-name", action="append", dest="scheduler_names",
                        default=[], metavar="NAME",
                        help="a scheduler whose pods' reservations are enforced; repeat for "
                        f"several (default: {SCHEDULER_NAME})")
    parser.add_argument("--bin-dir", type=Path, default=Path(DEFAULT_BIN_DIR),
                        help="the host's CNI bin dir, as mounted here (default %(default)s)")
    parser.add_argument("--conf-dir", type=Path, default=Path(DEFAULT_CONF_DIR),
                        help="the host's CNI conf dir, as mounted here (default %(default)s)")
    parser.add_argument("--client", type=Path, default=CLIENT_BUILD,
                        help="the native thin client to copy (default %(default)s)")
    parser.add_argument("--socket", type=_absolute, default=DEFAULT_SOCKET,
                        help="the daemon's Unix socket on the host (default %(default)s)")
    parser.add_argument("--state-dir", type=_absolute, default=DEFAULT_STATE_DIR,
                        help="the plugin's stateDir (default %(default)s)")
    parser.add_argument("--max-queue-ms", default=DEFAULT_MAX_QUEUE_MS,
                        type=_number(lambda n: 0 < n <= 1000, "must be in (0, 1000] milliseconds"),
                        help="the plugin's maxQueueMs (default %(default)g)")
    parser.add_argument("--kubeconfig-path", type=_absolute, default=DEFAULT_KUBECONFIG_PATH,
                        help="the kubeconfig's path on the host, written into the entry "
                        "(default %(default)s)")
    parser.add_argument("--kubeconfig-file", type=Path, default=None,
                        help="where to write it, as seen here (default: the file name of "
                        "--kubeconfig-path inside --conf-dir)")
    parser.add_argument("--timeout", default=None,
                        type=_number(lambda n: n >= 0, "must be 0 or more seconds"),
                        help="give up after this many seconds without a CNI config "
                        "(default: wait forever)")
    parser.add_argument("--uninstall", action="store_true",
                        help="remove the entry, the executable and the kubeconfig instead")
    return parser


def main(argv: Sequence[str]) -> int:
    """``netsched-cni install [flags]``; ``argv`` is what follows ``install``. Exit status."""
    try:
        args = build_parser().parse_args(list(argv))
        kubeconfig_file = args.kubeconfig_file or (
            args.conf_dir / PurePosixPath(args.kubeconfig_path).name
        )
        if args.uninstall:
            uninstall(args.bin_dir, args.conf_dir, kubeconfig_file)
            return 0
        reservations = args.mode == "reservation"
        if args.scheduler_names and not reservations:
            raise InstallError("--scheduler-name: only reservation mode reads reservations")
        plugin = plugin_entry(args.kubeconfig_path if reservations else None, args.state_dir,
                              args.max_queue_ms, args.socket, args.scheduler_names)
        install(args.bin_dir, args.conf_dir, plugin, kubeconfig_file,
                api_server_url(os.environ) if reservations else None, args.timeout,
                args.client)
        return 0
    except InstallError as exc:
        say(f"error: {exc}")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"error: {where}{exc.strerror or exc}")
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
