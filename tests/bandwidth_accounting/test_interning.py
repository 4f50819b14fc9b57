from bandwidth_accounting.interning import Interning
from contract.reservation import Rates


def test_equal_values_get_the_first_object_and_other_values_their_own():
    rates = Interning[Rates]()
    first = Rates(ingress=1, egress=2)
    assert rates.of(first) is first
    assert rates.of(Rates(ingress=1, egress=2)) is first
    other = Rates(ingress=2, egress=1)
    assert rates.of(other) is other
    assert len(rates) == 2


def test_past_its_size_the_table_starts_over_and_what_it_handed_out_stays():
    """Values that come and go (nodes' names in pods' specs) cannot grow it without bound."""
    rates = Interning[Rates](size=3)
    handed = [rates.of(Rates(egress=egress)) for egress in range(10)]
    assert len(rates) <= 3
    assert [r.egress for r in handed] == list(range(10))
    again = rates.of(Rates(egress=9))
    assert again is handed[9]  # still held: the table started over before it
    assert rates.of(Rates(egress=0)) is not handed[0]  # dropped at a start-over: a new object
