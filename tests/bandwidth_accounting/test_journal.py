"""The ledger's change journal: what a cache of fit answers reads to catch up."""

from bandwidth_accounting.journal import ChangeJournal
from bandwidth_accounting.ledger import Holding, Ledger
from contract.reservation import Rates, Reservation


def test_since_a_mark_gives_the_nodes_recorded_after_it():
    journal = ChangeJournal()
    journal.record("n1")
    mark = journal.mark
    journal.record("n2")
    journal.record("n2")
    journal.record("n3", timed=True)
    changes = journal.since(mark)
    assert changes.nodes == {"n2", "n3"} and changes.timed
    assert journal.since(changes.mark).nodes == set()
    journal.record("n4")
    later = journal.since(changes.mark)
    assert later.nodes == {"n4"} and not later.timed


def test_a_mark_older_than_what_is_kept_or_before_a_reset_cannot_catch_up():
    journal = ChangeJournal(kept=4)
    old = journal.mark
    for index in range(9):  # more than twice ``kept``: the oldest are dropped
        journal.record(f"n{index}")
    assert journal.since(old) is None
    recent = journal.mark
    journal.record("n9")
    assert journal.since(recent).nodes == {"n9"}
    journal.reset()
    assert journal.since(recent) is None
    assert journal.since(journal.mark).nodes == set()


def test_the_ledger_records_every_node_whose_budget_changes():
    ledger = Ledger()
    ledger.set_usable({("a", "eth0"): (100, 100), ("b", "eth0"): (100, 100)})
    mark = ledger.changes.mark
    ledger.record(Holding("p", "default/p", 0, Reservation(node="a", interfaces={"eth0": Rates(ingress=10, egress=0)})))
    assert ledger.changes.since(mark).nodes == {"a"}
    mark = ledger.changes.mark
    ledger.release("p")
    ledger.update_usable({("b", "eth0"): (50, 50)})
    changes = ledger.changes.since(mark)
    assert changes.nodes == {"a", "b"} and not changes.timed
    mark = ledger.changes.mark
    ledger.set_observed("b", 1.0, {"eth0": (5, 5)})
    assert ledger.changes.since(mark).timed
    ledger.set_usable({("a", "eth0"): (100, 100)})  # everything renumbered
    assert ledger.changes.since(mark) is None
