"""The simulation report as a table for people and as a PNG of link utilisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.run import SimulationReport

COLUMNS = (
    ("policy", "policy"),
    ("placed", "placed"),
    ("refused", "refused"),
    ("over cap", "links over capacity (peak)"),
    ("mean", "links over capacity at an average moment"),
    ("episodes", "times a link went over capacity (started by a noisy pod's arrival)"),
    ("lasting s", "seconds an episode lasted: median / p90"),
    ("worst", "worst link utilisation"),
    ("p50", "p50 link utilisation"),
    ("p99", "p99 link utilisation"),
    ("x-zone TB", "peer bytes crossing zones"),
    ("peer hops", "average hops between peers"),
    ("ms/pod", "scheduling time per pod, mean"),
    ("p99 ms", "scheduling time per pod, p99"),
)


def table(report: SimulationReport) -> str:
    """A plain-text table, one row per policy, with the run's parameters above it."""
    rows = [[heading for heading, _ in COLUMNS]]
    for result in report.policies:
        rows.append(
            [
                result.policy.value,
                str(result.placed),
                f"{result.refused} ({result.refused_by_kube}+{result.refused_by_netsched + result.refused_by_allocator})"
                if result.refused else "0",
                str(result.links_over_capacity_peak),
                f"{result.links_over_capacity_mean:.2f}",
                f"{result.episodes} ({result.noisy_episodes})",
                "-" if result.episode_seconds_median is None
                else f"{result.episode_seconds_median:.0f} / {result.episode_seconds_p90:.0f}",
                f"{result.worst_utilisation:.0%}",
                f"{result.utilisation_p50:.0%}",
                f"{result.utilisation_p99:.0%}",
                f"{result.cross_zone_terabytes:.2f}",
                "-" if result.average_peer_hops is None else f"{result.average_peer_hops:.2f}",
                f"{result.schedule_ms_mean:.2f}",
                f"{result.schedule_ms_p99:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    heading = (
        f"workload {report.workload}: {report.nodes} nodes in {report.zones} zones, {report.pods} pods "
        f"(seed {report.seed}), {report.pods_per_node:g} alive per node, {report.candidates_per_pod} "
        f"candidates per pod, extender weight {report.extender_weight}, reports every "
        f"{report.report_interval:g} s held {report.observed_window:g} s, "
        + (f"namespace default {report.namespace_default}, " if report.namespace_default else "")
        + f"{report.simulated_seconds:.0f} simulated seconds"
    )
    lines = [heading, ""]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    legend = (
        "refused = (kube-scheduler's CPU/memory/affinity filters + the bandwidth filter: netsched's, or DRA's "
        "allocator, \"cannot allocate all claims\"); over cap = most links above their "
        "link speed at once, counting all traffic, and how many at an average moment; episodes = times "
        "a link went over (those a noisy pod's arrival started) and how long they lasted; utilisation "
        "over sampled link states; x-zone = peer traffic between zones."
    )
    events = sum(r.events for r in report.policies)
    lines += ["", legend, f"{events} events in {report.seconds:.1f} s, peak RSS {report.peak_rss_mib:.0f} MiB"]
    return "\n".join(lines)


def plot(report: SimulationReport, path: Path) -> None:
    """Link utilisation per policy: the distribution, and its tail on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.array(report.histogram_edges)
    figure, (body, tail) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    top = max([1.05] + [min(r.worst_utilisation, edges[-1]) + 0.05 for r in report.policies])
    for result in report.policies:
        counts = np.array(result.utilisation_histogram, dtype=np.float64)
        total = counts.sum()
        if total == 0:
            continue
        below = np.concatenate([[0.0], np.cumsum(counts) / total])
        above = 1.0 - below
        body.step(edges, below, where="post", label=result.policy.value)
        tail.step(edges, np.where(above > 0, above, np.nan), where="post", label=result.policy.value)
    for axes in (body, tail):
        axes.axvline(0.9, color="grey", linestyle=":", linewidth=1)
        axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
        axes.set_xlim(0, top)
        axes.set_xlabel("link utilisation (traffic / link speed)")
        axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    body.set_ylabel("share of link samples at or below")
    body.set_title("distribution")
    tail.set_yscale("log")
    tail.set_ylabel("share of link samples above")
    tail.set_title("tail (dotted: usable 90 %, dashed: link speed)")
    body.legend(loc="lower right")
    figure.suptitle(
        f"{report.workload}: {report.nodes} nodes, {report.pods} pods, {report.pods_per_node:g} alive per node, "
        f"seed {report.seed}", fontsize=11
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
