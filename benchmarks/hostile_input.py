"""Worst-case parse time of hostile annotations, beside the quantity parser it replaced.

For each annotation netsched reads, several values built to be expensive are timed
through ``parse_requirements`` (the extender's path): values at the annotation's size
cap (the largest that is parsed at all) and a 1 MB value (refused by the cap before
parsing). The baseline is the previous quantity expression, ``\\d+\\.?\\d*`` and so on,
whose failing match backtracks quadratically; it is timed on digit strings of growing
length beside the current expression on the same strings, uncapped, to show that the
current one is linear even before the cap.

    .venv/bin/python benchmarks/hostile_input.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Callable

from bandwidth_accounting.requirements import InvalidAnnotation, parse_requirements
from contract import annotations as ann
from contract.quantity import _QUANTITY

PREVIOUS_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])|[eE](?P<exponent>[+-]?\d{1,3}))?$"
)
"""The quantity expression before the change (baseline)."""


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds: the machine is shared, noise only adds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def parse(values: dict[str, str]) -> str:
    try:
        parse_requirements(values)
        return "accepted"
    except InvalidAnnotation as error:
        return "refused: " + error.reason[:48]


def hostile_values() -> list[tuple[str, str, str]]:
    cap = ann.MAX_LENGTH
    entry = {"name": "n", "interface": "x", "ingress": "1G", "egress": "1G",
             "ip": "10.0.0.1/24", "mac": "02:00:00:00:00:01"}
    sixteen = [dict(entry, name=f"net-{i}", interface=f"if{i}") for i in range(ann.MAX_ATTACHMENTS)]
    padded = json.dumps(sixteen)
    padded = padded[:-1] + " " * (cap[ann.NETWORKS] - len(padded)) + "]"
    return [
        (ann.EGRESS_BANDWIDTH, "digits then x, at the cap", "1" * (cap[ann.EGRESS_BANDWIDTH] - 1) + "x"),
        (ann.EGRESS_BANDWIDTH, "digits then x, 1 MB", "1" * 1_000_000 + "x"),
        (ann.NETWORKS, "'[' at the cap", "[" * cap[ann.NETWORKS]),
        (ann.NETWORKS, "16 full attachments padded to the cap", padded),
        (ann.NETWORKS, "'a,' at the cap", "a," * (cap[ann.NETWORKS] // 2)),
        (ann.NETWORKS, "'[' x 1 MB", "[" * 1_000_000),
        (ann.PEERS, "'a=b,' at the cap", ("a=b," * (cap[ann.PEERS] // 4))[:-1]),
        (ann.PEERS, "one long key at the cap", "a" * cap[ann.PEERS]),
        (ann.PEERS, "1 MB", "a=b," * 250_000),
        (ann.PLACEMENT, "1 MB", "s" * 1_000_000),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, best of {args.repeat}")
    print("\n## Annotations through parse_requirements\n")
    print("| annotation | value | length | outcome | time |")
    print("| --- | --- | ---: | --- | ---: |")
    for name, what, value in hostile_values():
        outcome = parse({name: value})
        seconds = best_of(args.repeat, lambda: parse({name: value}))
        print(f"| `{name}` | {what} | {len(value):,} | {outcome} | {seconds * 1e3:.3f} ms |")

    print("\n## The quantity expression: previous (baseline) and current, uncapped, on '1' x n + 'x'\n")
    print("| n | previous | current |")
    print("| ---: | ---: | ---: |")
    for n in (1_000, 2_000, 4_000, 8_000, 16_000):
        text = "1" * n + "x"
        previous = best_of(max(1, args.repeat // 2), lambda: PREVIOUS_QUANTITY.match(text))
        current = best_of(args.repeat, lambda: _QUANTITY.fullmatch(text))
        print(f"| {n:,} | {previous * 1e3:,.1f} ms | {current * 1e3:.3f} ms |")


if __name__ == "__main__":
    main()
