"""The ValidatingAdmissionPolicy in deploy/: only the extender sets or changes a reservation.

The policy's CEL is evaluated with cel-python as kube-apiserver evaluates it: its
match constraints pick the request (operation and resource, subresources included),
``variables`` are computed in order and visible as ``variables.<name>``, ``oldObject``
is null on CREATE, and a validation that is false with ``validationActions: [Deny]``
answers 422 ``Invalid`` with the message the captured answer of a real kube-apiserver
v1.36 carries (tests/fixtures/kube-apiserver-v1.36/admission-policy-denied.json).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "deploy" / "base" / "admission.yaml"
DENIED = json.loads((ROOT / "tests" / "fixtures" / "kube-apiserver-v1.36" / "admission-policy-denied.json").read_text())
RESERVATION = "netsched.io/reservation"
EXTENDER = "system:serviceaccount:kube-system:netsched-extender"
TENANT = "system:serviceaccount:team-a:default"
KUBE_SCHEDULER = "system:kube-scheduler"


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionRequest the policy can see."""

    operation: str
    resource: str  # "pods" or "pods/<subresource>"
    username: str
    object: dict[str, Any]
    old_object: dict[str, Any] | None = None


class AdmissionPolicy:
    """deploy/'s policy and its binding, evaluated as kube-apiserver's admission plugin does."""

    def __init__(self, path: Path) -> None:
        documents = list(yaml.safe_load_all(path.read_text()))
        (self.policy,) = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicy"]
        (self.binding,) = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicyBinding"]
        assert self.binding["spec"]["policyName"] == self.policy["metadata"]["name"]
        assert self.binding["spec"]["validationActions"] == ["Deny"]
        environment = celpy.Environment()
        spec = self.policy["spec"]
        self.variables = [(v["name"], environment.program(environment.compile(v["expression"])))
                          for v in spec["variables"]]
        self.validations = [(environment.program(environment.compile(v["expression"])), v["message"])
                            for v in spec["validations"]]

    def matches(self, request: Request) -> bool:
        return any(
            request.operation in rule["operations"] and request.resource in rule["resources"]
            for rule in self.policy["spec"]["matchConstraints"]["resourceRules"]
        )

    def admit(self, request: Request) -> tuple[int, dict[str, Any]] | None:
        """None when admitted; else the (status, Status body) kube-apiserver answers."""
        if not self.matches(request):
            return None
        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(request.object),
            "oldObject": celpy.json_to_cel(request.old_object) if request.old_object is not None else None,
            "request": celpy.json_to_cel({"operation": request.operation, "userInfo": {"username": request.username}}),
        }
        computed: dict[str, Any] = {}
        for name, program in self.variables:
            computed[name] = program.evaluate({**activation, "variables": celpy.celtypes.MapType(computed)})
            activation["variables"] = celpy.celtypes.MapType(computed)
        for program, message in self.validations:
            result = program.evaluate({**activation, "variables": celpy.celtypes.MapType(computed)})
            assert isinstance(result, celpy.celtypes.BoolType), f"the CEL did not evaluate: {result!r}"
            if not result:
                return self._denied(request, message)
        return None

    def _denied(self, request: Request, message: str) -> tuple[int, dict[str, Any]]:
        name = request.object["metadata"]["name"]
        why = (f"ValidatingAdmissionPolicy '{self.policy['metadata']['name']}' with binding "
               f"'{self.binding['metadata']['name']}' denied request: {message}")
        return 422, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'pods "{name}" is forbidden: {why}', "reason": "Invalid",
            "details": {"name": name, "kind": "pods", "causes": [{"message": why}]}, "code": 422,
        }


@pytest.fixture(scope="module")
def policy() -> AdmissionPolicy:
    return AdmissionPolicy(POLICY_FILE)


def pod(annotations: dict[str, str] | None = None, node: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "web", "namespace": "team-a"},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    if node:
        body["spec"]["nodeName"] = node
    return body


def binding(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": "web", "namespace": "team-a", "uid": "u-1"},
                            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    return body


RESERVED = json.dumps({"node": "node-a", "interfaces": {"eth0": {"egress": 800_000_000}}})
FORGED = json.dumps({"node": "node-b", "interfaces": {"eth0": {"egress": 1}}})


def test_the_captured_denial_is_what_the_policy_answers(policy):
    # The real server denied this pod create from a tenant; the policy answers it word for word.
    request = DENIED["request"]
    assert (request["method"], request["path"]) == ("POST", "/api/v1/namespaces/team-a/pods")
    answer = policy.admit(Request("CREATE", "pods", TENANT, request["body"]))
    assert answer == (DENIED["status"], DENIED["response"])


@pytest.mark.parametrize(
    ("case", "request_", "denied"),
    [
        ("a pod created without a reservation", Request("CREATE", "pods", TENANT, pod({"a": "b"})), False),
        ("a pod created without any annotation", Request("CREATE", "pods", TENANT, pod()), False),
        ("a pod created with a forged reservation",
         Request("CREATE", "pods", TENANT, pod({RESERVATION: FORGED})), True),
        ("a controller copying a template's reservation",
         Request("CREATE", "pods", "system:serviceaccount:kube-system:replicaset-controller",
                 pod({RESERVATION: FORGED})), True),
        ("a patch adding one", Request("UPDATE", "pods", TENANT, pod({RESERVATION: FORGED}), pod()), True),
        ("a patch changing one (800M to 1 bit/s)",
         Request("UPDATE", "pods", TENANT, pod({RESERVATION: FORGED}, "node-a"),
                 pod({RESERVATION: RESERVED}, "node-a")), True),
        ("a patch removing one",
         Request("UPDATE", "pods", TENANT, pod({}, "node-a"), pod({RESERVATION: RESERVED}, "node-a")), True),
        ("a patch of another annotation that keeps the reservation",
         Request("UPDATE", "pods", TENANT, pod({RESERVATION: RESERVED, "team": "a"}, "node-a"),
                 pod({RESERVATION: RESERVED}, "node-a")), False),
        ("a status write that changes it",
         Request("UPDATE", "pods/status", "system:node:node-a", pod({RESERVATION: FORGED}, "node-a"),
                 pod({RESERVATION: RESERVED}, "node-a")), True),
        ("another scheduler's Binding carrying one",
         Request("CREATE", "pods/binding", KUBE_SCHEDULER, binding({RESERVATION: FORGED})), True),
        ("another scheduler's plain Binding", Request("CREATE", "pods/binding", KUBE_SCHEDULER, binding()), False),
        ("the extender's Binding carrying the reservation",
         Request("CREATE", "pods/binding", EXTENDER, binding({RESERVATION: RESERVED})), False),
        ("the extender changing a reservation",
         Request("UPDATE", "pods", EXTENDER, pod({RESERVATION: RESERVED}), pod({RESERVATION: FORGED})), False),
        ("a tenant's service account named like the extender in another namespace",
         Request("CREATE", "pods/binding", "system:serviceaccount:team-a:netsched-extender",
                 binding({RESERVATION: FORGED})), True),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_only_the_extender_sets_or_changes_a_reservation(policy, case, request_, denied):
    answer = policy.admit(request_)
    if not denied:
        assert answer is None, case
        return
    assert answer is not None, case
    status, body = answer
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"].endswith("denied request: only netsched writes netsched.io/reservation")


def test_deletes_and_other_resources_are_not_its_business(policy):
    assert not policy.matches(Request("DELETE", "pods", TENANT, pod({RESERVATION: FORGED})))
    assert not policy.matches(Request("CREATE", "configmaps", TENANT, pod({RESERVATION: FORGED})))
    assert not policy.matches(Request("CREATE", "pods/eviction", TENANT, pod()))


def test_the_extender_is_the_service_account_deploy_runs_it_as():
    extender = [d for d in yaml.safe_load_all((ROOT / "deploy" / "base" / "extender.yaml").read_text())
                if d["kind"] == "Deployment"][0]
    account = extender["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = extender["metadata"]["namespace"]
    assert f"'system:serviceaccount:{namespace}:{account}'" in POLICY_FILE.read_text()


def test_the_policy_does_not_depend_on_how_the_reservation_is_spelled(policy):
    # An annotation key differing only in case is another key: kube-apiserver keys are exact.
    other = copy.deepcopy(pod({"Netsched.io/reservation": FORGED}))
    assert policy.admit(Request("CREATE", "pods", TENANT, other)) is None
