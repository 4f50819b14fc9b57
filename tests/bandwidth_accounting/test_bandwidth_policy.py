"""BandwidthPolicy arithmetic: defaults per direction, maximum and totals over every interface, bad values named."""

from __future__ import annotations

import pytest

from bandwidth_accounting.policy import (
    InvalidPolicy,
    NamespacePolicy,
    pod_totals,
    policy_problems,
    policy_status,
    with_defaults,
)
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
from contract.objects import BandwidthPolicy, DirectionalBandwidth


def policy(**spec) -> BandwidthPolicy:
    return BandwidthPolicy.model_validate({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec})


def parsed(**spec) -> NamespacePolicy:
    return NamespacePolicy.of(policy(**spec))


def test_values_parse_and_zero_is_a_real_maximum_or_total():
    policy = parsed(default={"egress": "1.5G"}, max={"ingress": "0", "egress": "2Gi"}, hard={"egress": "0.0k"})
    assert policy.default == (None, 1_500_000_000)
    assert policy.max == (0, 2 * 1024**3)
    assert policy.hard == (None, 0)


@pytest.mark.parametrize(("spec", "message"), [
    ({"default": {"egress": "0"}}, "BandwidthPolicy ns/p: spec.default.egress: '0' must be a positive rate"),
    ({"hard": {"ingress": "20T"}}, "BandwidthPolicy ns/p: spec.hard.ingress: '20T' exceeds the 10T"),
    ({"max": {"egress": "500"}}, "BandwidthPolicy ns/p: spec.max.egress: '500' is below 1k"),
])
def test_values_netsched_cannot_use_are_named(spec, message):
    with pytest.raises(InvalidPolicy, match=message.replace("(", r"\(").replace(")", r"\)")):
        parsed(**spec)


def test_defaults_fill_only_the_directions_left_unset():
    policies = [parsed(hard={"egress": "1G"}), parsed(default={"ingress": "10M", "egress": "20M"})]
    assert with_defaults(PodRequirements(), policies) == PodRequirements(ingress_bps=10_000_000, egress_bps=20_000_000)
    assert with_defaults(PodRequirements(egress_bps=5), policies) == PodRequirements(ingress_bps=10_000_000, egress_bps=5)
    asked = PodRequirements(ingress_bps=1, egress_bps=2)
    assert with_defaults(asked, policies) is asked
    assert with_defaults(PodRequirements(), [parsed(max={"egress": "1G"})]) == PodRequirements()


def test_totals_count_every_interface_and_only_asked_directions_meet_the_total():
    pod = PodRequirements(egress_bps=300, attachments=(AttachmentRequirement(network="s", interface="net1", egress_bps=700),))
    assert pod_totals(pod) == (0, 1000)
    policy = parsed(max={"egress": "1k"}, hard={"ingress": "0", "egress": "2k"})
    assert policy_problems(pod, [policy], used=(5_000, 1_000)) == []  # ingress full, but asks none
    assert policy_problems(pod, [policy], used=(0, 1_001)) == [
        "BandwidthPolicy ns/p: egress 1k used of 2k hard, asks 1k"]
    bigger = PodRequirements(egress_bps=1_500)
    assert policy_problems(bigger, [policy], used=(0, 0)) == [
        "BandwidthPolicy ns/p: egress 1.5k exceeds the per-pod maximum 1k"]


def test_a_default_in_one_direction_leaves_the_other_unasked():
    assert with_defaults(PodRequirements(), [parsed(default={"egress": "20M"})]) == PodRequirements(egress_bps=20_000_000)
    assert with_defaults(PodRequirements(), [parsed(default={"ingress": "20M"})]) == PodRequirements(ingress_bps=20_000_000)


def test_ingress_totals_count_the_attachments_too():
    pod = PodRequirements(ingress_bps=300, attachments=(
        AttachmentRequirement(network="s", interface="net1", ingress_bps=700),
        AttachmentRequirement(network="t", interface="net2", ingress_bps=1_000)))
    assert pod_totals(pod) == (2_000, 0)


def test_a_total_may_be_filled_exactly_and_not_beyond():
    pod = PodRequirements(egress_bps=1_000)
    assert policy_problems(pod, [parsed(hard={"egress": "2k"})], used=(0, 1_000)) == []
    assert policy_problems(pod, [parsed(hard={"egress": "2k"})], used=(0, 1_001)) == [
        "BandwidthPolicy ns/p: egress 1k used of 2k hard, asks 1k"]


def test_status_shows_the_totals_as_given_and_the_use_where_there_is_a_total():
    status = policy_status(policy(hard={"egress": "2Gi"}, max={"ingress": "1G"}), used=(300_000, 1_500_000_000))
    assert status.hard == DirectionalBandwidth(egress="2Gi")
    assert status.used == DirectionalBandwidth(egress="1.5G")
    nothing = policy_status(policy(default={"egress": "1M"}), used=(300_000, 0))
    assert (nothing.hard, nothing.used) == (DirectionalBandwidth(), DirectionalBandwidth())
