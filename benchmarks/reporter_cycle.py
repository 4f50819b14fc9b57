"""CPU time of one node-reporter cycle on a node with 200 interfaces.

Builds a network namespace holding 100 veth pairs (200 reported interfaces; this
kernel has no dummy links), then times ``Reporter.cycle()`` with
``time.process_time()`` (this process's CPU, user + system, all threads), side by side:
the steady state (ethtool speeds cached while a link's name and oper state hold), every
speed queried from ethtool (a first cycle, or all links changed state), and speeds set
in the configuration (no ethtool at all). The namespace is removed at the end.

    sudo .venv/bin/python benchmarks/reporter_cycle.py [--interfaces 200] [--cycles 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import subprocess
import time

from node_reporter.config import ReporterConfig
from node_reporter.netlink import NetlinkSource
from node_reporter.report import Reporter


def build(netns: str, interfaces: int) -> None:
    commands = []
    for pair in range(interfaces // 2):
        commands.append(f"link add up{pair:04d} type veth peer name dn{pair:04d}")
        commands.append(f"link set up{pair:04d} up")
        commands.append(f"link set dn{pair:04d} up")
        commands.append(f"address add 10.{pair // 250}.{pair % 250}.1/24 dev up{pair:04d}")
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"],
        input="\n".join(commands) + "\n",
        check=True,
        text=True,
        capture_output=True,
    )


def measure(
    config: ReporterConfig, cycles: int, cold_speeds: bool
) -> tuple[list[float], list[float], int]:
    cpu, wall = [], []
    with NetlinkSource(config.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        reporter.cycle()  # warm-up: sockets opened, ethtool family resolved
        count = 0
        for _ in range(cycles):
            if cold_speeds:
                reporter.forget_speeds()
            c0, w0 = time.process_time(), time.perf_counter()
            report = reporter.cycle()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            count = len(report.status.interfaces)
    return cpu, wall, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interfaces", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=30)
    args = parser.parse_args()
    netns = f"bench{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        build(netns, args.interfaces)
        variants = {
            "steady state (speeds cached)": (ReporterConfig(netns=netns), False),
            "every speed from ethtool": (ReporterConfig(netns=netns), True),
            "speeds from config": (
                ReporterConfig.model_validate(
                    {"netns": netns, "interfaces": [{"name": "*", "speedMbps": 10000}]}
                ),
                False,
            ),
        }
        print(
            f"machine: {os.cpu_count()} CPUs, kernel {platform.release()}, Python {platform.python_version()}"
        )
        print(f"{args.cycles} cycles each, {args.interfaces} veth interfaces in one namespace\n")
        print("| variant | interfaces | CPU ms / cycle (mean) | median | max | wall ms (mean) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, (config, cold_speeds) in variants.items():
            cpu, wall, count = measure(config, args.cycles, cold_speeds)
            print(
                f"| {name} | {count} | {statistics.mean(cpu) * 1e3:.1f} | "
                f"{statistics.median(cpu) * 1e3:.1f} | {max(cpu) * 1e3:.1f} | {statistics.mean(wall) * 1e3:.1f} |"
            )
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
