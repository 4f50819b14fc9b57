"""Start-up cost of the node parts: what the CNI daemon and the reporter import.

Each path is one ``python -c`` statement, run in a fresh interpreter:

- ``cni-daemon``: what ``netsched-cni daemon`` loads before it serves (``cni.main``, the
  daemon, the plugin's commands, the reservation read from the API, the kubernetes client);
  ``cni-daemon, warmed``: all that the daemon does before it listens (``warm_up``: the same
  imports, then every model and netlink request of an ADD built once; needs root).
- ``cni-plugin``: what an in-process ``netsched-cni`` ADD loads (no daemon socket), with
  pyroute2's package ``__init__`` skipped as the executable does (``cni.fastimport``);
  ``cni-plugin, pyroute2 whole``: the same without that trim.
- ``reporter``: ``node_reporter.main``, the reporter's entry.
- ``serve --kubernetes``: what the extender loads before it serves (the web stack, the
  scheduler, the dashboard, the Kubernetes source and leader election, uvloop).

For each: the wall time of the whole process (p50 and p90 of ``--runs`` runs, and the p50
less an empty ``python -c pass``'s), its CPU time (user + system, p50: on a shared machine
the steadier figure), the import time Python itself reports (``-X importtime``, the sum of
the top-level imports' cumulative times, median of 5 runs), and which heavy packages the
path loads. ``--repo`` (repeatable) measures other checkouts with this interpreter (the
statement runs with that folder first on ``sys.path``); with several, their runs alternate,
so two revisions compare under the same load. ``--python`` (repeatable) does the same for
interpreters of other environments, such as an image's dependencies installed with and
without their bytecode (``pip install --no-compile``): every run has
PYTHONDONTWRITEBYTECODE set, as a read-only root filesystem forces, so an environment
without ``.pyc`` files compiles what it imports at every start.

    .venv/bin/python benchmarks/import_time.py [--runs 20] [--repo BEFORE --repo AFTER]
        [--python ENV_A/bin/python --python ENV_B/bin/python] [--path NAME]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PATHS: dict[str, str] = {
    "cni-daemon": "import cni.main, cni.daemon, cni.commands, cni.kube, "
                  "kubernetes.client, kubernetes.config",
    "cni-daemon, warmed": "import cni.main; cni.main.warm_up()",
    "cni-plugin": "import cni.main; cni.main.skip_package_inits(); "
                  "import cni.commands, cni.config",
    "cni-plugin, pyroute2 whole": "import cni.main, cni.commands, cni.config",
    "reporter": "import node_reporter.main",
    "serve --kubernetes": "import netsched.commands.serve, scheduler_extender.app, "
                          "scheduler_extender.read_api, scheduler_extender.server, dashboard, "
                          "scheduler_extender.kubernetes_source, scheduler_extender.leader, "
                          "scheduler_extender.extender, scheduler_extender.state, uvloop",
}
HEAVY = ("networkx", "numpy", "fastapi", "kubernetes", "pyroute2", "pydantic")


Target = tuple[str, Path]
"""An interpreter and a checkout: what one row measures."""


def _run(target: Target, statement: str, *flags: str) -> subprocess.CompletedProcess[str]:
    python, repo = target
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([python, *flags, "-c", statement], cwd=repo, env=env,
                          capture_output=True, text=True, check=True)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_ms(targets: list[Target], statement: str, runs: int
             ) -> dict[Target, tuple[list[float], list[float]]]:
    """Per target, (wall times, CPU times) of ``runs`` fresh interpreters, sorted, in ms;
    the targets take turns, run by run."""
    times: dict[Target, tuple[list[float], list[float]]] = {t: ([], []) for t in targets}
    for _ in range(runs):
        for target in targets:
            started, cpu_before = time.perf_counter(), _children_cpu_s()
            _run(target, statement)
            times[target][0].append((time.perf_counter() - started) * 1000)
            times[target][1].append((_children_cpu_s() - cpu_before) * 1000)
    return {t: (sorted(wall), sorted(cpu)) for t, (wall, cpu) in times.items()}


def importtime_ms(target: Target, statement: str, runs: int = 5) -> float:
    """Median over ``runs`` of the summed cumulative time of the top-level imports."""
    totals = []
    for _ in range(runs):
        stderr = _run(target, statement, "-X", "importtime").stderr
        total = 0
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:"):].split("|")
            if not name.startswith("  "):  # one space after the bar: a top-level import
                total += int(cumulative)
        totals.append(total / 1000)
    return statistics.median(totals)


def loaded(target: Target, statement: str) -> list[str]:
    probe = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    modules = set(_run(target, probe).stdout.split())
    return [name for name in HEAVY if name in modules]


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repo", type=Path, action="append",
                        help="a checkout to measure (repeat to compare; default this one)")
    parser.add_argument("--python", action="append",
                        help="an interpreter to measure with (repeat to compare; default this one)")
    parser.add_argument("--path", action="append", choices=list(PATHS),
                        help="only these paths (repeatable; default all)")
    args = parser.parse_args()
    repos = [repo.resolve() for repo in args.repo or [Path(__file__).resolve().parents[1]]]
    targets = [(python, repo) for python in args.python or [sys.executable] for repo in repos]
    names = {}
    for python, repo in targets:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        names[python, repo] = f"{commit} {python}" if args.python else commit
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    empty = {t: statistics.median(wall) for t, (wall, _) in timed_ms(targets, "pass", args.runs).items()}
    print("# empty interpreter (python -c pass): wall p50 "
          f"{statistics.median(empty.values()):.0f} ms")
    print("| path | measured | wall p50 ms | wall p90 ms | wall p50 less empty ms | CPU p50 ms "
          "| -X importtime ms | loads |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name in args.path or PATHS:
        statement = PATHS[name]
        for target, (wall, cpu) in timed_ms(targets, statement, args.runs).items():
            p50 = percentile(wall, 0.5)
            print(f"| {name} | {names[target]} | {p50:.0f} | {percentile(wall, 0.9):.0f} "
                  f"| {p50 - empty[target]:.0f} | {percentile(cpu, 0.5):.0f} "
                  f"| {importtime_ms(target, statement):.0f} "
                  f"| {', '.join(loaded(target, statement))} |",
                  flush=True)
    print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
