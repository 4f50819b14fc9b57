"""What netsched-cni made for each attachment, kept on the node so DEL and GC find it.

The kernel is the record wherever it can be: ifbs and pod interfaces have names derived
from the container id and carry it as their alias. Two facts are not in the kernel:
which namespace a container used (DEL may come after the runtime forgot it) and which
pods share a segment device in the node's namespace (their macvlans live in other
namespaces, invisible from the node's). Those go here, one small JSON file per
attachment, written *before* anything is made so that a crash half way is cleaned up
by the next DEL or GC like any other leftover.

The DRA kubelet plugin keeps one more kind of record here: what it prepared for each
ResourceClaim (``claims/``), which a pod's ADD turns into shaping. The kubelet prepares a
claim once, before the pod's sandbox, and does not ask again after the daemon restarts,
so the record must outlive the process (docs/dra.md, "On the node").
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError


class AttachedInterface(BaseModel):
    """One interface netsched-cni made in the pod (``net1``…) and its segment device."""

    interface: str
    segment: str | None = None


class Record(BaseModel):
    """Everything DEL needs to undo one ADD, without the config or the API."""

    network: str
    container_id: str
    ifname: str
    netns: str
    shaped: list[str] = Field(default_factory=list, description="Pod interfaces with qdiscs.")
    attachments: list[AttachedInterface] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return record_key(self.network, self.container_id, self.ifname)


def record_key(network: str, container_id: str, ifname: str) -> str:
    return hashlib.sha256(f"{network}\0{container_id}\0{ifname}".encode()).hexdigest()[:32]


class PreparedDevice(BaseModel):
    """One allocation result of a claim on a netsched device of this node."""

    request: str
    pool: str
    device: str
    interface: str = Field(description="The node's interface that the device is.")
    share_id: str | None = None
    ingress: int = Field(ge=0, description="Bits/s consumed into the pod; 0: not shaped.")
    egress: int = Field(ge=0, description="Bits/s consumed out of the pod; 0: not shaped.")


class PreparedClaim(BaseModel):
    """What NodePrepareResources checked and kept of one ResourceClaim, for the CNI ADD."""

    namespace: str
    name: str
    uid: str
    devices: list[PreparedDevice]


def claim_key(namespace: str, name: str) -> str:
    return hashlib.sha256(f"{namespace}\0{name}".encode()).hexdigest()[:32]


class StateDir:
    """``records/<key>.json`` per attachment, ``segments/<device>/<key>`` per segment user,
    ``claims/<key>.json`` per prepared ResourceClaim (keyed by namespace and name: the
    pod names its claims, the kubelet adds their UID)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.records = self.root / "records"
        self.segments = self.root / "segments"
        self.claims = self.root / "claims"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise ADD/DEL/GC on this node: segment reference counts must not race."""
        self.records.mkdir(parents=True, exist_ok=True)
        self.segments.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, record: Record) -> None:
        path = self.records / f"{record.key}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(record.model_dump_json())
        tmp.replace(path)

    def load(self, network: str, container_id: str, ifname: str) -> Record | None:
        path = self.records / f"{record_key(network, container_id, ifname)}.json"
        try:
            return Record.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def all_records(self) -> list[Record]:
        found = []
        for path in sorted(self.records.glob("*.json")):
            try:
                found.append(Record.model_validate_json(path.read_bytes()))
            except ValidationError:
                path.unlink(missing_ok=True)
        return found

    def forget(self, record: Record) -> None:
        (self.records / f"{record.key}.json").unlink(missing_ok=True)

    def save_claim(self, claim: PreparedClaim) -> None:
        self.claims.mkdir(parents=True, exist_ok=True)
        path = self.claims / f"{claim_key(claim.namespace, claim.name)}.json"
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")  # prepares run concurrently
        tmp.write_text(claim.model_dump_json())
        tmp.replace(path)

    def prepared_claim(self, namespace: str, name: str) -> PreparedClaim | None:
        path = self.claims / f"{claim_key(namespace, name)}.json"
        try:
            return PreparedClaim.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def forget_claim(self, namespace: str, name: str, uid: str) -> None:
        """Drop the record of that claim, unless it is of a newer claim of the same name."""
        found = self.prepared_claim(namespace, name)
        if found is None or found.uid == uid:
            (self.claims / f"{claim_key(namespace, name)}.json").unlink(missing_ok=True)

    def hold_segment(self, device: str, record: Record) -> None:
        users = self.segments / device
        users.mkdir(parents=True, exist_ok=True)
        (users / record.key).touch()

    def release_segment(self, device: str, record: Record) -> bool:
        """Drop ``record``'s hold on ``device``; True when nobody holds it any more."""
        users = self.segments / device
        (users / record.key).unlink(missing_ok=True)
        if users.is_dir() and not any(users.iterdir()):
            users.rmdir()
        return not users.exists()

    def segment_users(self, device: str) -> int:
        users = self.segments / device
        return sum(1 for _ in users.iterdir()) if users.is_dir() else 0
