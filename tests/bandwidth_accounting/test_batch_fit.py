"""``batch_fit`` must agree with ``plan_on_node`` wherever it decides, on any cluster state."""

from datetime import timedelta

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bandwidth_accounting.batch import SlotMap, batch_fit
from bandwidth_accounting.fit import Plan, plan_on_node
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
from bandwidth_accounting.settings import FitSettings
from contract.objects import InterfaceRole, NetworkInterface
from scheduler_extender.scoring import headroom_left
from tests.bandwidth_accounting.random_clusters import NOW, build, nodes, observations, rates, requirements

ONE_POD_INTERFACE = [NetworkInterface(name="eth0", role=InterfaceRole.POD, speed_mbps=1000)]


@settings(max_examples=400, deadline=None)
# The headroom counts the direction the pod asks nothing of (here ingress, 50M held).
@example(nodes=[(ONE_POD_INTERFACE, "z1", 5, True)], requirements=PodRequirements(egress_bps=1_000_000),
         held=[(0, 0, 50_000_000, 0)], observed={}, observed_max_age=None)
# Found by mutation testing (`make mutate`): the boundaries, which random rates miss.
# A pod asking exactly what is left fits (one charge, and two charges on one interface):
@example(nodes=[(ONE_POD_INTERFACE, "z1", 5, True)], requirements=PodRequirements(ingress_bps=50_000_000),
         held=[(0, 0, 50_000_000, 0)] * 17, observed={}, observed_max_age=None)
@example(nodes=[([NetworkInterface(name="eth0", role=InterfaceRole.POD, speed_mbps=1000, vlans=[10])], "z1", 5, True)],
         requirements=PodRequirements(ingress_bps=25_000_000, attachments=(
             AttachmentRequirement(network="blue", interface="net1", ingress_bps=25_000_000, egress_bps=0),)),
         held=[(0, 0, 50_000_000, 0)] * 17, observed={}, observed_max_age=None)
# A report exactly as old as the TTL is fresh; an observation exactly as old as the maximum age counts.
@example(nodes=[(ONE_POD_INTERFACE, "z1", 60, True)], requirements=PodRequirements(egress_bps=1_000_000),
         held=[], observed={}, observed_max_age=None)
@example(nodes=[(ONE_POD_INTERFACE, "z1", 5, True)], requirements=PodRequirements(egress_bps=1_000_000),
         held=[], observed={0: (30, {"eth0": (0, 100_000_000)})}, observed_max_age=timedelta(seconds=30))
@given(nodes=nodes, requirements=requirements,
       held=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), rates, rates), max_size=8),
       observed=observations, observed_max_age=st.sampled_from([None, timedelta(seconds=30)]))
def test_batch_agrees_with_plan_on_node(nodes, requirements, held, observed, observed_max_age):
    topology, ledger = build(nodes, held, observed)
    if not requirements.needs_resources:
        return
    names = [f"n{i}" for i in range(len(nodes))] + ["ghost"]
    fit = FitSettings(report_ttl=timedelta(seconds=60), observed_max_age=observed_max_age)
    rows = topology.rows.rows_of(names)
    batch = batch_fit(requirements, rows, topology, ledger, SlotMap(topology.rows, ledger), NOW, fit)
    assert batch.rows is rows
    for index, name in enumerate(names):
        exact = plan_on_node(requirements, name, topology, ledger, NOW, fit)
        if not batch.fits[index]:
            assert np.isnan(batch.headroom[index])  # not decided here: no headroom either
        if batch.fits[index]:
            assert isinstance(exact, Plan), (name, exact)
            expected = headroom_left(exact, ledger, fit.observed_since(NOW))
            assert (np.isnan(expected) and np.isnan(batch.headroom[index])) or np.isclose(expected, batch.headroom[index])
        elif isinstance(exact, Plan):
            # Only a choice between several carriers is left to plan_on_node.
            assert any(len(topology.interfaces_carrying(name, a.network)) > 1 for a in requirements.attachments)
