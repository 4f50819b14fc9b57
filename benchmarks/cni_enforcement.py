"""CNI enforcement: the reference ``bandwidth`` plugin and netsched-cni side by side.

Both run in one process run, at the same rates, on the same kernel, chained after the
reference ``bridge`` + ``host-local`` by the tests' runtime (tests/cni/runner.py):

- achieved/reserved: TCP goodput (iperf3, receiver side, first second omitted) / rate
- wire ratio: goodput × 1514/1448 / rate (TCP at MTU 1500: 1448 payload bytes per
  1514-byte frame as tc counts it), so 1.000 means the shaper delivers exactly the rate
- ping RTT under saturating load (median and p90 of 10 pings/s through the shaped queue),
  with cubic and with BBR, and with containerd's burst (2^32-1 bits)
- ADD and DEL time of the whole chain (p50), runner included, netsched-cni run both
  in-process and as the thin client of its node daemon

Run as root: ``.venv/bin/python benchmarks/cni_enforcement.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cni.lab import Lab, ipv4_of
from tests.cni.runner import Daemon, PluginError, Runtime, lab_conflist, running_daemon
from tests.cni.topologies import MBIT, Node, switched_nodes

SHAPERS = ("bandwidth", "netsched-cni")
WIRE = 1514 / 1448
CONTAINERD_BURST = 2**32 - 1


def default_burst(rate: int) -> int:
    """The burst both plugins get in the ordinary runs: 2 ms at the rate, two frames at least."""
    return max(rate // 500, 2 * 1514 * 8)


def pod_pair(node: Node, shaper: str, rate: int, direction: str, burst: int) -> tuple[str, str]:
    runtime = node.runtime(shaper=shaper)
    server, _, _ = node.pod(runtime)
    shaped, _, _ = node.pod(runtime, runtime_config={"bandwidth": {
        f"{direction}Rate": rate, f"{direction}Burst": burst}})
    return server, shaped


def loaded_run(lab: Lab, server: str, shaped: str, direction: str, congestion: str,
               seconds: int) -> tuple[float, list[float]]:
    """(goodput bits/s, RTTs in ms of pings crossing the shaped queue during the run)."""
    server_ip, shaped_ip = ipv4_of(server, "eth0"), ipv4_of(shaped, "eth0")
    # egress: the shaped pod's pings leave through its egress queue; ingress: the server's
    # pings enter the shaped pod through its ingress queue
    pinger, target = (shaped, server_ip) if direction == "egress" else (server, shaped_ip)
    ping = subprocess.Popen(["ip", "netns", "exec", pinger, "ping", "-n", "-i", "0.1", "-W", "5",
                             "-c", str(10 * (seconds + 1)), target],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        run = lab.iperf(server, server_ip, shaped, reverse=direction == "ingress",
                        seconds=seconds, omit=1, congestion=congestion)
    finally:
        ping.terminate()
        out = ping.communicate()[0]
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    return Lab.goodput(run), rtts[10:] or rtts  # the first second is ramp-up, as for iperf


def chain_times(lab: Lab, node: Node, shaper: str, rounds: int,
                daemon: Daemon | None = None) -> dict[str, float]:
    """p50 of ADD and DEL: wall time, and CPU time (user+sys) of the plugin processes
    (and of the node daemon, when netsched-cni forwards to one)."""
    runtime = node.runtime(shaper=shaper,
                           extra={"socket": str(daemon.socket_path)} if daemon else None)

    def cpu_used() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return children.ru_utime + children.ru_stime + (daemon.cpu_seconds() if daemon else 0)
    samples: dict[str, list[float]] = {"add": [], "del": [], "add_cpu": [], "del_cpu": []}
    config = {"bandwidth": {"ingressRate": 100 * MBIT, "egressRate": 100 * MBIT,
                            "ingressBurst": default_burst(100 * MBIT),
                            "egressBurst": default_burst(100 * MBIT)}}

    def timed(verb: str, call) -> None:
        cpu = cpu_used()
        start = time.perf_counter()
        call()
        samples[verb].append(time.perf_counter() - start)
        samples[f"{verb}_cpu"].append(cpu_used() - cpu)

    for round_ in range(rounds):
        pod = lab.netns("pd")
        cid = f"t{round_}{shaper[:4]}"
        timed("add", partial(runtime.add, cid, lab.path(pod), runtime_config=config))
        timed("del", partial(runtime.delete, cid, lab.path(pod)))
        subprocess.run(["ip", "netns", "del", pod], check=False)
        lab.namespaces.remove(pod)
    return {key: statistics.median(values) * 1000 for key, values in samples.items()}


def outcome(call) -> str:
    try:
        call()
    except PluginError as exc:
        first_line = str(exc.error.get("msg", "")).splitlines()[0] if exc.error.get("msg") else ""
        crashed = "panic:" in exc.stderr or "goroutine" in exc.stderr
        return ("crash (Go panic)" if crashed else f"error {exc.code}: {first_line}")[:90]
    return "ok"


def reference_gaps(lab: Lab, node: Node) -> None:
    """The cases where the reference breaks, run against both plugins."""
    print("\n| case | bandwidth (reference) | netsched-cni |")
    print("|---|---|---|")
    rates = {"bandwidth": {"ingressRate": 10 * MBIT, "ingressBurst": default_burst(10 * MBIT),
                           "egressRate": 10 * MBIT, "egressBurst": default_burst(10 * MBIT)}}
    cells = []
    for shaper in SHAPERS:
        base = lab_conflist(lab.name("cb"), "10.56.0.0/24", lab.workdir / lab.name("w"),
                            shaper=shaper)
        main = {"type": "macvlan", "master": node.uplink, "mode": "bridge", "ipam": {
            "type": "host-local", "ranges": [[{"subnet": "10.55.0.0/24"}]],
            "dataDir": str(lab.workdir / lab.name("ipam"))}}
        runtime = Runtime({**base, "plugins": [main, base["plugins"][1]]}, node.netns)
        pod = lab.netns("pd")
        cells.append(outcome(partial(runtime.add, f"mv{shaper[:4]}", lab.path(pod),
                                     runtime_config=rates)))
    print(f"| main plugin macvlan, 10 Mbit/s both ways | {cells[0]} | {cells[1]} |")
    cells = []
    for shaper in SHAPERS:
        runtime = node.runtime(shaper=shaper)
        pod, cid, _ = node.pod(runtime)
        cells.append(outcome(partial(runtime.check, cid, lab.path(pod))))
    print(f"| CHECK of a pod without limits | {cells[0]} | {cells[1]} |", flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rates, shorter runs")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--chain-only", action="store_true", help="only ADD/DEL times")
    args = parser.parse_args()
    rates = [10 * MBIT, 100 * MBIT, 1000 * MBIT] if args.quick else \
        [10 * MBIT, 50 * MBIT, 100 * MBIT, 1000 * MBIT, 5000 * MBIT]
    print(f"machine: nproc {os.cpu_count()}, kernel {platform.release()}, "
          f"python {platform.python_version()}")
    lab = Lab(Path(tempfile.mkdtemp(prefix="cni-bench-")))
    try:
        (node,) = switched_nodes(lab, 1)
        reference_gaps(lab, node)
        if args.chain_only:
            rates = []
        print("\n| rate | direction | plugin | achieved/reserved | wire ratio | ping p50/p90 "
              "cubic (ms) | wire ratio BBR | ping p50/p90 BBR (ms) | ping p50/p90 cubic, "
              "containerd burst (ms) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for rate in rates:
            for direction in ("egress", "ingress"):
                for shaper in SHAPERS:
                    server, shaped = pod_pair(node, shaper, rate, direction, default_burst(rate))
                    cubic, cubic_rtt = loaded_run(lab, server, shaped, direction, "cubic",
                                                  args.seconds)
                    bbr, bbr_rtt = loaded_run(lab, server, shaped, direction, "bbr", args.seconds)
                    server2, shaped2 = pod_pair(node, shaper, rate, direction, CONTAINERD_BURST)
                    _, burst_rtt = loaded_run(lab, server2, shaped2, direction, "cubic",
                                              args.seconds)
                    print(f"| {rate // MBIT} Mbit/s | {direction} | {shaper} | "
                          f"{cubic / rate:.3f} | {cubic * WIRE / rate:.3f} | "
                          f"{pct(cubic_rtt, .5):.1f} / {pct(cubic_rtt, .9):.1f} | "
                          f"{bbr * WIRE / rate:.3f} | "
                          f"{pct(bbr_rtt, .5):.1f} / {pct(bbr_rtt, .9):.1f} | "
                          f"{pct(burst_rtt, .5):.1f} / {pct(burst_rtt, .9):.1f} |", flush=True)
        print("\n| chain | ADD p50 wall (ms) | ADD p50 CPU (ms) | DEL p50 wall (ms) | "
              "DEL p50 CPU (ms) |")
        print("|---|---|---|---|---|")
        with running_daemon(node.netns, lab.workdir / "run" / "cni.sock") as daemon:
            chains = [("bandwidth", None), ("netsched-cni", None), ("netsched-cni", daemon)]
            for shaper, through in chains:
                t = chain_times(lab, node, shaper, rounds=15, daemon=through)
                name = f"{shaper} (node daemon)" if through else shaper
                print(f"| bridge + host-local + {name} | {t['add']:.0f} | {t['add_cpu']:.0f} | "
                      f"{t['del']:.0f} | {t['del_cpu']:.0f} |", flush=True)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
