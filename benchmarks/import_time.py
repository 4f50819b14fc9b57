"""Start-up cost of the node parts: what the CNI daemon and the reporter import.

Each path is one ``python -c`` statement, run in a fresh interpreter:

- ``cni-daemon``: what ``netsched-cni daemon`` loads before it serves (``cni.main``, the
  daemon, the plugin's commands, the reservation read from the API, the kubernetes client).
- ``cni-plugin``: what an in-process ``netsched-cni`` ADD loads (no daemon socket), with
  pyroute2's package ``__init__`` skipped as the executable does (``cni.fastimport``);
  ``cni-plugin, pyroute2 whole``: the same without that trim.
- ``reporter``: ``node_reporter.main``, the reporter's entry.

For each: the wall time of the whole process (p50 and p90 of ``--runs`` runs, and the p50
less an empty ``python -c pass``'s), its CPU time (user + system, p50: on a shared machine
the steadier figure), the import time Python itself reports (``-X importtime``, the sum of
the top-level imports' cumulative times, median of 5 runs), and which heavy packages the
path loads. ``--repo`` (repeatable) measures other checkouts with this interpreter (the
statement runs with that folder first on ``sys.path``); with several, their runs alternate,
so two revisions compare under the same load.

    .venv/bin/python benchmarks/import_time.py [--runs 20] [--repo BEFORE --repo AFTER]
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
    "cni-plugin": "import cni.main; cni.main.skip_package_inits(); "
                  "import cni.commands, cni.config",
    "cni-plugin, pyroute2 whole": "import cni.main, cni.commands, cni.config",
    "reporter": "import node_reporter.main",
}
HEAVY = ("networkx", "numpy", "fastapi", "kubernetes", "pyroute2", "pydantic")


def _run(repo: Path, statement: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *flags, "-c", statement], cwd=repo, env=env,
                          capture_output=True, text=True, check=True)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_ms(repos: list[Path], statement: str, runs: int
             ) -> dict[Path, tuple[list[float], list[float]]]:
    """Per checkout, (wall times, CPU times) of ``runs`` fresh interpreters, sorted, in ms;
    the checkouts take turns, run by run."""
    times: dict[Path, tuple[list[float], list[float]]] = {repo: ([], []) for repo in repos}
    for _ in range(runs):
        for repo in repos:
            started, cpu_before = time.perf_counter(), _children_cpu_s()
            _run(repo, statement)
            times[repo][0].append((time.perf_counter() - started) * 1000)
            times[repo][1].append((_children_cpu_s() - cpu_before) * 1000)
    return {repo: (sorted(wall), sorted(cpu)) for repo, (wall, cpu) in times.items()}


def importtime_ms(repo: Path, statement: str, runs: int = 5) -> float:
    """Median over ``runs`` of the summed cumulative time of the top-level imports."""
    totals = []
    for _ in range(runs):
        stderr = _run(repo, statement, "-X", "importtime").stderr
        total = 0
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:"):].split("|")
            if not name.startswith("  "):  # one space after the bar: a top-level import
                total += int(cumulative)
        totals.append(total / 1000)
    return statistics.median(totals)


def loaded(repo: Path, statement: str) -> list[str]:
    probe = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    modules = set(_run(repo, probe).stdout.split())
    return [name for name in HEAVY if name in modules]


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repo", type=Path, action="append",
                        help="a checkout to measure (repeat to compare; default this one)")
    args = parser.parse_args()
    repos = [repo.resolve() for repo in args.repo or [Path(__file__).resolve().parents[1]]]
    names = {}
    for repo in repos:
        names[repo] = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True, check=False).stdout.strip()
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    empty = {repo: statistics.median(wall) for repo, (wall, _) in
             timed_ms(repos, "pass", args.runs).items()}
    print("# empty interpreter (python -c pass): wall p50 "
          f"{statistics.median(empty.values()):.0f} ms")
    print("| path | commit | wall p50 ms | wall p90 ms | wall p50 less empty ms | CPU p50 ms "
          "| -X importtime ms | loads |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name, statement in PATHS.items():
        for repo, (wall, cpu) in timed_ms(repos, statement, args.runs).items():
            p50 = percentile(wall, 0.5)
            print(f"| {name} | {names[repo]} | {p50:.0f} | {percentile(wall, 0.9):.0f} "
                  f"| {p50 - empty[repo]:.0f} | {percentile(cpu, 0.5):.0f} "
                  f"| {importtime_ms(repo, statement):.0f} "
                  f"| {', '.join(loaded(repo, statement))} |",
                  flush=True)
    print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
