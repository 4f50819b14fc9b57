"""The cluster as the Kubernetes API holds it: list + watch, and the bind.

``KubernetesClusterSource`` implements ``ClusterSource`` with the official client. It
lists Nodes, Pods, ``NodeNetwork``, ``Network``, ``BandwidthPolicy``, Multus's
``NetworkAttachmentDefinition`` and DRA's ``ResourceClaim`` objects (in pages), hands the
snapshot to the sink, then follows each resource with a watch in its own thread,
resuming from the last resourceVersion it saw (events and bookmarks), relisting when
the server answers ``410 Gone`` and backing off while the API is unreachable or
failing. A relist hands the sink only the differences, so a bind in flight keeps its
reservation; a full rebuild (``resync``) replaces everything and is what a new leader
does before it takes traffic.

Events are applied under one lock, tagged with the epoch of the snapshot their watch
started from: after a ``resync`` a watch still draining an older stream cannot apply a
stale event over the newer snapshot.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes import client, watch
from pydantic import TypeAdapter, ValidationError

from contract.attachment_definitions import (
    DEFINITION_GROUP,
    DEFINITION_PLURAL,
    DEFINITION_VERSION,
    NetworkAttachmentDefinition,
)
from contract.dra import GROUP_VERSION as DRA_GROUP_VERSION
from contract.dra import RESOURCE_CLAIMS, ResourceClaim
from contract.group import BANDWIDTH_POLICY, GROUP, NETWORK, NODE_NETWORK, VERSION
from contract.objects import (
    BandwidthPolicy,
    BandwidthPolicyStatus,
    Network,
    Node,
    NodeNetwork,
    Pod,
)
from kubernetes_access import ApiFailure, Backoff, Conflict, Gone, NotFound, api_errors
from kubernetes_access import api_client as kubernetes_client
from scheduler_extender.cluster import (
    CONCURRENT_BINDS,
    BindConflict,
    ClusterObject,
    ClusterSink,
    ClusterSnapshot,
)

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
WATCHED_RESOURCES = 7
"""Nodes, NodeNetworks, Networks, BandwidthPolicies, Pods, NetworkAttachmentDefinitions and
ResourceClaims: one long-lived watch each."""
DRA_GROUP, DRA_VERSION = DRA_GROUP_VERSION.split("/")


class SourceError(RuntimeError):
    """The API could not be listed (unreachable, failing, or an unreadable answer)."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """A client by the credential rule (``kubernetes_access``), its pool sized for the
    ``WATCHED_RESOURCES`` watches plus ``CONCURRENT_BINDS`` binds in flight: a bind that waits for a free
    connection waits for another bind's API round trip. Raises ``NoConfiguration``.
    """
    return kubernetes_client(kubeconfig, pool_size=CONCURRENT_BINDS + WATCHED_RESOURCES)


@dataclass(frozen=True, slots=True)
class SourceSettings:
    watch_timeout: int = 300
    """Server-side end of each watch (``timeoutSeconds``); the watch is then resumed."""
    request_timeout: float = 10.0
    """Client-side timeout of lists and of each bind write."""
    page_size: int = 500
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    absent_crd_interval: float = 60.0
    """Seconds between looks for an optional CRD (NetworkAttachmentDefinition) not installed."""


@dataclass(slots=True)
class _Resource:
    """One watched resource: how to list it and what the source last knew of it."""

    name: str
    model: type
    list_call: Callable[..., Any]
    args: tuple[Any, ...]
    resource_version: str = ""
    optional: bool = False
    """A resource whose CRD another project installs (Multus's), or an API the cluster may not
    serve (``resource.k8s.io/v1``): absent (404), it has no objects."""
    absent_means: str = ""
    """What an absent optional resource means, logged once when it is found absent."""
    absent: bool = False
    known: dict[str, ClusterObject] = field(default_factory=dict)
    epoch: int = 0
    watcher: watch.Watch | None = None

    def key(self, raw: dict[str, Any]) -> str:
        metadata = raw.get("metadata") or {}
        if self.model is Pod:
            return metadata.get("uid") or f"{metadata.get('namespace')}/{metadata.get('name')}"
        if metadata.get("namespace"):
            return f"{metadata['namespace']}/{metadata.get('name', '')}"
        return metadata.get("name", "")


class _JsonWatch(watch.Watch):
    """A watch whose events stay parsed JSON.

    The client's own ``Watch`` turns every event's object into its model classes
    (``json.loads``, ``json.dumps``, then the client's deserialiser), which costs more
    than everything the source does with a Node status write; the source validates
    its own pydantic models from the JSON instead, parsed by orjson."""

    def unmarshal_event(self, data: str, return_type: Any) -> dict[str, Any] | None:
        if not data or data.isspace():
            return None
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None  # as the client does: a line that is not JSON is skipped
        event["raw_object"] = event["object"]
        return event


@dataclass(slots=True)
class _Listing:
    resource_version: str
    objects: dict[str, ClusterObject]


class KubernetesClusterSource:
    """Implements ``ClusterSource`` against a Kubernetes API server."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: SourceSettings | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings or SourceSettings()
        self.may_write = may_write
        """Asked before each bind write (leader election's ``is_leader``): a replica that lost
        the Lease while a bind was under way does not finish it."""
        self._core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        self._resources = [
            _Resource("nodes", Node, self._core.list_node, ()),
            _Resource(
                NODE_NETWORK.plural,
                NodeNetwork,
                custom.list_cluster_custom_object,
                (GROUP, VERSION, NODE_NETWORK.plural),
            ),
            _Resource(
                NETWORK.plural,
                Network,
                custom.list_cluster_custom_object,
                (GROUP, VERSION, NETWORK.plural),
            ),
            _Resource(
                BANDWIDTH_POLICY.plural,
                BandwidthPolicy,
                custom.list_cluster_custom_object,  # a namespaced kind, listed in every namespace
                (GROUP, VERSION, BANDWIDTH_POLICY.plural),
            ),
            _Resource("pods", Pod, self._core.list_pod_for_all_namespaces, ()),
            _Resource(
                DEFINITION_PLURAL,
                NetworkAttachmentDefinition,
                custom.list_cluster_custom_object,  # namespaced, listed in every namespace
                (DEFINITION_GROUP, DEFINITION_VERSION, DEFINITION_PLURAL),
                optional=True,
                absent_means="Multus is not installed: pods naming its networks are refused",
            ),
            _Resource(
                RESOURCE_CLAIMS,
                ResourceClaim,
                custom.list_cluster_custom_object,  # namespaced, listed in every namespace
                (DRA_GROUP, DRA_VERSION, RESOURCE_CLAIMS),
                optional=True,
                absent_means="DRA allocations are not counted; annotation reservations work as before",
            ),
        ]
        self._custom = custom
        self._adapters = {r.model: TypeAdapter(r.model) for r in self._resources}
        self._apply_lock = threading.Lock()
        self._stopping = threading.Event()
        self._lifecycle_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sink: ClusterSink | None = None
        self.relists = 0
        """Relists after 410 Gone, per resource summed; for tests and logs."""

    # -- ClusterSource -------------------------------------------------------------------

    def start(self, sink: ClusterSink) -> None:
        """List everything (retrying with backoff until it works or ``stop``), hand the
        snapshot to ``sink``, then follow each resource in a watch thread.

        ``stop`` is final, also when it comes first or during the retries: no watch thread
        starts after it (the process may already be shutting down)."""
        self._sink = sink
        backoff = self._backoff()
        while not self._stopping.is_set():
            try:
                self.resync()
                break
            except SourceError as error:
                delay = backoff.next_delay()
                log.warning("initial list failed (%s); retrying in %.1fs", error, delay)
                self._stopping.wait(delay)
        with self._lifecycle_lock:
            if self._stopping.is_set():
                return
            for resource in self._resources:
                thread = threading.Thread(
                    target=self._follow, args=(resource,), name=f"watch-{resource.name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        with self._lifecycle_lock:  # start's threads are all started, or none will be
            self._stopping.set()
        for resource in self._resources:
            if resource.watcher is not None:
                resource.watcher.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def resync(self) -> None:
        """Rebuild the sink from a fresh list of every resource (start, new leader).

        Raises ``SourceError`` when the API cannot be listed; nothing changes then.
        """
        listings = [self._list(resource) for resource in self._resources]
        snapshot = ClusterSnapshot()
        parts = {
            Node: snapshot.nodes,
            NodeNetwork: snapshot.node_networks,
            Network: snapshot.networks,
            BandwidthPolicy: snapshot.bandwidth_policies,
            Pod: snapshot.pods,
            NetworkAttachmentDefinition: snapshot.definitions,
            ResourceClaim: snapshot.claims,
        }
        with self._apply_lock:
            for resource, listing in zip(self._resources, listings, strict=True):
                parts[resource.model].extend(listing.objects.values())
                resource.known = listing.objects
                resource.resource_version = listing.resource_version
                resource.epoch += 1
            assert self._sink is not None, "start() sets the sink"
            self._sink.reset(snapshot)
        for resource in self._resources:
            if resource.watcher is not None:
                resource.watcher.stop()  # restart from the new snapshot's version
        log.info(
            "synced from the API: %s",
            ", ".join(f"{len(r.known)} {r.name}" for r in self._resources),
        )

    def read_pod(self, namespace: str, name: str) -> Pod | None:
        """The pod as the API server holds it, for a bind the watch has not caught up with."""
        try:
            with api_errors():
                body = _read(self._core.read_namespaced_pod(
                    name, namespace, _preload_content=False, _request_timeout=self.settings.request_timeout
                ))
            return Pod.model_validate(orjson.loads(body))
        except NotFound:
            return None
        except ApiFailure as error:
            raise BindConflict(f"reading pod {namespace}/{name}: {error}") from None
        except (ValueError, ValidationError) as error:
            raise BindConflict(f"reading pod {namespace}/{name}: unreadable answer: {error}") from None

    def read_claim(self, namespace: str, name: str) -> ResourceClaim | None:
        """The ResourceClaim as the API server holds it: bind reads a pod's claims so, since
        kube-scheduler writes their allocation (PreBind) just before it calls bind."""
        try:
            with api_errors():
                body = _read(self._custom.get_namespaced_custom_object(
                    DRA_GROUP, DRA_VERSION, namespace, RESOURCE_CLAIMS, name,
                    _preload_content=False, _request_timeout=self.settings.request_timeout,
                ))
            return ResourceClaim.model_validate(orjson.loads(body))
        except NotFound:
            return None
        except ApiFailure as error:
            raise BindConflict(f"reading ResourceClaim {namespace}/{name}: {error}") from None
        except (ValueError, ValidationError) as error:
            raise BindConflict(f"reading ResourceClaim {namespace}/{name}: unreadable answer: {error}") from None

    def bind(self, pod: Pod, node: str, annotations: Mapping[str, str]) -> None:
        """One ``pods/binding`` create: the API server sets ``spec.nodeName`` and merges the
        Binding's annotations into the pod in the same write, under its uid and
        resourceVersion preconditions (kube-apiserver's ``BindingREST``)."""
        namespace = pod.metadata.effective_namespace
        metadata: dict[str, Any] = {"name": pod.metadata.name, "namespace": namespace, "uid": pod.metadata.uid}
        if pod.metadata.resource_version:
            metadata["resourceVersion"] = pod.metadata.resource_version
        if annotations:
            metadata["annotations"] = dict(annotations)
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        # The server answers a Status, which the client cannot read as a V1Binding:
        # the raw response is all we need.
        _read(self._write(pod, self._core.create_namespaced_pod_binding, pod.metadata.name, namespace, body))

    def write_policy_status(self, policy: BandwidthPolicy, status: BandwidthPolicyStatus) -> None:
        """Merge-patch the policy's status subresource (the watch brings the result back)."""
        if self.may_write is not None and not self.may_write():
            return
        try:
            with api_errors():
                self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, policy.metadata.effective_namespace, BANDWIDTH_POLICY.plural,
                    policy.metadata.name, {"status": status.model_dump(mode="json")},
                    _content_type=MERGE_PATCH, _preload_content=False,
                    _request_timeout=self.settings.request_timeout,
                ).release_conn()
        except ApiFailure as error:
            log.warning("status of BandwidthPolicy %s: %s", policy.key, error)

    # -- writes --------------------------------------------------------------------------

    def _write(self, pod: Pod, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The bind write; every failure is a ``BindConflict`` naming the cause, so the
        scheduler releases the reservation and kube-scheduler retries the pod."""
        if self.may_write is not None and not self.may_write():
            raise BindConflict(f"binding {pod.key}: this replica is no longer the leader")
        try:
            with api_errors():
                return call(
                    *args,
                    _preload_content=False,
                    _request_timeout=self.settings.request_timeout,
                    **kwargs,
                )
        except NotFound:
            raise BindConflict(f"pod {pod.key} no longer exists") from None
        except Conflict as error:
            raise BindConflict(f"pod {pod.key}: {error.message}") from None
        except ApiFailure as error:
            raise BindConflict(f"binding {pod.key}: {error}") from None

    # -- reading -------------------------------------------------------------------------

    def _list(self, resource: _Resource) -> _Listing:
        """All objects of a resource, page by page; raises ``SourceError``."""
        objects: dict[str, ClusterObject] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.settings.page_size}
            if token:
                kwargs["_continue"] = token
            try:
                with api_errors():
                    body = _read(resource.list_call(
                        *resource.args,
                        _preload_content=False,
                        _request_timeout=self.settings.request_timeout,
                        **kwargs,
                    ))
                page = orjson.loads(body)
            except ApiFailure as error:
                if _absent(resource, error):
                    if not resource.absent:
                        why = "not served (404)" if isinstance(error, NotFound) else "forbidden to us (403)"
                        log.info("%s are %s: %s", resource.name, why, resource.absent_means)
                    resource.absent = True
                    return _Listing("", {})  # not installed, or not ours to read: nothing of that kind
                if isinstance(error, Gone) and token:
                    token = None  # the continuation expired: list again from the start
                    objects.clear()
                    continue
                raise SourceError(f"listing {resource.name}: {error}") from None
            except ValueError as error:
                raise SourceError(f"listing {resource.name}: {error}") from None
            if resource.absent:
                log.info("%s are served now", resource.name)
                resource.absent = False
            for raw in page.get("items") or []:
                obj = self._parse(resource, raw)
                if obj is not None:
                    objects[resource.key(raw)] = obj
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return _Listing(metadata.get("resourceVersion", ""), objects)

    def _parse(self, resource: _Resource, raw: dict[str, Any]) -> ClusterObject | None:
        try:
            return self._adapters[resource.model].validate_python(raw)
        except ValidationError as error:
            name = (raw.get("metadata") or {}).get("name")
            log.warning("ignoring %s %s: %s", resource.name, name, _first_error(error))
            return None

    def _follow(self, resource: _Resource) -> None:
        """Watch one resource until ``stop``: resume, relist on 410, back off on errors."""
        backoff = self._backoff()
        while not self._stopping.is_set():
            with self._apply_lock:
                since, epoch = resource.resource_version, resource.epoch
            events = self._watch(resource, since)
            try:
                with api_errors():
                    for event in events:
                        with self._apply_lock:
                            if resource.epoch != epoch:
                                break  # a resync replaced our starting point
                            self._apply(resource, event)
                        backoff.reset()
            except Gone:
                log.info("%s watch from %s expired (410 Gone); relisting", resource.name, since)
                self._relist(resource, epoch, backoff)
                continue
            except ApiFailure as error:
                if _absent(resource, error):
                    # Not installed (or allowed) yet: look again now and then, without filling the log.
                    self._stopping.wait(self.settings.absent_crd_interval)
                    self._relist(resource, epoch, backoff)
                    continue
                # A resync stops the stream on purpose: the connection breaks, nothing failed.
                if error.status is not None or resource.epoch == epoch:
                    self._pause(backoff, f"{resource.name} watch: {error}")
            except ValueError as error:
                if resource.epoch == epoch:
                    self._pause(backoff, f"{resource.name} watch broke: {error}")
            finally:
                events.close()  # hands the stream's connection back at once

    def _watch(self, resource: _Resource, since: str) -> Iterator[dict[str, Any]]:
        watcher = _JsonWatch()
        resource.watcher = watcher
        if self._stopping.is_set():
            return
        yield from watcher.stream(
            resource.list_call,
            *resource.args,
            resource_version=since,
            allow_watch_bookmarks=True,
            timeout_seconds=self.settings.watch_timeout,
            _request_timeout=self.settings.watch_timeout + 30,
        )

    def _apply(self, resource: _Resource, event: dict[str, Any]) -> None:
        """One watch event into the sink; the caller holds ``_apply_lock``."""
        kind, raw = event["type"], event["raw_object"]
        version = (raw.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if version:
                resource.resource_version = version
            return
        sink = self._sink
        assert sink is not None
        key = resource.key(raw)
        obj = self._parse(resource, raw)
        if kind in ("ADDED", "MODIFIED") and obj is not None:
            resource.known[key] = obj
            sink.upsert(obj)
        else:  # DELETED, or an object that no longer validates: forget it
            previous = resource.known.pop(key, None)
            if obj is not None or previous is not None:
                sink.delete(obj if obj is not None else previous)
        if version:
            resource.resource_version = version

    def _relist(self, resource: _Resource, epoch: int, backoff: Backoff) -> None:
        """After 410 Gone: list again and hand the sink only what changed."""
        try:
            listing = self._list(resource)
        except SourceError as error:
            self._pause(backoff, str(error))
            return
        with self._apply_lock:
            if resource.epoch != epoch:
                return  # a resync got there first
            sink = self._sink
            assert sink is not None
            for key, old in list(resource.known.items()):
                if key not in listing.objects:
                    sink.delete(old)
            known = {}
            for key, new in listing.objects.items():
                old = resource.known.get(key)
                if old is None or old.metadata.resource_version != new.metadata.resource_version:
                    sink.upsert(new)
                    known[key] = new
                else:
                    known[key] = old  # the object the sink holds: one copy of what did not change
            resource.known = known
            resource.resource_version = listing.resource_version
            self.relists += 1
        backoff.reset()

    def _pause(self, backoff: Backoff, reason: str) -> None:
        if self._stopping.is_set():
            return
        delay = backoff.next_delay()
        log.warning("%s; retrying in %.1fs", reason, delay)
        self._stopping.wait(delay)

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.backoff_initial, self.settings.backoff_max)

    # -- introspection (tests, logs) -----------------------------------------------------

    def resource_versions(self) -> dict[str, str]:
        with self._apply_lock:
            return {r.name: r.resource_version for r in self._resources}


def _read(response: Any) -> bytes:
    """The body of a raw (``_preload_content=False``) response; its connection goes back to the pool."""
    try:
        return response.data
    finally:
        response.release_conn()


def _absent(resource: _Resource, error: ApiFailure) -> bool:
    """An optional resource the cluster does not serve (404), or that the extender's
    ClusterRole does not let it read (403, an install older than the resource): it has no
    objects, and everything else works."""
    return resource.optional and (isinstance(error, NotFound) or error.status == HTTPStatus.FORBIDDEN)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"


__all__ = ["KubernetesClusterSource", "SourceError", "SourceSettings", "api_client"]
