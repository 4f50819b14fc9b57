"""deploy/'s NetworkPolicy: the verbs port takes only the netsched scheduler's pods; the
read-only port takes anyone. Checked on the objects `kubectl apply -k deploy/` sends, with
the matching rules of the NetworkPolicy API (a rule's ``from`` peers OR'ed, a peer's
podSelector matching pods of the policy's own namespace, a rule without ``from`` admitting
every source, a rule's ports naming the container ports by name)."""

from __future__ import annotations

import pytest

from tests.kubernetes.test_manifests import DEPLOY, PLAIN, built, container, find


def admits(policy: dict, source_labels: dict[str, str], source_namespace: str, port_name: str) -> bool:
    namespace = policy["metadata"]["namespace"]
    for rule in policy["spec"]["ingress"]:
        if port_name not in {p["port"] for p in rule.get("ports", [])}:
            continue
        peers = rule.get("from")
        if peers is None:
            return True
        for peer in peers:
            wanted = peer["podSelector"]["matchLabels"]
            if source_namespace == namespace and wanted.items() <= source_labels.items():
                return True
    return False


@pytest.mark.parametrize("root", [DEPLOY, PLAIN], ids=["mutual-tls", "plain-http"])
def test_only_scheduler_pods_reach_the_verbs(root):
    policy = find("NetworkPolicy", "netsched-extender", root)
    extender = find("Deployment", "netsched-extender", root)
    scheduler = find("Deployment", "netsched-scheduler", root)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= (
        extender["spec"]["template"]["metadata"]["labels"].items())
    ports = {p["name"] for p in container(extender, "extender")["ports"]}
    assert ports == {"http", "read-only"}
    scheduler_labels = scheduler["spec"]["template"]["metadata"]["labels"]
    tenant = {"app": "web", "app.kubernetes.io/part-of": "shop"}
    assert admits(policy, scheduler_labels, "kube-system", "http")
    assert not admits(policy, tenant, "team-a", "http")
    assert not admits(policy, tenant, "kube-system", "http")
    # a tenant namespace's pod wearing the scheduler's labels is still in the wrong namespace
    assert not admits(policy, scheduler_labels, "team-a", "http")
    assert admits(policy, tenant, "team-a", "read-only")


def test_the_read_only_service_exposes_no_verb_port():
    (read_only,) = [o for o in built(DEPLOY) if o["kind"] == "Service"
                    and o["metadata"]["name"] == "netsched-extender-read-only"]
    assert [p["targetPort"] for p in read_only["spec"]["ports"]] == ["read-only"]
    verbs = find("Service", "netsched-extender")
    assert [p["targetPort"] for p in verbs["spec"]["ports"]] == ["http"]
