"""``netsched reporter``: discover the node's interfaces and publish its ``NodeNetwork``.

``--once`` prints one report and exits; otherwise the reporter cycles every
``interval`` seconds, publishes each report (retrying with backoff while the API is
away) and serves ``/metrics`` and ``/healthz``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pyroute2.netlink.exceptions import NetlinkError

from contract.objects import NodeNetwork
from node_reporter.config import ConfigError, MetricsSettings, ReporterConfig, load_config
from node_reporter.metrics import MetricsServer, ReporterMetrics
from node_reporter.netlink import NamespaceNotFound, NetlinkSource
from node_reporter.report import Reporter, report_json, with_placement

if TYPE_CHECKING:  # the kubernetes client is imported only when publishing
    from node_reporter.publish import KubePublisher

log = logging.getLogger("node_reporter")

NETNS_DIR = Path("/run/netns")
"""Where ``ip netns`` and pyroute2 keep named network namespaces."""

LABEL_REFRESH_SECONDS = 60.0
"""How often the Node's zone/switch labels are re-read: they change rarely, and a GET
per node per interval would be most of the reporter fleet's API load."""

PUBLISH_RETRY_FIRST = 0.5
"""Seconds before the first retry of a failed publish; doubling up to ``maxBackoff``."""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The reporter's flags; pass a subparser to mount them under another command.

    The flags have no argparse defaults (a flag left out leaves the config file's or the
    environment's value); the defaults they name are ``ReporterConfig``'s own."""
    reporter, metrics = ReporterConfig.model_fields, MetricsSettings.model_fields
    parser = parser or argparse.ArgumentParser(
        prog="netsched reporter",
        description="Discover this node's interfaces and publish its NodeNetwork: every "
        "--interval seconds, or once with --once.",
    )
    parser.add_argument(
        "--config", type=Path, help="YAML or JSON settings file (env NETSCHED_REPORTER_CONFIG)"
    )
    parser.add_argument(
        "--once", action="store_true", help="print one NodeNetwork as JSON and exit"
    )
    parser.add_argument("--node-name", help="the Node this reporter runs on (env NODE_NAME)")
    parser.add_argument(
        "--interval", type=float,
        help=f"seconds between reports (default {reporter['interval'].default:g})",
    )
    parser.add_argument(
        "--sample-seconds",
        type=float,
        help="rate window of the first report and of --once "
        f"(default {reporter['sample_seconds'].default:g})",
    )
    parser.add_argument(
        "--netns", help="inspect this named network namespace instead of the reporter's own"
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster, else ~/.kube/config)"
    )
    parser.add_argument(
        "--metrics-address",
        help=f"address of /metrics and /healthz (default {metrics['address'].default})",
    )
    parser.add_argument(
        "--metrics-port", type=int,
        help=f"port of /metrics and /healthz (default {metrics['port'].default}; 0 picks one)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("NETSCHED_REPORTER_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    return parser


def config_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> ReporterConfig:
    flags = {
        "nodeName": args.node_name,
        "interval": args.interval,
        "sampleSeconds": args.sample_seconds,
        "netns": args.netns,
        "kubeconfig": args.kubeconfig,
        "metrics.address": args.metrics_address,
        "metrics.port": args.metrics_port,
    }
    return load_config(args.config, os.environ if env is None else env, flags)


def main(argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args, stop)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Run with parsed flags until ``stop`` is set; 0 on a clean stop, 1 on a runtime
    failure, 2 on bad settings. The caller turns SIGTERM and SIGINT into ``stop`` (``netsched``'s
    command line does it before its first import, see ``netsched.cli``)."""
    stop = stop or threading.Event()
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        config = config_from_args(args)
    except ConfigError as error:
        print(f"netsched reporter: {error}", file=sys.stderr)
        return 2
    if config.netns is not None and not (NETNS_DIR / config.netns).exists():
        print(
            f"netsched reporter: netns = {config.netns!r}: no such network namespace in {NETNS_DIR}",
            file=sys.stderr,
        )
        return 2
    try:
        if args.once:
            print(report_json(report_once(config)))
            return 0
        return run_daemon(config, stop)
    except NamespaceNotFound as error:
        print(f"netsched reporter: netns = {config.netns!r}: {error}", file=sys.stderr)
        return 2
    except PublishSetupError as error:
        print(f"netsched reporter: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the metrics port is taken
        print(f"netsched reporter: {error}", file=sys.stderr)
        return 1


def report_once(config: ReporterConfig) -> NodeNetwork:
    """One report, rates over ``sample_seconds``; labels only when an API is configured."""
    with NetlinkSource(config.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        time.sleep(config.sample_seconds)
        report = reporter.cycle()
    if config.kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return report
    from kubernetes_access import ApiFailure

    try:
        return with_placement(report, make_publisher(config).node_labels(), config)
    except (ApiFailure, PublishSetupError) as error:
        log.warning("zone and switch from the configuration only: %s", error)
        return report


class PublishSetupError(RuntimeError):
    """No usable Kubernetes client configuration (not a transient API outage)."""


def make_publisher(config: ReporterConfig) -> KubePublisher:
    from kubernetes_access import NoConfiguration, api_client
    from node_reporter.publish import KubePublisher

    try:
        return KubePublisher(
            api_client(config.kubeconfig), config.node_name, config.request_timeout
        )
    except NoConfiguration as error:
        raise PublishSetupError(str(error)) from error


def run_daemon(
    config: ReporterConfig,
    stop: threading.Event,
    publisher: KubePublisher | None = None,
    on_report: Callable[[NodeNetwork], None] | None = None,
    on_serving: Callable[[int], None] | None = None,
) -> int:
    """Cycle until ``stop`` is set. ``publisher`` defaults to one built from the config;
    ``on_report`` sees every report built, ``on_serving`` the metrics port (tests)."""
    publisher = publisher or make_publisher(config)
    # A cycle may wait on the API (labels, create, patch: one timeout each) before the
    # next one starts; only a loop stuck longer than that is unhealthy.
    metrics = ReporterMetrics(
        stale_after=3 * config.interval + config.sample_seconds + 3 * config.request_timeout
    )
    with (
        NetlinkSource(config.netns) as source,
        MetricsServer(metrics, config.metrics.address, config.metrics.port) as server,
    ):
        log.info(
            "reporting node %s every %ss; metrics on %s:%d",
            config.node_name,
            config.interval,
            config.metrics.address,
            server.port,
        )
        if on_serving is not None:
            on_serving(server.port)
        ReporterLoop(config, Reporter(config, source), publisher, metrics, on_report).run(stop)
    return 0


class ReporterLoop:
    """The schedule: a cycle every ``interval``; a publish after each cycle, or, while the
    API is away, at backoff times in between (always the newest report)."""

    def __init__(
        self,
        config: ReporterConfig,
        reporter: Reporter,
        publisher: KubePublisher,
        metrics: ReporterMetrics,
        on_report: Callable[[NodeNetwork], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from kubernetes_access import Backoff

        self.config = config
        self.reporter = reporter
        self.publisher = publisher
        self.metrics = metrics
        self.on_report = on_report
        self.clock = clock
        self.backoff = Backoff(initial=PUBLISH_RETRY_FIRST, maximum=config.max_backoff)
        self._labels: dict[str, str] = {}
        self._labels_read_at: float | None = None
        self._latest: NodeNetwork | None = None
        self._publish_at: float | None = None
        self._failing = False

    def run(self, stop: threading.Event) -> None:
        self._prime(stop)
        next_cycle = self.clock() + self.config.sample_seconds
        while True:
            wake = next_cycle if self._publish_at is None else min(next_cycle, self._publish_at)
            if stop.wait(max(0.0, wake - self.clock())):
                return
            now = self.clock()
            if now >= next_cycle:
                next_cycle += self.config.interval
                if next_cycle <= now:  # a cycle overran: keep the cadence, skip the backlog
                    next_cycle = now + self.config.interval
                self._cycle()
            if self._publish_at is not None and self.clock() >= self._publish_at:
                self._publish()

    def _prime(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.reporter.prime()
                return
            except (NetlinkError, OSError) as error:
                log.error("cannot read links: %s", error)
                self.metrics.record_cycle_error()
                stop.wait(self.config.interval)

    def _cycle(self) -> None:
        started = time.perf_counter()
        try:
            report = self.reporter.cycle()
        except (NetlinkError, OSError) as error:
            # Links changing under the dump, or the namespace gone: try again next cycle.
            log.error("discovery cycle failed: %s", error)
            self.metrics.record_cycle_error()
            return
        self.metrics.record_cycle(report.status.interfaces, time.perf_counter() - started)
        self._latest = report
        if self.on_report is not None:
            self.on_report(report)
        if not self._failing:
            self._publish_at = self.clock()

    def _publish(self) -> None:
        from kubernetes_access import ApiFailure

        assert self._latest is not None
        try:
            now = self.clock()
            if self._labels_read_at is None or now - self._labels_read_at >= LABEL_REFRESH_SECONDS:
                self._labels = self.publisher.node_labels()
                self._labels_read_at = now
            self.publisher.publish(with_placement(self._latest, self._labels, self.config))
        except ApiFailure as error:
            delay = self.backoff.next_delay()
            log.warning(
                "publishing NodeNetwork %s failed, retrying in %.1fs: %s",
                self.config.node_name,
                delay,
                error,
            )
            self.metrics.record_publish(False)
            self._failing = True
            self._publish_at = self.clock() + delay
            return
        if self._failing:
            log.info("publishing NodeNetwork %s works again", self.config.node_name)
        self.metrics.record_publish(True)
        self.backoff.reset()
        self._failing = False
        self._publish_at = None
