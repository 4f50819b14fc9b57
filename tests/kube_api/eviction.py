"""The ``pods/eviction`` subresource (``policy/v1`` Eviction) as kube-apiserver v1.36 serves it.

What it reproduces (captured answers in tests/fixtures/kube-apiserver-v1.36/, the rest from the
server's eviction REST storage):

- an unknown pod: 404 ``pods "<name>" not found``;
- a pod that is Pending, Succeeded, Failed or already being deleted is evicted without any
  PodDisruptionBudget check;
- otherwise the budgets of the pod's namespace whose selector matches the pod's labels decide:
  more than one is a 500; one whose status the disruption controller has not computed yet
  (``status.observedGeneration`` below ``metadata.generation``) or whose
  ``status.disruptionsAllowed`` is 0 answers 429 ``TooManyRequests`` with a ``DisruptionBudget``
  cause; a pod that is not Ready passes a healthy budget without using it up (the default
  ``IfHealthyBudget`` policy); else the budget's ``disruptionsAllowed`` drops by one and the pod
  is listed in its ``status.disruptedPods``;
- an allowed eviction answers 201 and deletes the pod gracefully: it gets a ``DisruptionTarget``
  condition, ``deletionTimestamp`` = now + its grace period (``terminationGracePeriodSeconds``,
  30 by default), ``deletionGracePeriodSeconds`` and a new ``generation``, and stays until the
  kubelet finishes (tests call ``FakeKubeAPI.delete``). A pod on no node, or finished, has
  nothing to stop and goes at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

DEFAULT_GRACE_SECONDS = 30
PDB_COLLECTION = "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


class EvictionRefused(Exception):
    """The answer is an error ``Status``: (code, reason, message, details)."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics: no selector matches nothing, an empty one everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for term in selector.get("matchExpressions") or []:
        key, operator, values = term["key"], term["operator"], term.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def ignores_budgets(pod: dict[str, Any]) -> bool:
    """Pods evicted without a budget check: not running yet, finished, or already going."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Succeeded", "Failed") or bool(
        pod["metadata"].get("deletionTimestamp")
    )


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def check_budget(pdb: dict[str, Any], pod: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The budget's new status if the eviction may go ahead and uses it up, None if it may go
    ahead without using it; raises ``EvictionRefused`` (429) when it may not."""
    status = pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many(f"The disruption budget {name} is still being processed by the server.")
    desired, current = status.get("desiredHealthy", 0), status.get("currentHealthy", 0)
    if not is_ready(pod) and current >= desired > 0:
        return None  # an unhealthy pod does not count towards the budget
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise EvictionRefused(403, "Forbidden", "pdb disruptions allowed is negative", {})
    if allowed == 0:
        raise _too_many(
            f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )
    disrupted = dict(status.get("disruptedPods") or {})
    disrupted[pod["metadata"]["name"]] = _timestamp(now)
    return {**status, "disruptionsAllowed": allowed - 1, "disruptedPods": disrupted}


def _too_many(cause: str) -> EvictionRefused:
    return EvictionRefused(
        429, "TooManyRequests", TOO_MANY, {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    )


def validate(body: Any, name: str) -> dict[str, Any]:
    """The Eviction body: the delete options it carries; 400 when it names another pod."""
    if not isinstance(body, dict) or body.get("kind") != "Eviction":
        raise EvictionRefused(400, "BadRequest", "the request body must be an Eviction", {})
    if (body.get("metadata") or {}).get("name") != name:
        raise EvictionRefused(
            400, "BadRequest", "name in URL does not match name in Eviction object", {}
        )
    return body.get("deleteOptions") or {}


def gracefully_deleted(pod: dict[str, Any], options: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The pod as a graceful deletion leaves it, or None when it goes at once (no kubelet runs
    it: not on a node, or finished)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    metadata = dict(pod["metadata"])
    if metadata.get("deletionTimestamp"):
        return pod  # already going; a second eviction changes nothing here
    metadata["deletionTimestamp"] = _timestamp(now + timedelta(seconds=grace))
    metadata["deletionGracePeriodSeconds"] = grace
    metadata["generation"] = metadata.get("generation", 1) + 1
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    conditions.append(
        {
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": _timestamp(now),
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
    )
    return {**pod, "metadata": metadata, "status": {**status, "conditions": conditions}}


__all__ = [
    "PDB_COLLECTION",
    "EvictionRefused",
    "check_budget",
    "gracefully_deleted",
    "ignores_budgets",
    "selector_matches",
    "validate",
]
