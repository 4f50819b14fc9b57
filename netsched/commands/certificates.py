"""``netsched certificates``: create or rotate the pairs of the extender's mutual TLS.

It writes three Secrets (or, with ``--out``, the same files to a folder):

- ``netsched-ca``: the CA (``tls.crt``, ``tls.key``); read back on the next run so that
  rotating the leaf pairs keeps every replica trusting every other's certificates;
- ``netsched-extender-tls``: the extender's server pair for its Service names, and
  ``ca.crt``, the CA whose client certificates it accepts (``--tls-client-ca``);
- ``netsched-scheduler-tls``: kube-scheduler's client pair, and ``ca.crt`` to trust the
  extender (its extender ``tlsConfig``: certFile, keyFile, caFile).

Run it again to rotate (new leaf pairs, same CA; ``--new-ca`` replaces the CA too),
then restart both Deployments: neither reads its files again while running.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

CA_SECRET = "netsched-ca"
EXTENDER_SECRET = "netsched-extender-tls"
SCHEDULER_SECRET = "netsched-scheduler-tls"
CLIENT_NAME = "netsched-scheduler"
"""Common name of kube-scheduler's client certificate (for people and audit logs)."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "certificates", help="create or rotate the extender's mutual-TLS certificates (Secrets)"
    )
    parser.add_argument("--namespace", default="kube-system", help="(default %(default)s)")
    parser.add_argument("--service", default="netsched-extender", help="the extender's Service (default %(default)s)")
    parser.add_argument("--days", type=int, default=365, help="validity of the leaf pairs (default %(default)s)")
    parser.add_argument("--ca-days", type=int, default=3650, help="validity of a new CA (default %(default)s)")
    parser.add_argument("--new-ca", action="store_true", help="replace the CA too (restart both sides together)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", metavar="FILE", help="write the Secrets with this kubeconfig")
    where.add_argument("--out", metavar="DIR", help="write PEM files to DIR instead of Secrets")
    return parser


def run(args: argparse.Namespace) -> int:
    from scheduler_extender.certificates import issue, new_ca, service_names

    if args.days <= 0 or args.ca_days <= 0:
        raise SystemExit("--days and --ca-days must be positive")
    store = _FolderStore(Path(args.out)) if args.out else _SecretStore(args.kubeconfig, args.namespace)
    ca = None if args.new_ca else store.read_ca()
    if ca is None:
        ca = new_ca(f"netsched extender CA ({args.namespace})", args.ca_days)
    server = issue(ca, args.service, days=args.days, dns_names=service_names(args.service, args.namespace))
    client = issue(ca, CLIENT_NAME, days=args.days, client=True)
    bundles: dict[str, dict[str, bytes]] = {
        CA_SECRET: {"tls.crt": ca.cert, "tls.key": ca.key},
        EXTENDER_SECRET: {"tls.crt": server.cert, "tls.key": server.key, "ca.crt": ca.cert},
        SCHEDULER_SECRET: {"tls.crt": client.cert, "tls.key": client.key, "ca.crt": ca.cert},
    }
    for name, files in bundles.items():
        print(f"{store.write(name, files)}", flush=True)
    expires = server.certificate.not_valid_after_utc.date().isoformat()
    print(
        f"pairs valid until {expires}; now restart both sides:\n"
        f"  kubectl -n {args.namespace} rollout restart deployment/netsched-extender deployment/netsched-scheduler",
        flush=True,
    )
    return 0


class _FolderStore:
    """``DIR/<secret>/<key>`` files, for clusters whose Secrets are made by other tools."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read_ca(self):
        from scheduler_extender.certificates import Pair

        cert, key = self.folder / CA_SECRET / "tls.crt", self.folder / CA_SECRET / "tls.key"
        return Pair(cert.read_bytes(), key.read_bytes()) if cert.exists() and key.exists() else None

    def write(self, name: str, files: dict[str, bytes]) -> str:
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        for key, content in files.items():
            path = folder / key
            path.write_bytes(content)
            path.chmod(0o600 if key.endswith(".key") else 0o644)
        return f"wrote {folder}/"


class _SecretStore:
    """Secrets in the cluster, created or replaced."""

    def __init__(self, kubeconfig: str | None, namespace: str) -> None:
        from kubernetes import client

        from kubernetes_access import NoConfiguration, api_client

        try:
            self.api = client.CoreV1Api(api_client(kubeconfig))
        except NoConfiguration as error:
            raise SystemExit(f"netsched certificates: {error}") from None
        self.namespace = namespace

    def read_ca(self):
        from kubernetes_access import ApiFailure, NotFound, api_errors
        from scheduler_extender.certificates import Pair

        try:
            with api_errors():
                secret = self.api.read_namespaced_secret(CA_SECRET, self.namespace)
        except NotFound:
            return None
        except ApiFailure as error:
            raise SystemExit(f"reading Secret {self.namespace}/{CA_SECRET}: {error}") from None
        data = secret.data or {}
        if "tls.crt" not in data or "tls.key" not in data:
            return None
        return Pair(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))

    def write(self, name: str, files: dict[str, bytes]) -> str:
        from kubernetes import client

        from kubernetes_access import ApiFailure, Conflict, api_errors

        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name, namespace=self.namespace, labels={"app.kubernetes.io/part-of": "netsched"}
            ),
            type="kubernetes.io/tls",
            data={key: base64.b64encode(content).decode() for key, content in files.items()},
        )
        try:
            try:
                with api_errors():
                    self.api.create_namespaced_secret(self.namespace, body)
                return f"created Secret {self.namespace}/{name}"
            except Conflict:
                pass  # it exists (AlreadyExists): replace it
            with api_errors():
                self.api.replace_namespaced_secret(name, self.namespace, body)
            return f"replaced Secret {self.namespace}/{name}"
        except ApiFailure as error:
            raise SystemExit(f"writing Secret {self.namespace}/{name}: {error}") from None
