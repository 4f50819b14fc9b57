"""netsched-cni: the chained CNI plugin that enforces reserved bandwidth and adds attachments.

``cni.main`` is the executable; ``cni.commands`` holds the verbs over small helpers:
``config`` (NetConf, result, environment), ``errors`` (the spec's error codes), ``netns``
(netlink inside a pod's namespace), ``shaping`` (tbf/ifb), ``segments`` (VXLAN/VLAN
devices on the node), ``podlinks`` (the pod's macvlans), ``state`` (records for DEL/GC),
``validate`` and ``kube`` (the reservation annotation via a kubeconfig).
"""
