"""The names netsched owns: in the Kubernetes API its group, version, kinds and plurals and
the scheduler name of the pods it places; in a CNI conflist its plugin's type.

Said once here: the models (``contract.objects``) take their ``apiVersion`` and ``kind``
from it, the CRD generator its names and scopes, and every client its list and write paths.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "netsched.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Kind:
    """One kind of the group, as its CustomResourceDefinition names it."""

    kind: str
    plural: str
    namespaced: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's own name, ``<plural>.<group>``."""
        return f"{self.plural}.{GROUP}"


NODE_NETWORK = Kind("NodeNetwork", "nodenetworks")
"""Cluster-scoped, one per node, named after it; written by the node reporter."""
NETWORK = Kind("Network", "networks")
"""Cluster-scoped; written by the admin."""
BANDWIDTH_POLICY = Kind("BandwidthPolicy", "bandwidthpolicies", namespaced=True)
"""Namespaced; written by the admin, its status by the extender."""

CNI_TYPE = "netsched-cni"
"""The ``type`` of netsched's CNI plugin in a conflist: the node's chain, or a NAD's."""

SCHEDULER_NAME = "netsched-scheduler"
"""The ``schedulerName`` of pods placed through netsched (the profile in ``deploy/scheduler.yaml``)."""
