"""Pods per second through the extender as kube-scheduler drives it, beside a pass-through extender.

Per configuration, processes on loopback:

- the in-test API server (tests/kube_api) holding the nodes, their NodeNetworks and the
  pending pods, with ``--api-latency-ms`` added to every request it serves (a real
  kube-apiserver writes to etcd before it answers) and its connections kept open between
  requests, as kube-apiserver's are; optionally kubelets' Node status
  writes (full Node objects, as the watch delivers them) at ``--write-factors`` times a
  kubelet's rate. Its seeded objects are kept out of Python's cyclic collector
  (``gc.freeze``): kube-apiserver's Go collector runs beside its handlers, while this
  stand-in's full collections, scanning the whole seeded cluster, stop every request at
  once (``--api-full-collections`` brings them back);
- the extender: netsched (``netsched serve --kubernetes`` as deployed: list + watch through
  the official client, bind with one Binding) or the pass-through extender on the same
  stack (FastAPI + uvicorn served as ``netsched serve`` serves, the same body reader, the
  same Binding call through the same client), which filters nothing, scores 0 and binds
  where it is told: the floor any extender with a bind verb pays. It reads every body;
  netsched prepares a cycle's prioritize answer after its filter and reads no body when
  prioritize brings the filter's bytes again (``scheduler_extender.prepared``), and
  ``--prepared-passthrough`` gives the pass-through the same;
- this process, playing kube-scheduler: the scheduling cycle is serial (POST /filter with
  as many candidates as kube-scheduler sends by default, each pod the next window of the
  node list (``Candidates``), /prioritize with those that passed, pick the best), and each
  binding cycle runs on its own, as kube-scheduler starts a goroutine
  per pod (``go sched.runBindingCycle``) and its extender client sets no connection limit:
  up to ``--binds-in-flight`` (64) at once. All verbs share one client that keeps at most
  two idle connections, as Go's transport in kube-scheduler does (``ExtenderTransport``):
  a request finding none idle dials a new one (``dials/pod``). Plain HTTP, as
  deploy/plain-http has it; over the default deploy/'s mutual TLS, Go speaks HTTP/2 to the
  extender, one connection for everything (``extender_connections.py``). Like kube-scheduler, it lists and watches the
  pods not finished (its pod informer), so each API server sends every bound pod to it,
  encoded once for all its watchers, as kube-apiserver does.

The comparison runs both extenders side by side: each with its own API server, both up at
once, taking turns of ``--turn`` pods (pass-through, netsched, netsched, pass-through, ...)
until each has scheduled ``--pods``. The machine's load drifts over minutes; turns of a
fraction of a second put both extenders under the same drift, where whole runs one after
the other did not (single rounds of 1,500 pods moved by a factor of two).

Reported per extender: pods/s (first filter to last bind answered, summed over its turns),
client-side p50/p99 of each verb, the most binds in flight, the extender process's CPU per
pod (all threads, and its event loop's thread alone) and its CPU share, the API server
process's CPU per pod (netsched's watches make it send every bound pod once more); and the
ratio of netsched's pods/s to the pass-through's.

    .venv/bin/python benchmarks/extender_throughput.py [--sizes 500 2000] [--pods 1500] [--turn 50]
    .venv/bin/python benchmarks/extender_throughput.py --writes  # 5,000 nodes, kubelet rates
    .venv/bin/python benchmarks/extender_throughput.py --ablate pod-watch  # netsched without a step
    .venv/bin/python benchmarks/extender_throughput.py --pin  # the extender on a core of its own

``--pin`` gives the extender a core of its own, as deployed: netsched's extender is a
Deployment of its own (deploy/base/extender.yaml), so it shares no core with kube-scheduler
or kube-apiserver. The extenders run on the last core, the API servers and this process on
the others; the two extenders take turns, so one of them is busy at a time. Without it all
processes share every core, and the extender's work competes with the stand-ins' for CPU.

``--ablate`` takes steps out of netsched (its answers are then wrong on purpose): ``filter``
passes every node (prioritize then runs the fit check itself, as it does for a pod whose
filter it did not see), ``prioritize`` scores 0, ``reserve`` binds without check-and-reserve (the
ledger never changes, so no fit table catches up either), ``pod-watch`` never watches pods
after the first list (kube-apiserver then sends no bound pod back). The ratio it gains is
what that step costs in pods/s. ``collector`` is not a step but a setting, and netsched's
answers stay right: its process keeps Python's own collector thresholds
(``scheduler_extender.app.collector_tuned``); what the ratio loses is what the setting gains.

The last two columns are the extender's pauses in Python's cyclic collector, from
``gc.callbacks`` in its process: their time per pod and the longest one, in ms.

Prints one table per part; figures and the machine go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTask

from benchmarks.extender_bodies import all_pass, all_zero
from benchmarks.extender_latency import free_port, kube_scheduler_candidates
from contract.objects import ObjectMeta, Pod
from scheduler_extender.app import body, collector_tuned, json_response
from scheduler_extender.cluster import CONCURRENT_BINDS, BindConflict
from scheduler_extender.prepared import PreparedPrioritize
from scheduler_extender.webhook_app import WebhookApp
from scheduler_extender.wire import ExtenderArgs, ExtenderBindingArgs, read_body

POD_TEMPLATE = ROOT / "tests" / "fixtures" / "extender" / "filter-nodenames.json"
NODE_TEMPLATE = ROOT / "tests" / "fixtures" / "extender" / "filter-nodes.json"
KUBELET_STATUS_SECONDS = 300
"""A kubelet re-sends an unchanged Node status every nodeStatusReportFrequency (5 min)."""


# -- the API server process ----------------------------------------------------------------


def node_names(nodes: int) -> list[str]:
    return [f"node-{i:05d}" for i in range(nodes)]


def api_server(nodes: int, pods: int, latency: float, port: int, writes_per_s: float, freeze: bool,
               ready: Any, go: Any, stop: Any) -> None:
    from tests.kube_api import FakeKubeAPI
    from tests.kubernetes.conftest import NODE_NETWORKS, NODES, PODS, node_network_object

    node_template = json.loads(NODE_TEMPLATE.read_text())["Nodes"]["items"][0]
    pod_template = json.loads(POD_TEMPLATE.read_text())["Pod"]
    api = FakeKubeAPI()
    api.port = port
    names = node_names(nodes)
    for index, name in enumerate(names):
        node = json.loads(json.dumps(node_template))
        node["metadata"] = {**node["metadata"], "name": name,
                            "labels": {**node["metadata"]["labels"], "kubernetes.io/hostname": name,
                                       "topology.kubernetes.io/zone": f"zone-{index % 10}"}}
        api.seed(NODES, node)
        api.seed(NODE_NETWORKS, node_network_object(name, zone=f"zone-{index % 10}"))
    for index in range(pods):
        pod = json.loads(json.dumps(pod_template))
        pod["metadata"] = {key: value for key, value in pod["metadata"].items() if key not in ("uid", "resourceVersion")}
        pod["metadata"]["name"] = f"bench-{index:05d}"
        pod["metadata"]["namespace"] = "default"
        pod["metadata"]["annotations"] = {"kubernetes.io/egress-bandwidth": "50M"}
        api.seed(PODS, pod)

    def slow(method: str, path: str) -> None:
        if "watch=true" not in path:
            time.sleep(latency)  # etcd's write and the server's own work, before it answers

    api.fault = slow
    if freeze:
        gc.collect()
        gc.freeze()
    api.resume()

    def kubelets() -> None:
        go.wait()
        beat, period = 0, 1 / writes_per_s
        next_at = time.monotonic()
        while not stop.is_set():
            name = names[beat % len(names)]
            status = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                      "lastHeartbeatTime": f"2026-12-01T16:{beat // 60 % 60:02d}:{beat % 60:02d}Z"}]}
            api.handle("PATCH", f"{NODES}/{name}/status", "application/merge-patch+json", {"status": status})
            beat += 1
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    if writes_per_s > 0:
        threading.Thread(target=kubelets, daemon=True).start()
    ready.set()
    stop.wait()
    api.pause()


# -- the extender process ------------------------------------------------------------------


ABLATIONS = ("filter", "prioritize", "reserve", "pod-watch", "collector")


def ablate(parts: tuple[str, ...]) -> None:
    """Take steps out of netsched, in the extender's process only: its answers are wrong on
    purpose (every node passes, every score 0, binds without a reservation, bound pods
    never seen again); ``collector`` keeps Python's collector thresholds. What each is worth
    is where the time per pod goes."""
    from scheduler_extender import app
    from scheduler_extender.kubernetes_source import KubernetesClusterSource
    from scheduler_extender.scheduler import FilterResult, Scheduler

    if "filter" in parts:
        Scheduler.filter = lambda self, pod, names: FilterResult(passed=list(names))
    if "prioritize" in parts:
        Scheduler.prioritize = lambda self, pod, names, **_: [0] * len(list(names))
    if "reserve" in parts:
        def bind_only(self: Scheduler, namespace: str, name: str, uid: str, node: str) -> None:
            self.source.bind(self._pod_to_bind(namespace, name, uid), node, {})
        Scheduler._bind = bind_only
    if "pod-watch" in parts:
        follow = KubernetesClusterSource._follow
        KubernetesClusterSource._follow = lambda self, resource: (
            None if resource.name == "pods" else follow(self, resource))
    if "collector" in parts:
        app.YOUNG_COLLECTION_ALLOCATIONS = gc.get_threshold()[0]


def extender(kind: str, kubeconfig: str, port: int, ablated: tuple[str, ...] = (), core: int | None = None,
             prepared: bool = False) -> None:
    from scheduler_extender.kubernetes_source import KubernetesClusterSource, api_client
    from scheduler_extender.server import ServeOptions, uvicorn_server

    ablate(ablated)
    if core is not None:
        os.sched_setaffinity(0, {core})

    source = KubernetesClusterSource(api_client(kubeconfig))
    if kind == "netsched":
        from bandwidth_accounting.settings import FitSettings
        from scheduler_extender.app import create_app
        from scheduler_extender.extender import Extender
        from scheduler_extender.scheduler import SchedulerSettings

        # No reporter re-sends the seeded NodeNetworks here: their heartbeats do not age.
        settings = SchedulerSettings(fit=FitSettings(report_ttl=None))
        app = create_app(Extender.build(source, settings=settings))
    else:
        app = passthrough_app(source, prepared)
    pauses = CollectorPauses()
    gc.callbacks.append(pauses)
    app.add_api_route("/bench/gc", lambda: pauses.seconds, methods=["GET"])
    uvicorn_server(app, ServeOptions(host="127.0.0.1", port=port)).run()  # as netsched serve runs it


class CollectorPauses:
    """The cyclic collector's pauses in an extender process (``gc.callbacks``), in seconds;
    served on ``/bench/gc`` for the parent to read before and after its turns, as it reads
    the CPU from /proc."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:  # collections hold the GIL: one at a time in a process
            self.seconds.append(time.perf_counter() - self._started)


def passthrough_app(source: Any, prepared: bool = False) -> Any:
    """All nodes pass, every score 0, and the pod bound where kube-scheduler says, by one
    Binding through the same client and pool as netsched's, the collector set as netsched's.
    It reads every body. With ``prepared`` its prioritize answers are prepared after each
    filter as netsched's are (``scheduler_extender.prepared``): a prioritize that brings
    its filter's bytes reads no body."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with collector_tuned():
            yield

    app = WebhookApp(lifespan=lifespan)
    threads: list[anyio.CapacityLimiter] = []
    ahead = PreparedPrioritize()

    @app.per_pod_verb("/filter")
    async def filter_nodes(request: Request) -> Response:
        raw = await request.body()
        names = read_body(ExtenderArgs, raw).node_names()
        ahead.drop()
        response = all_pass(names)
        if prepared and len(names) > 1 and ahead.wanted():
            response.background = BackgroundTask(prepare_prioritize, raw, names)
        return response

    async def prepare_prioritize(raw: bytes, names: list[str]) -> None:
        ahead.prepare(raw, 0, lambda: bytes(all_zero(names).body))

    @app.per_pod_verb("/prioritize")
    async def prioritize(request: Request) -> Response:
        raw = await request.body()
        answer = ahead.take(raw, 0)
        if answer is not None:
            return json_response(answer)
        return all_zero(read_body(ExtenderArgs, raw).node_names())

    @app.per_pod_verb("/bind")
    async def bind(request: Request) -> Response:
        args = await body(request, ExtenderBindingArgs)
        if not threads:
            threads.append(anyio.CapacityLimiter(CONCURRENT_BINDS))
        pod = Pod(metadata=ObjectMeta(name=args.PodName, namespace=args.PodNamespace, uid=args.PodUID))
        try:
            await anyio.to_thread.run_sync(source.bind, pod, args.Node, {}, limiter=threads[0])
        except BindConflict as error:
            return json_response(orjson.dumps({"Error": str(error)}))
        return json_response(b'{"Error":""}')

    @app.get("/readyz")
    def readyz() -> str:
        return "ok"

    return app


# -- kube-scheduler ------------------------------------------------------------------------


class ExtenderTransport:
    """kube-scheduler's HTTP client for one extender, as ``makeTransport`` builds it: an
    ``http.Transport`` through ``utilnet.SetTransportDefaults``, which leaves
    ``MaxIdleConnsPerHost`` unset, so Go's ``DefaultMaxIdleConnsPerHost`` (2) applies. A
    request takes the connection that went idle last, or dials a new one; when it is
    answered, its connection goes back to the idle ones unless two are idle already, and
    is closed then. So binds in flight beyond two mostly arrive on new connections. Plain
    HTTP/1.1, as deploy/plain-http has it (Go speaks HTTP/2 only over TLS)."""

    IDLE_PER_HOST = 2

    def __init__(self, port: int) -> None:
        self.port = port
        self.dialed = 0
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[int, bytes]:
        """A GET on a connection of its own, outside the pool (readiness, the benchmark's own routes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def close(self) -> None:
        """Close the idle connections: a server that is told to stop waits for open ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def post(self, path: str, body: dict) -> Any:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
            self.dialed += connection is None
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        with self._lock:
            kept = len(self._idle) < self.IDLE_PER_HOST
            if kept:
                self._idle.append(connection)
        if not kept:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")
        return orjson.loads(payload)


def wait_ready(transport: ExtenderTransport, deadline: float) -> None:
    while True:
        try:
            if transport.get("/readyz")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("extender not ready")
        time.sleep(0.2)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds of a process, or of one of its threads (the main thread's id is the pid)."""
    where = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(where).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Candidates:
    """The nodes kube-scheduler sends an extender: the first ``count`` feasible ones from where
    the last cycle stopped (``findNodesThatPassFilters``: ``nextStartNodeIndex`` moves on by the
    nodes it processed, so each pod gets another window of the node list). Every node is
    feasible here, so each window is the next ``count`` nodes round the list."""

    def __init__(self, nodes: int) -> None:
        self.names = node_names(nodes)
        self.count = kube_scheduler_candidates(nodes)
        self._round = self.names + self.names[: self.count]
        self._start = 0

    def next(self) -> list[str]:
        window = self._round[self._start: self._start + self.count]
        self._start = (self._start + self.count) % len(self.names)
        return window


def schedule(transport: ExtenderTransport, pods: list[dict], candidates: Candidates, binds_in_flight: int,
             burst: bool = False) -> dict[str, Any]:
    """Play kube-scheduler: serial scheduling cycles, concurrent binding cycles. With
    ``burst`` the scheduling cycles are taken as done (each pod goes to the next candidate
    in turn) and only the binds are sent, ``binds_in_flight`` at once throughout."""
    dialed = transport.dialed
    timings: dict[str, list[float]] = {"filter": [], "prioritize": [], "bind": []}
    errors: list[str] = []
    in_flight, most = 0, 0
    lock = threading.Lock()

    def timed(verb: str, body: dict) -> Any:
        begin = time.perf_counter()
        answer = transport.post(f"/{verb}", body)
        elapsed = time.perf_counter() - begin
        with lock:
            timings[verb].append(elapsed)
        return answer

    def binding_cycle(pod: dict, node: str) -> None:
        nonlocal in_flight
        try:
            metadata = pod["metadata"]
            answer = timed("bind", {"PodName": metadata["name"], "PodNamespace": metadata["namespace"],
                                    "PodUID": metadata["uid"], "Node": node})
            if answer["Error"]:
                with lock:
                    errors.append(answer["Error"])
        except Exception as error:  # no one reads the pool's futures: a failed bind counts here
            with lock:
                errors.append(f"bind of {pod['metadata']['name']}: {error!r}")
        finally:
            with lock:
                in_flight -= 1
            slots.release()

    slots = threading.BoundedSemaphore(binds_in_flight)
    chooser = random.Random(1)  # kube-scheduler's selectHost: one of the best, at random
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=binds_in_flight) as binders:
        for index, pod in enumerate(pods):
            if burst:
                slots.acquire()
                with lock:
                    in_flight += 1
                    most = max(most, in_flight)
                binders.submit(binding_cycle, pod, candidates.names[index % len(candidates.names)])
                continue
            args = {"Pod": pod, "Nodes": None, "NodeNames": candidates.next()}
            passed = timed("filter", args)["NodeNames"]
            if not passed:
                errors.append(f"{pod['metadata']['name']}: no node passed")
                continue
            args["NodeNames"] = passed
            scores = timed("prioritize", args) if len(passed) > 1 else [{"Host": passed[0], "Score": 0}]
            top = max(score["Score"] for score in scores)
            best = chooser.choice([score["Host"] for score in scores if score["Score"] == top])
            slots.acquire()  # kube-scheduler never waits here; the cap only bounds this driver
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            binders.submit(binding_cycle, pod, best)
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "timings": timings, "errors": errors, "most_in_flight": most,
            "dialed": transport.dialed - dialed}


NOT_FINISHED = "status.phase!=Succeeded,status.phase!=Failed"
"""The field selector of kube-scheduler's pod informer (``newPodInformer``)."""


class PodInformer(threading.Thread):
    """kube-scheduler's pod informer: list, then watch every pod not finished.

    kube-scheduler learns from this watch that a pod it bound is bound (its cache confirms
    the assumed pod), so kube-apiserver encodes every bound pod for it whether an extender
    watches pods too or not; an extender's own pod watch then costs the server only the
    write of the same bytes (``tests/kube_api``'s ``WatchEvent``). Each event is parsed, as
    the informer decodes it; ``bound`` counts the pods seen with a node."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True, name=f"informer-{port}")
        self.port = port
        self.pending: list[dict] = []
        self.bound = 0
        self.listed = threading.Event()
        self._connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        selector = urlencode({"fieldSelector": NOT_FINISHED})
        listing = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        listing.request("GET", f"/api/v1/pods?{selector}")
        page = orjson.loads(listing.getresponse().read())
        self.pending = [pod for pod in page["items"] if not pod["spec"].get("nodeName")]
        self._connection = http.client.HTTPConnection("127.0.0.1", self.port)
        self._connection.request("GET", f"/api/v1/pods?{selector}&watch=true&allowWatchBookmarks=true"
                                        f"&resourceVersion={page['metadata']['resourceVersion']}&timeoutSeconds=3600")
        stream = self._connection.getresponse()
        self.listed.set()
        buffer = b""
        try:
            while chunk := stream.read1(65536):
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    event = orjson.loads(line)
                    if event["type"] == "MODIFIED" and event["object"]["spec"].get("nodeName"):
                        self.bound += 1
        except (OSError, ValueError, http.client.HTTPException):
            pass  # stop() cut the stream

    def saw_bound(self, pods: int, timeout: float = 5.0) -> bool:
        """Whether the watch has brought ``pods`` bound pods (the last binds' events may be on their way)."""
        deadline = time.monotonic() + timeout
        while self.bound < pods and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bound >= pods

    def stop(self) -> None:
        if self._connection is not None and self._connection.sock is not None:
            self._connection.sock.shutdown(2)
        self.join(5)


@dataclass
class Stack:
    """One API server and one extender in front of it, pods pending."""

    kind: str
    nodes: int
    extender_pid: int
    api_pid: int
    pending: list[dict]
    candidates: Candidates
    go: Any
    informer: PodInformer
    transport: ExtenderTransport


@contextmanager
def stack(kind: str, nodes: int, pods: int, latency_ms: float, writes_per_s: float,
          freeze_api: bool = True, ablated: tuple[str, ...] = (), core: int | None = None,
          prepared: bool = False) -> Iterator[Stack]:
    """Start the in-test API server and ``kind``'s extender (on ``core`` alone, when given;
    a pass-through preparing its prioritize answers with ``prepared``); stop both on the way out."""
    context = multiprocessing.get_context("spawn")
    ready, go, stop = context.Event(), context.Event(), context.Event()
    api_port, extender_port = free_port(), free_port()
    api = context.Process(target=api_server, daemon=True,
                          args=(nodes, pods, latency_ms / 1000, api_port, writes_per_s, freeze_api, ready, go, stop))
    api.start()
    if not ready.wait(600):
        raise RuntimeError("API server did not start")
    with tempfile.TemporaryDirectory() as folder:
        kubeconfig = Path(folder) / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{api_port}"}}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}]}))
        served = context.Process(target=extender, args=(kind, str(kubeconfig), extender_port, ablated, core, prepared),
                                 daemon=True)
        served.start()
        transport = ExtenderTransport(extender_port)
        informer = PodInformer(api_port)
        informer.start()
        try:
            wait_ready(transport, time.monotonic() + 600)
            if not informer.listed.wait(120):
                raise RuntimeError("the pod informer did not list")
            yield Stack(kind, nodes, served.pid, api.pid, informer.pending, Candidates(nodes), go, informer,
                        transport)
        finally:
            informer.stop()
            transport.close()
            served.terminate()
            served.join(10)
            stop.set()
            api.join(30)


def measure(kind: str, nodes: int, pods: int, latency_ms: float, writes_per_s: float,
            binds_in_flight: int, burst: bool = False, freeze_api: bool = True,
            core: int | None = None) -> dict[str, Any]:
    """One extender alone: every pending pod in one go."""
    with stack(kind, nodes, pods, latency_ms, writes_per_s, freeze_api, core=core) as served:
        served.go.set()
        time.sleep(1.0 if writes_per_s else 0)  # the kubelets are writing before the first pod
        before, paused = usage(served), len(collector_pauses(served))
        result = schedule(served.transport, served.pending, served.candidates, binds_in_flight, burst)
        used = usage(served) - before
        pauses = collector_pauses(served)[paused:]
    return summary(served, result, used, writes_per_s, pauses)


def measure_side_by_side(nodes: int, pods: int, latency_ms: float, binds_in_flight: int, turn: int,
                         burst: bool = False, freeze_api: bool = True,
                         ablated: tuple[str, ...] = (), core: int | None = None,
                         prepared_passthrough: bool = False) -> dict[str, dict[str, Any]]:
    """Both extenders up at once, each with its own API server, taking turns of ``turn``
    pods (pass-through, netsched, netsched, pass-through, ...): a change in the machine's
    load lasting longer than a couple of turns falls on both alike. A turn ends when its
    last bind is answered, so the next one starts on a quiet machine."""
    with (stack("passthrough", nodes, pods, latency_ms, 0, freeze_api, core=core,
                prepared=prepared_passthrough) as passthrough,
          stack("netsched", nodes, pods, latency_ms, 0, freeze_api, ablated, core) as netsched):
        stacks = (passthrough, netsched)
        results = {served.kind: {"elapsed": 0.0, "timings": {"filter": [], "prioritize": [], "bind": []},
                                 "errors": [], "most_in_flight": 0, "dialed": 0} for served in stacks}
        for served in stacks:
            served.go.set()
        before = {served.kind: usage(served) for served in stacks}
        paused = {served.kind: len(collector_pauses(served)) for served in stacks}
        for index, start in enumerate(range(0, pods, turn)):
            for served in stacks if index % 2 == 0 else reversed(stacks):
                done = schedule(served.transport, served.pending[start:start + turn], served.candidates, binds_in_flight,
                                burst)
                total = results[served.kind]
                total["elapsed"] += done["elapsed"]
                total["errors"] += done["errors"]
                total["most_in_flight"] = max(total["most_in_flight"], done["most_in_flight"])
                total["dialed"] += done["dialed"]
                for verb, seconds in done["timings"].items():
                    total["timings"][verb] += seconds
        return {served.kind: summary(served, results[served.kind], usage(served) - before[served.kind], 0,
                                     collector_pauses(served)[paused[served.kind]:])
                for served in stacks}


def usage(served: Stack) -> np.ndarray:
    """CPU seconds so far: the extender's, its event loop's (the main thread), the API server's."""
    return np.array([cpu_seconds(served.extender_pid), cpu_seconds(served.extender_pid, served.extender_pid),
                     cpu_seconds(served.api_pid)])


def collector_pauses(served: Stack) -> list[float]:
    """Seconds of each of the extender's collections so far (``CollectorPauses``)."""
    return orjson.loads(served.transport.get("/bench/gc")[1])


def summary(served: Stack, result: dict[str, Any], used: np.ndarray, writes_per_s: float,
            pauses: list[float]) -> dict[str, Any]:
    pods, timings = len(served.pending), result["timings"]
    cpu, loop_cpu, api_cpu = used.tolist()
    row = {"extender": served.kind, "nodes": served.nodes, "candidates": served.candidates.count,
           "pods": pods, "writes_per_s": writes_per_s, "pods_per_s": pods / result["elapsed"],
           "most_in_flight": result["most_in_flight"], "dials_per_pod": result["dialed"] / pods,
           "errors": len(result["errors"]),
           "cpu_ms_per_pod": cpu / pods * 1000, "loop_ms_per_pod": loop_cpu / pods * 1000,
           "cpu_share": cpu / result["elapsed"],
           "api_cpu_ms_per_pod": api_cpu / pods * 1000, "elapsed": result["elapsed"],
           "gc_ms_per_pod": sum(pauses) / pods * 1000, "gc_longest_ms": max(pauses, default=0.0) * 1000}
    for verb, seconds in timings.items():
        ordered = sorted(seconds)
        row[f"{verb}_p50"] = statistics.median(ordered) * 1000 if ordered else float("nan")
        row[f"{verb}_p99"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else float("nan")
    if result["errors"]:
        print(f"  {served.kind}: {len(result['errors'])} errors, first: {result['errors'][0]}", flush=True)
    if not served.informer.saw_bound(bound := pods - len(result["errors"])):
        print(f"  {served.kind}: the pod informer saw {served.informer.bound} pods bound, not {bound}", flush=True)
    return row


HEADER = (f"{'extender':<12}{'nodes':>6}{'sent':>5}{'pods':>6}{'writes/s':>9}{'pods/s':>8}{'ratio':>7}"
          f"{'filter p50/p99':>16}{'prio p50/p99':>15}{'bind p50/p99':>15}{'in flight':>10}{'dials/pod':>10}{'CPU ms/pod':>11}{'loop':>6}{'CPU':>6}"
          f"{'API ms/pod':>11}{'GC ms/pod':>10}{'longest':>8}")


def print_row(row: dict, baseline: dict | None) -> None:
    ratio = f"{row['pods_per_s'] / baseline['pods_per_s']:.2f}" if baseline else "-"
    print(f"{row['extender']:<12}{row['nodes']:>6}{row['candidates']:>5}{row['pods']:>6}{row['writes_per_s']:>9.1f}"
          f"{row['pods_per_s']:>8.0f}{ratio:>7}"
          f"{row['filter_p50']:>8.1f}/{row['filter_p99']:<7.1f}{row['prioritize_p50']:>7.1f}/{row['prioritize_p99']:<7.1f}"
          f"{row['bind_p50']:>7.1f}/{row['bind_p99']:<7.1f}{row['most_in_flight']:>10}{row['dials_per_pod']:>10.2f}"
          f"{row['cpu_ms_per_pod']:>11.2f}"
          f"{row['loop_ms_per_pod']:>6.2f}{row['cpu_share']:>6.0%}{row['api_cpu_ms_per_pod']:>11.2f}"
          f"{row['gc_ms_per_pod']:>10.3f}{row['gc_longest_ms']:>8.1f}", flush=True)


def print_summary(nodes: int, rows: list[dict]) -> None:
    """All rounds of one size added up: pods over seconds per extender, and their ratio."""
    def total(kind: str) -> tuple[float, list[float]]:
        mine = [row for row in rows if row["extender"] == kind]
        return (sum(row["pods"] for row in mine) / sum(row["elapsed"] for row in mine),
                sorted(row["cpu_ms_per_pod"] for row in mine))

    (passthrough, passthrough_cpu), (netsched, netsched_cpu) = total("passthrough"), total("netsched")
    print(f"  {nodes} nodes, {len(rows) // 2} rounds: passthrough {passthrough:.0f} pods/s, netsched {netsched:.0f} "
          f"pods/s, ratio {netsched / passthrough:.2f}; CPU ms/pod median passthrough "
          f"{statistics.median(passthrough_cpu):.2f}, netsched {statistics.median(netsched_cpu):.2f}", flush=True)


def apart() -> int:
    """``--pin``: this process, and the API servers it starts, leave the last core to the
    extenders; the core they get."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("--pin needs two cores")
    os.sched_setaffinity(0, cores[:-1])
    return cores[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--pods", type=int, default=1500)
    parser.add_argument("--api-latency-ms", type=float, default=5.0)
    parser.add_argument("--binds-in-flight", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="side-by-side runs per size")
    parser.add_argument("--turn", type=int, default=50, help="pods per turn when the two extenders take turns")
    parser.add_argument("--burst", action="store_true",
                        help="instead: only binds, --binds-in-flight at once, at each size")
    parser.add_argument("--writes", action="store_true",
                        help="instead: netsched at --write-nodes nodes without and with kubelet status writes")
    parser.add_argument("--write-nodes", type=int, default=5000)
    parser.add_argument("--write-factors", type=float, nargs="+", default=[0, 1, 10],
                        help="multiples of the kubelet rate (one write per node every 5 min)")
    parser.add_argument("--ablate", nargs="+", choices=ABLATIONS, default=[],
                        help="take these steps out of netsched (wrong answers, on purpose): what each costs")
    parser.add_argument("--api-full-collections", action="store_true",
                        help="leave the API server's seeded objects to Python's cyclic collector")
    parser.add_argument("--prepared-passthrough", action="store_true",
                        help="the pass-through prepares its prioritize answers as netsched does")
    parser.add_argument("--pin", action="store_true",
                        help="the extenders on the last core alone, everything else on the others")
    args = parser.parse_args()
    core = apart() if args.pin else None

    print(f"API latency {args.api_latency_ms} ms a request; up to {args.binds_in_flight} binds in flight; "
          "times in ms at the client" + (f"; netsched without: {', '.join(args.ablate)}" if args.ablate else "")
          + (f"; the extenders on core {core} alone" if core is not None else "")
          + ("; the pass-through prepares its prioritize answers" if args.prepared_passthrough else ""))
    print(HEADER)
    if args.writes:
        rate = args.write_nodes / KUBELET_STATUS_SECONDS
        for _ in range(args.rounds):
            baseline = None
            for factor in args.write_factors:
                row = measure("netsched", args.write_nodes, args.pods, args.api_latency_ms, rate * factor,
                              args.binds_in_flight, freeze_api=not args.api_full_collections, core=core)
                print_row(row, baseline)
                baseline = baseline or row
    else:
        for nodes in args.sizes:
            done: list[dict] = []
            for _ in range(args.rounds):
                rows = measure_side_by_side(nodes, args.pods, args.api_latency_ms, args.binds_in_flight, args.turn,
                                            args.burst, freeze_api=not args.api_full_collections,
                                            ablated=tuple(args.ablate), core=core,
                                            prepared_passthrough=args.prepared_passthrough)
                print_row(rows["passthrough"], None)
                print_row(rows["netsched"], rows["passthrough"])
                done += rows.values()
            print_summary(nodes, done)
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Linux {platform.release()}, Python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
