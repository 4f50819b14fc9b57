"""The workload file: which pods arrive, what each asks for and how long it lives.

A workload is a YAML mapping validated by these models, so a bad file fails with
pydantic's message naming the field and the value. Quantities use the units their
Kubernetes fields use (bandwidth in bits/s like the pod annotations, CPU in cores or
millicores, memory in bytes with ``Ki``/``Mi``/``Gi`` suffixes, lifetimes in seconds),
and any of them may be a distribution instead of a single value.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from kubernetes.utils.quantity import parse_quantity
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bandwidth_accounting.requirements import InvalidAnnotation, parse_requirements
from contract import annotations
from contract.quantity import QuantityError, parse_bandwidth

BUNDLED = Path(__file__).resolve().parent / "workloads"
"""Workloads shipped with netsched; ``--workload NAME`` finds ``NAME.yaml`` here."""


class WorkloadError(ValueError):
    """A workload file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogNormal(_Strict):
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


class Distribution(_Strict):
    """One value, or a distribution of values, in the unit of the subclass.

    Written as a scalar (``500M``), or as a mapping with exactly one key:
    ``{uniform: [low, high]}``, ``{lognormal: {median: m, sigma: s}}``,
    ``{exponential: mean}`` or ``{choice: [a, b, ...]}``.
    """

    unit: ClassVar[str] = "number"

    constant: float | None = None
    uniform: tuple[float, float] | None = None
    lognormal: LogNormal | None = None
    exponential: float | None = Field(default=None, gt=0)
    choice: list[float] | None = Field(default=None, min_length=1)

    @classmethod
    def parse(cls, value: Any) -> float:
        """One scalar in this unit, as a float."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a {cls.unit}")  # noqa: TRY004 (pydantic reports ValueError)
        return float(value)

    @model_validator(mode="before")
    @classmethod
    def _scalars_in_unit(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return {"constant": cls.parse(data)}
        converted = dict(data)
        if isinstance(converted.get("uniform"), list | tuple):
            converted["uniform"] = [cls.parse(v) for v in converted["uniform"]]
        if isinstance(converted.get("choice"), list):
            converted["choice"] = [cls.parse(v) for v in converted["choice"]]
        if "exponential" in converted:
            converted["exponential"] = cls.parse(converted["exponential"])
        if isinstance(converted.get("lognormal"), dict) and "median" in converted["lognormal"]:
            converted["lognormal"] = {**converted["lognormal"], "median": cls.parse(converted["lognormal"]["median"])}
        return converted

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [name for name in ("constant", "uniform", "lognormal", "exponential", "choice") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of a value, uniform, lognormal, exponential or choice (got {given or 'none'})")
        values = [v for v in (self.constant, *(self.uniform or ()), *(self.choice or ())) if v is not None]
        if any(v < 0 for v in values):
            raise ValueError(f"{self.unit} values must not be negative (got {values})")
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise ValueError(f"uniform: low {self.uniform[0]} is above high {self.uniform[1]}")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.constant is not None:
            return self.constant
        if self.uniform is not None:
            return rng.uniform(*self.uniform)
        if self.lognormal is not None:
            return self.lognormal.median * math.exp(rng.gauss(0.0, self.lognormal.sigma))
        if self.exponential is not None:
            return rng.expovariate(1.0 / self.exponential)
        assert self.choice is not None
        return rng.choice(self.choice)

    @property
    def mean(self) -> float:
        if self.constant is not None:
            return self.constant
        if self.uniform is not None:
            return sum(self.uniform) / 2
        if self.lognormal is not None:
            return self.lognormal.median * math.exp(self.lognormal.sigma**2 / 2)
        if self.exponential is not None:
            return self.exponential
        assert self.choice is not None
        return sum(self.choice) / len(self.choice)


class Bandwidth(Distribution):
    """Bits per second, written like the pod annotations (``500M``, ``2G``)."""

    unit: ClassVar[str] = "bandwidth (bits/s)"

    @classmethod
    def parse(cls, value: Any) -> float:
        try:
            return float(parse_bandwidth(str(value)))
        except QuantityError as error:
            raise ValueError(str(error)) from None


def _kubernetes_quantity(value: Any, unit: str) -> float:
    try:
        return float(parse_quantity(value if isinstance(value, int | float | str | Decimal) else repr(value)))
    except (ValueError, InvalidOperation):
        raise ValueError(f"{value!r} is not a {unit} quantity") from None


class Cpu(Distribution):
    """Cores, as in a container's ``resources.requests.cpu`` (``2``, ``500m``)."""

    unit: ClassVar[str] = "CPU"

    @classmethod
    def parse(cls, value: Any) -> float:
        return _kubernetes_quantity(value, cls.unit)


class Memory(Distribution):
    """Bytes, as in ``resources.requests.memory`` (``512Mi``, ``8Gi``)."""

    unit: ClassVar[str] = "memory"

    @classmethod
    def parse(cls, value: Any) -> float:
        return _kubernetes_quantity(value, cls.unit)


class Seconds(Distribution):
    unit: ClassVar[str] = "duration (seconds)"


class AttachmentTemplate(_Strict):
    """An extra network the pod attaches to, with its rates: a ``Network`` by name
    (``netsched.io/networks``) or a NetworkAttachmentDefinition as ``namespace/name``
    (Multus's ``k8s.v1.cni.cncf.io/networks``)."""

    network: str
    ingress: Bandwidth | None = None
    egress: Bandwidth | None = None


class PodTemplate(_Strict):
    """One kind of pod in the mix; its pods are labelled ``app: <name>``."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")]
    weight: float = Field(default=1.0, gt=0, description="Share of arrivals, relative to the other templates.")
    cpu: Cpu = Cpu(constant=0.5)
    memory: Memory = Memory(constant=1024**3)
    ingress: Bandwidth | None = None
    egress: Bandwidth | None = None
    networks: list[AttachmentTemplate] = Field(default_factory=list)
    peers: str | None = Field(default=None, description="Label selector of the pods it talks to (netsched.io/peers).")
    peer_group_size: int | None = Field(
        default=None, ge=2,
        description="Consecutive pods of this template form groups of this size that talk among themselves.",
    )
    lifetime: Seconds
    annotated: bool = Field(
        default=True,
        description="False: a noisy neighbour. Its author writes no bandwidth annotations; the pod "
        "sends its ingress and egress all the same, unreserved (and unshaped, unless a namespace "
        "policy gives it a default).",
    )

    @field_validator("peers")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_requirements({annotations.PEERS: value})
            except InvalidAnnotation as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _one_peer_rule(self) -> PodTemplate:
        if self.peers is not None and self.peer_group_size is not None:
            raise ValueError("give peers or peer_group_size, not both")
        if not self.annotated and self.networks:
            raise ValueError("a pod without annotations (annotated: false) cannot attach networks")
        return self


class NodeShape(_Strict):
    """What kube-scheduler may allocate on every simulated node."""

    cpu: Cpu = Cpu(constant=32)
    memory: Memory = Memory(constant=128 * 1024**3)


class Workload(_Strict):
    name: str
    description: str = ""
    pods_per_node: float = Field(
        gt=0, description="Mean pods alive per node once arrivals and departures balance (sets the arrival rate)."
    )
    node: NodeShape = NodeShape()
    templates: list[PodTemplate] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Workload:
        names = [t.name for t in self.templates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"template names must be unique (repeated: {duplicates})")
        return self

    @property
    def mean_lifetime(self) -> float:
        total = sum(t.weight for t in self.templates)
        return sum(t.weight * t.lifetime.mean for t in self.templates) / total

    def networks(self) -> set[str]:
        return {attachment.network for t in self.templates for attachment in t.networks}


def load_workload(reference: str | Path) -> Workload:
    """A workload from a YAML path, or the bundled workload of that name."""
    path = Path(reference)
    if not path.exists() and (BUNDLED / f"{reference}.yaml").exists():
        path = BUNDLED / f"{reference}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        bundled = ", ".join(bundled_workloads())
        raise WorkloadError(f"workload {str(reference)!r}: {error.strerror} (bundled workloads: {bundled})") from None
    try:
        return Workload.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise WorkloadError(f"workload {path}: not valid YAML ({error})") from None
    except ValidationError as error:
        raise WorkloadError(f"workload {path}: {error}") from None


def bundled_workloads() -> list[str]:
    return sorted(path.stem for path in BUNDLED.glob("*.yaml"))
