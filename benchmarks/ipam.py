"""A bind's address work on a busy network, by addresses in use: what each bind pays under
the ledger's lock for a pod asking an attachment on a network with a subnet.

On a /16 network holding N addresses (10.0.0.1 on, one pod each), per bind:

- *allocate*: ``ipam.allocate_address`` over the ledger's addresses in use (bisection);
- *walk* (the baseline, how allocation worked before): a copy of the addresses in use as a
  set, then the pool walked from its start past every address taken;
- *reserve + release*: the ledger taking the new address and giving it back (its ordered
  list of addresses kept up to date);
- *low address again*: the lowest address released and reserved again, the longest move
  of that ordered list.

    .venv/bin/python benchmarks/ipam.py [--sizes 1000 10000 60000] [--repeat 200]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ipaddress

from extender_inprocess import machine, microseconds

from bandwidth_accounting.ipam import allocate_address, pool
from bandwidth_accounting.ledger import Ledger
from contract.objects import NetworkSpec
from contract.reservation import AttachmentReservation, Reservation

NETWORK = "storage"
SPEC = NetworkSpec.model_validate({"mode": "macvlan", "subnet": "10.0.0.0/16", "gateway": "10.0.255.254"})


def reservation(address: int) -> Reservation:
    ip = f"{ipaddress.IPv4Address(address)}/16"
    return Reservation(node="n", attachments=[AttachmentReservation(
        network=NETWORK, interface="net1", mode="macvlan", parent="eth1", ip=ip, mac="02:00:00:00:00:01",
    )])


def walk(spec: NetworkSpec, ledger: Ledger) -> str:
    """Allocation as it was: the addresses in use copied to a set, the pool walked past them."""
    assert spec.subnet is not None and spec.gateway is not None
    taken = set(ledger.addresses_in_use(NETWORK)) | {int(spec.gateway)}
    address_type = type(spec.subnet.network_address)
    for candidate in pool(spec):
        if candidate not in taken:
            return f"{address_type(candidate)}/{spec.subnet.prefixlen}"
    raise RuntimeError("pool exhausted")


def measure(size: int, repeat: int) -> dict[str, float]:
    ledger = Ledger()
    ledger.set_usable({("n", "eth1"): (0, 0)})
    first = next(iter(pool(SPEC)))
    for index in range(size):
        ledger.reserve(f"pod-{index}", f"default/pod-{index}", 0, reservation(first + index))
    assert allocate_address(SPEC, ledger.addresses_in_use(NETWORK)) == walk(SPEC, ledger)
    following = reservation(first + size)

    def reserve_release() -> None:
        ledger.reserve("new", "default/new", 0, following)
        ledger.release("new")

    lowest = ledger.release("pod-0")
    assert lowest is not None

    def low_again() -> None:
        ledger.reserve("pod-0", "default/pod-0", 0, lowest.reservation)
        ledger.release("pod-0")

    return {
        "allocate": microseconds(lambda: allocate_address(SPEC, ledger.addresses_in_use(NETWORK)), repeat),
        "walk": microseconds(lambda: walk(SPEC, ledger), max(repeat // 10, 5)),
        "reserve + release": microseconds(reserve_release, repeat),
        "low address again": microseconds(low_again, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 60000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print("| addresses in use | allocate (µs) | walk, before (µs) | reserve + release (µs) | low address again (µs) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        row = measure(size, args.repeat)
        print(f"| {size:,} | {row['allocate']:.1f} | {row['walk']:.1f} | {row['reserve + release']:.1f} "
              f"| {row['low address again']:.1f} |")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
