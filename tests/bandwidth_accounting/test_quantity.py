import pytest

from contract.quantity import MAX_BPS, QuantityError, format_bandwidth, parse_bandwidth
from contract.rates import MIN_RATE_BPS


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("100M", 100_000_000), ("1G", 1_000_000_000), ("1500k", 1_500_000), ("1Gi", 2**30),
        ("10Mi", 10 * 2**20), ("1e9", 10**9), ("2.5G", 2_500_000_000), ("+5M", 5_000_000),
        ("1000", 1000), ("1.5k", 1500), (" 100M ", 100_000_000), ("1T", 10**12), (2500, 2500),
    ],
)
def test_parses_kubernetes_quantities_as_bits_per_second(text, bps):
    assert parse_bandwidth(text) == bps


def test_fractions_of_a_bit_round_up():
    assert parse_bandwidth("1000.5") == 1001


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("-5M", "must be a positive rate"), ("0", "must be a positive rate"), ("0M", "positive"),
        ("abc", "is not a Kubernetes quantity"), ("100MB", "is not a Kubernetes quantity"),
        ("1.2.3G", "is not a Kubernetes quantity"), ("", "is not a Kubernetes quantity"),
        ("100m", "below 1k"), ("999", "below 1k"), ("0.5k", "below 1k"), ("7", "below 1k"), ("1E", "exceeds the 10T"), ("20T", "exceeds the 10T"),
        ("1e400", "exceeds the 10T"), ("1e4000", "is not a Kubernetes quantity"),
    ],
)
def test_refuses_unusable_rates_with_the_value_in_the_message(text, says):
    with pytest.raises(QuantityError) as error:
        parse_bandwidth(text)
    assert says in str(error.value)
    assert repr(text) in str(error.value)


def test_limits_are_inclusive():
    assert parse_bandwidth("10T") == MAX_BPS
    assert parse_bandwidth("1k") == MIN_RATE_BPS


def test_booleans_are_not_rates():
    with pytest.raises(QuantityError):
        parse_bandwidth(True)


@pytest.mark.parametrize(("bps", "text"), [(9.2e9, "9.2G"), (5e8, "500M"), (1500, "1.5k"), (12, "12")])
def test_formats_rates_for_people(bps, text):
    assert format_bandwidth(bps) == text
