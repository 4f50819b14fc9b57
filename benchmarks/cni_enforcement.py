"""CNI enforcement: the reference ``bandwidth`` plugin and netsched-cni side by side.

Both run in one process run, at the same rates, on the same kernel, chained after the
reference ``bridge`` + ``host-local`` by the tests' runtime (tests/cni/runner.py):

- achieved/reserved: TCP goodput (iperf3, receiver side, first second omitted) / rate
- wire ratio: goodput × 1514/1448 / rate (TCP at MTU 1500: 1448 payload bytes per
  1514-byte frame as tc counts it), so 1.000 means the shaper delivers exactly the rate
- ping RTT under saturating load (median and p90 of 10 pings/s through the shaped queue),
  with cubic and with BBR, and with containerd's burst (2^32-1 bits)
- ADD and DEL time of the whole chain (p50, p90, CPU), runner included, interleaved
  round by round: bridge + host-local alone (the baseline each overhead is taken
  from), with the reference plugin, and with netsched-cni in-process and as the thin
  client of its node daemon, Python's and the native one (``make cni-client``)
- each thin client's own start-to-exit: VERSION (answered locally) and a DEL the warm
  daemon answers at once (a container it never saw)
- the node daemon's memory: RSS idle, then after each step of 1,000 ADD/DEL pairs
  through the native client
- the first ADD after the daemon starts beside the ADDs that follow it (kubeconfig mode,
  a pod with a reservation, the API a small server on the node's loopback), over several
  starts: the daemon's own time per ADD (its log) and the whole chain's
- bursts: 40 and 200 thin-client processes started at once (STATUS, which the daemon
  answers and no client can hand off), each client: how many got the daemon's answer

Run as root: ``.venv/bin/python benchmarks/cni_enforcement.py [--quick] [--chain-only]
[--startup-only] [--clients-only]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cni.install import CLIENT_BUILD
from contract.annotations import RESERVATION
from contract.reservation import Rates, Reservation
from tests.cni.lab import Lab, ipv4_of
from tests.cni.pod_api import PodAPI, pod_json
from tests.cni.runner import (
    REFERENCE_PLUGINS,
    THIN_CLIENTS,
    Daemon,
    PluginError,
    Runtime,
    client_dir,
    lab_conflist,
    running_daemon,
)
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


CHAIN_CONFIG = {"bandwidth": {"ingressRate": 100 * MBIT, "egressRate": 100 * MBIT,
                               "ingressBurst": default_burst(100 * MBIT),
                               "egressBurst": default_burst(100 * MBIT)}}


def chains(node: Node, daemon: Daemon) -> dict[str, Runtime]:
    """The chains compared, by the name printed: the first is the baseline."""
    socket_conf = {"socket": str(daemon.socket_path)}
    reference = node.runtime(shaper="bandwidth")
    return {
        "bridge + host-local": Runtime({**reference.conflist,
                                        "plugins": reference.conflist["plugins"][:1]},
                                       node.netns),
        "+ bandwidth (reference)": reference,
        "+ netsched-cni in-process": node.runtime(),
        "+ netsched-cni, daemon, Python client": node.runtime(extra=socket_conf),
        "+ netsched-cni, daemon, native client": node.runtime(extra=socket_conf,
                                                              client="native"),
    }


def chain_times(lab: Lab, runtimes: dict[str, Runtime], daemon: Daemon, rounds: int
                ) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU milliseconds of each chain's ADD and DEL, one pod per chain a round.

    The chains take turns within every round, so load from other work on the machine
    falls on all of them alike. CPU is the plugin processes' user + system time plus the
    node daemon's (its work is not a child's; it is idle while other chains run).
    """
    def cpu_used() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return children.ru_utime + children.ru_stime + daemon.cpu_seconds()

    samples = {name: {"add": [], "del": [], "add_cpu": [], "del_cpu": []} for name in runtimes}

    def timed(name: str, verb: str, call) -> None:
        cpu = cpu_used()
        start = time.perf_counter()
        call()
        samples[name][verb].append((time.perf_counter() - start) * 1000)
        samples[name][f"{verb}_cpu"].append((cpu_used() - cpu) * 1000)

    for round_ in range(rounds):
        for index, (name, runtime) in enumerate(runtimes.items()):
            pod = lab.netns("pd")
            cid = f"t{round_}c{index}"
            timed(name, "add", partial(runtime.add, cid, lab.path(pod),
                                       runtime_config=CHAIN_CONFIG))
            timed(name, "del", partial(runtime.delete, cid, lab.path(pod)))
            subprocess.run(["ip", "netns", "del", pod], check=False)
            lab.namespaces.remove(pod)
    return samples


def daemon_add_times(log: str, names: list[str]) -> dict[str, list[float]]:
    """The daemon's own time for each chain's ADDs, from its log lines (the container ids
    chain_times gives: t<round>c<chain>)."""
    found: dict[str, list[float]] = {name: [] for name in names}
    for index, ms in re.findall(r"ADD t\d+c(\d+) eth0: exit 0 in ([\d.]+) ms", log):
        found[names[int(index)]].append(float(ms))
    return found


def print_chain_times(samples: dict[str, dict[str, list[float]]],
                      daemon_add: dict[str, list[float]]) -> None:
    baseline = samples[next(iter(samples))]["add"]
    print("\n| chain | ADD p50 (ms) | ADD p90 (ms) | ADD p50 over bridge alone (ms) | "
          "ADD p90 over bridge alone (ms) | ADD CPU p50 (ms) | daemon's own ADD p50 (ms) | "
          "DEL p50 (ms) | DEL CPU p50 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in samples.items():
        over50 = pct(t["add"], .5) - pct(baseline, .5)
        over90 = pct(t["add"], .9) - pct(baseline, .9)
        own = f"{pct(daemon_add[name], .5):.1f}" if daemon_add[name] else "-"
        print(f"| {name} | {pct(t['add'], .5):.1f} | {pct(t['add'], .9):.1f} | {over50:+.1f} | "
              f"{over90:+.1f} | {pct(t['add_cpu'], .5):.1f} | {own} | {pct(t['del'], .5):.1f} | "
              f"{pct(t['del_cpu'], .5):.1f} |", flush=True)


def client_start_to_exit(daemon: Daemon, state_dir: Path, rounds: int) -> None:
    """Each thin client alone, spawned and waited for as a runtime does, taking turns.

    VERSION is answered by the client without the daemon: pure start-up. DEL of a
    container the daemon never saw goes the whole way (connect, request, the daemon's
    lookup in its state dir, reply) with no netlink work at the far end. The reference
    plugin's VERSION is a Go program's start-up; ``/bin/true`` and a static C program
    that only exits, built as the client is (``cc -static -O2``), are the floor: the
    spawn and wait of this harness. CPU is the process's own user + system time
    (rusage), which the machine's load inflates far less than the wall time.
    """
    floor = state_dir.parent / "exit-only"
    floor.with_suffix(".c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["cc", "-static", "-O2", "-s", "-o", str(floor), str(floor.with_suffix(".c"))],
                   check=True)
    conf = {"cniVersion": "1.0.0", "name": "bench", "type": "netsched-cni",
            "stateDir": str(state_dir), "socket": str(daemon.socket_path)}
    stdin = json.dumps(conf).encode()
    calls = {"VERSION": {"CNI_COMMAND": "VERSION"},
             "DEL, warm daemon": {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "never-added",
                                  "CNI_NETNS": "", "CNI_IFNAME": "eth0", "CNI_PATH": "/"}}
    runs = [(client, verb, str(client_dir(client) / "netsched-cni"))
            for client in THIN_CLIENTS for verb in calls]
    runs += [("reference bandwidth (Go)", "VERSION", str(REFERENCE_PLUGINS / "bandwidth")),
             ("floor: /bin/true", "-", "/bin/true"),  # the spawn and wait of this harness
             ("floor: static C, exits", "-", str(floor))]
    wall: dict[tuple[str, str, str], list[float]] = {run: [] for run in runs}
    cpu: dict[tuple[str, str, str], list[float]] = {run: [] for run in runs}

    def children_cpu() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    order = random.Random(16)
    for _ in range(rounds):  # in a new order each round: what runs after what varies alike
        for run in order.sample(runs, len(runs)):
            client, verb, program = run
            before, start = children_cpu(), time.perf_counter()
            done = subprocess.run([program], input=stdin, env=calls.get(verb, {}),
                                  capture_output=True, check=False)
            wall[run].append((time.perf_counter() - start) * 1000)
            cpu[run].append((children_cpu() - before) * 1000)
            assert done.returncode == 0, (client, verb, done.stdout, done.stderr)
    print("\n| thin client | call | start-to-exit p50 (ms) | p90 (ms) | min (ms) | "
          "its CPU p50 (ms) |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        client, verb, _ = run
        print(f"| {client} | {verb} | {pct(wall[run], .5):.2f} | {pct(wall[run], .9):.2f} | "
              f"{min(wall[run]):.2f} | {pct(cpu[run], .5):.2f} |", flush=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def daemon_memory(lab: Lab, node: Node, pairs: int) -> None:
    """A fresh daemon's RSS idle, then after each step of ``pairs`` ADD/DEL pairs (the
    whole chain through the native client, one pod namespace reused) and its fds."""
    print("\n| ADD/DEL pairs done | daemon RSS (MiB) | open fds |")
    print("|---|---|---|")
    with running_daemon(node.netns, lab.workdir / "mem" / "cni.sock",
                        log=subprocess.DEVNULL) as daemon:
        runtime = node.runtime(extra={"socket": str(daemon.socket_path)}, client="native")
        pod = lab.netns("pd")
        pid = daemon.process.pid
        checkpoints = sorted({n for n in (0, 1, 10, 100, 1000) if n <= pairs} | {pairs // 2, pairs})
        for done in range(pairs + 1):
            if done in checkpoints:
                fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
                print(f"| {done:,} | {rss_kib(pid) / 1024:.1f} | {fds} |", flush=True)
            if done < pairs:
                runtime.add(f"mem{done}", lab.path(pod), runtime_config=CHAIN_CONFIG)
                runtime.delete(f"mem{done}", lab.path(pod))


def first_add_after_start(lab: Lab, node: Node, starts: int, following: int = 5) -> None:
    """The daemon's time for the first ADD after each start and for the ``following`` ones."""
    reservation = Reservation(node="bench-node", primary=Rates(ingress=50 * MBIT,
                                                               egress=20 * MBIT))
    daemon_ms: dict[str, list[float]] = {"first": [], "following": []}
    chain_ms: dict[str, list[float]] = {"first": [], "following": []}
    with PodAPI(netns=node.netns) as api:
        kubeconfig = str(api.kubeconfig(lab.workdir / "bench.kubeconfig"))
        for start in range(starts):
            path = lab.workdir / f"start{start}" / "cni.sock"
            with running_daemon(node.netns, path, node_name="bench-node") as daemon:
                runtime = node.runtime(extra={"socket": str(path), "kubeconfig": kubeconfig})
                for index in range(1 + following):
                    name = f"s{start}p{index}"
                    api.pods[("bench", name)] = pod_json(
                        "bench", name, {RESERVATION: reservation.model_dump_json()},
                        node="bench-node")
                    pod = lab.netns("pd")
                    began = time.perf_counter()
                    runtime.add(name, lab.path(pod),
                                args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={name}")
                    chain_ms["following" if index else "first"].append(
                        (time.perf_counter() - began) * 1000)
                    runtime.delete(name, lab.path(pod))
                    subprocess.run(["ip", "netns", "del", pod], check=False)
                    lab.namespaces.remove(pod)
            log = daemon.process.stderr.read()
            times = [float(t) for t in re.findall(r"ADD \S+ eth0: exit 0 in ([\d.]+) ms", log)]
            daemon_ms["first"].append(times[0])
            daemon_ms["following"].extend(times[1:])
    print("\n| kubeconfig-mode ADD | daemon's time p50 (ms) | max (ms) | whole chain p50 (ms) | "
          "samples |")
    print("|---|---|---|---|---|")
    for which in ("first", "following"):
        label = "first after start" if which == "first" else f"the {following} after it"
        print(f"| {label} | {pct(daemon_ms[which], .5):.1f} | {max(daemon_ms[which]):.1f} | "
              f"{pct(chain_ms[which], .5):.1f} | {len(daemon_ms[which])} |", flush=True)


def bursts(lab: Lab, daemon: Daemon, sizes: tuple[int, ...] = (40, 200)) -> None:
    """``size`` thin-client processes at once, each client; how many the daemon answered."""
    stdin = lab.workdir / "burst.json"
    stdin.write_text(json.dumps({"cniVersion": "1.1.0", "name": "burst", "type": "netsched-cni",
                                 "stateDir": str(lab.workdir / "burst-state"),
                                 "socket": str(daemon.socket_path)}))
    print("\n| thin client | calls at once | answered by the daemon | error 11 | other errors | "
          "wall, first start to last exit (ms) |")
    print("|---|---|---|---|---|---|")
    for client in THIN_CLIENTS:
        for size in sizes:
            began = time.perf_counter()
            processes = []
            for _ in range(size):
                with stdin.open("rb") as source:
                    processes.append(subprocess.Popen(
                        [str(client_dir(client) / "netsched-cni")], stdin=source,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        env={"CNI_COMMAND": "STATUS"}))
            answers = [(p.wait(120), p.stdout.read()) for p in processes]
            wall = (time.perf_counter() - began) * 1000
            ok = sum(1 for answer in answers if answer == (0, b""))
            eleven = sum(1 for code, out in answers if code and b'"code": 11' in out)
            print(f"| {client} | {size} | {ok} | {eleven} | {size - ok - eleven} | {wall:.0f} |",
                  flush=True)


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
    parser.add_argument("--chain-only", action="store_true",
                        help="no enforcement runs: ADD/DEL times, clients, daemon memory")
    parser.add_argument("--rounds", type=int, default=30, help="pods per chain (default 30)")
    parser.add_argument("--startup-only", action="store_true",
                        help="only the bursts and the first ADD after the daemon starts")
    parser.add_argument("--clients-only", action="store_true",
                        help="only each thin client's start-to-exit beside the floors")
    parser.add_argument("--starts", type=int, default=5,
                        help="daemon starts for the first-ADD measurement (default 5)")
    parser.add_argument("--client-rounds", type=int, default=100,
                        help="runs of each thin client alone (default 100)")
    parser.add_argument("--pairs", type=int, default=1000,
                        help="ADD/DEL pairs for the daemon's memory (default 1000, 0: skip)")
    args = parser.parse_args()
    if not CLIENT_BUILD.is_file():
        sys.exit(f"no native client at {CLIENT_BUILD}: run `make cni-client` first")
    rates = [10 * MBIT, 100 * MBIT, 1000 * MBIT] if args.quick else \
        [10 * MBIT, 50 * MBIT, 100 * MBIT, 1000 * MBIT, 5000 * MBIT]
    print(f"machine: nproc {os.cpu_count()}, kernel {platform.release()}, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    lab = Lab(Path(tempfile.mkdtemp(prefix="cni-bench-")))
    try:
        (node,) = switched_nodes(lab, 1)
        if args.clients_only:
            with running_daemon(node.netns, lab.workdir / "run" / "cni.sock",
                                log=subprocess.DEVNULL) as daemon:
                client_start_to_exit(daemon, lab.workdir / "client-state", args.client_rounds)
            print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
            return
        if args.startup_only:
            with running_daemon(node.netns, lab.workdir / "run" / "cni.sock",
                                log=subprocess.DEVNULL) as daemon:
                bursts(lab, daemon)
            first_add_after_start(lab, node, args.starts)
            return
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
        log_path = lab.workdir / "daemon.log"
        with log_path.open("w") as log, \
                running_daemon(node.netns, lab.workdir / "run" / "cni.sock", log=log) as daemon:
            runtimes = chains(node, daemon)
            samples = chain_times(lab, runtimes, daemon, args.rounds)
            print_chain_times(samples, daemon_add_times(log_path.read_text(), list(runtimes)))
            client_start_to_exit(daemon, lab.workdir / "client-state", args.client_rounds)
            bursts(lab, daemon)
        first_add_after_start(lab, node, args.starts)
        if args.pairs:
            daemon_memory(lab, node, args.pairs)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
