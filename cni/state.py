"""What netsched-cni made for each attachment, kept on the node so DEL and GC find it.

The kernel is the record wherever it can be: ifbs and pod interfaces have names derived
from the container id and carry it as their alias. Two facts are not in the kernel:
which namespace a container used (DEL may come after the runtime forgot it) and which
pods share a segment device in the node's namespace (their macvlans live in other
namespaces, invisible from the node's). Those go here, one small JSON file per
attachment, written *before* anything is made so that a crash half way is cleaned up
by the next DEL or GC like any other leftover.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
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


class StateDir:
    """``records/<key>.json`` per attachment, ``segments/<device>/<key>`` per segment user."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.records = self.root / "records"
        self.segments = self.root / "segments"

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
