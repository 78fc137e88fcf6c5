"""The rows of a sweep's two tables and its JSON files (``sweep.json``, ``plan.json``, ``launch.json``), as typed
records: what the Tune callback and the launch write, what ``launch``, ``status`` and ``report`` read back. The rows'
fields are the schema's columns (a test holds them equal), so a metric is added in one place per table."""
from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Mapping

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from results.studies import KINDS
from trainer.config import EpochMetrics

CONFIG_COLUMNS = ("sweep", "trial_key", "model", "norm", "batch_size", "groups", "channels_per_group", "seed")
EPOCH_METRICS = tuple(f.name for f in dataclasses.fields(EpochMetrics) if f.name != "epoch")


@dataclass(frozen=True)
class EpochRow:
    """One row of ``epochs/``: one epoch of one trial. Errors are percentages."""

    sweep: str
    trial_key: str
    model: str
    norm: str
    batch_size: int
    groups: int | None
    channels_per_group: int | None
    seed: int
    epoch: int  # 1-based
    train_loss: float
    train_err: float
    val_loss: float
    val_err: float
    val_err_top5: float
    lr: float
    epoch_seconds: float
    images_per_second: float
    attempt: int  # 0 for the first run of the trial, +1 per retry or relaunch
    node: str | None
    recorded_at: datetime
    precision: str | None = "float32"  # trainer.config.PRECISIONS; null in sweeps recorded before it

    @classmethod
    def of(cls, config: Mapping[str, Any], metrics: Mapping[str, Any], *, attempt: int, node: str | None,
           recorded_at: datetime, precision: str | None = "float32") -> "EpochRow":
        """The row of one reported epoch (``metrics``: EpochMetrics' fields) of the trial ``config`` (its config
        columns)."""
        return cls(**{k: config[k] for k in CONFIG_COLUMNS}, epoch=int(metrics["epoch"]),
                   **{k: float(metrics[k]) for k in EPOCH_METRICS}, attempt=attempt, node=node,
                   recorded_at=recorded_at, precision=precision)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrialRow:
    """One row of ``trials/``: a trial's status and figures, rewritten when its status changes."""

    sweep: str
    trial_key: str
    model: str
    norm: str
    batch_size: int
    groups: int | None
    channels_per_group: int | None
    seed: int
    status: str  # a schema.TrialStatus
    epochs: int  # epochs done
    final_val_err: float | None  # trainer.config.final_error of the val errors
    best_val_err: float | None
    error: str | None  # message, or null
    studies: tuple[str, ...]
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    train_seconds: float  # sum of epoch_seconds
    precision: str | None = "float32"  # trainer.config.PRECISIONS; null in sweeps recorded before it
    same_as: str | None = None  # the trial whose run these figures are (orchestrator.spec.dedup); null for a run

    def __post_init__(self):
        object.__setattr__(self, "studies", tuple(self.studies or ()))

    def config(self) -> dict:
        return {k: getattr(self, k) for k in CONFIG_COLUMNS}

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "studies": list(self.studies)}


# --- the JSON files beside the tables: sweep.json, plan.json, launch.json -------------------------------------------
# Each is read back through ``from_json_text``, which checks every field against the record's types (pydantic, strict:
# no string where a number belongs, no bool for an integer, no NaN) and names the first field that is wrong.

Count = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
_STRICT = ConfigDict(strict=True)

# The settings a sweep may not change (orchestrator.spec.model.SweepSpec.fingerprint), typed; keys not listed here
# (a later gnsweep's) are kept as they are.
Fingerprint = with_config(ConfigDict(strict=True, extra="allow"))(TypedDict("Fingerprint", {
    "model": str, "dataset": str, "replicas": Count, "train.epochs": Count, "train.base_lr": Finite,
    "train.base_batch": Count, "train.momentum": Finite, "train.weight_decay": Finite, "train.augment": bool,
    "train.precision": str}, total=False))

# A trial's configuration as plan.json holds it (trainer.config.TrialConfig.to_dict); shared runs are copied under
# these columns into the tables, so their types matter.
PlanConfig = with_config(ConfigDict(strict=True, extra="allow"))(TypedDict("PlanConfig", {
    "model": str, "norm": str, "batch_size": Count, "groups": Count | None, "channels_per_group": Count | None,
    "seed": Annotated[int, Field(ge=0)], "replicas": Count, "train": Mapping[str, Any]}, total=False))


@dataclass(frozen=True)
class ClaimRow:
    """One row of a report's ``claims.parquet``: one paper claim (or one part of it) with its verdict, the measured
    quantity in points with its 95% interval, and what would decide it while it is open."""

    claim: str
    study: str
    topic: str
    measured: float | None
    low: float | None
    high: float | None
    paper: float | None
    verdict: str  # results.verdicts.VERDICTS
    seeds: int
    epochs: int
    would_decide: str | None
    quantity: str
    method: str | None
    tolerance: float | None
    images: int | None
    part_of: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepRecord:
    """What ``sweep.json`` holds: the sweep's name, the settings that must not change under it, every trial ever
    planned for it, each study's kind (``results.studies.KINDS``), recorded from the spec at launch, and the
    dataset's image counts by split (``dataset.json``'s ``counts``, which the intervals need). Sweeps launched before
    kinds or counts were recorded have none; the analysis then infers the kinds and says the counts are unknown."""

    __pydantic_config__ = _STRICT

    name: str
    fingerprint: Fingerprint = field(default_factory=dict)
    trials: tuple[str, ...] = ()
    studies: Mapping[str, Literal[KINDS]] = field(default_factory=dict)
    images: Mapping[str, Count] = field(default_factory=dict)  # dataset.json's image counts by split

    def to_json(self) -> dict:
        out = {"name": self.name, "fingerprint": dict(self.fingerprint), "trials": list(self.trials),
               "studies": dict(self.studies)}
        return {**out, "images": dict(self.images)} if self.images else out


@dataclass(frozen=True)
class PlanEntry:
    """One trial in ``plan.json``: its configuration (``TrialConfig.to_dict``), studies, the run it shares (and
    why), its resources and calibration shape, and, for a trial that runs, the launch's estimate of it."""

    __pydantic_config__ = _STRICT

    config: PlanConfig
    studies: tuple[str, ...]
    same_as: str | None
    why: str | None
    cpu: Seconds  # CPUs held (a non-negative finite number, like seconds)
    gpu: Seconds  # GPUs held: a replica's share times the replicas
    shape: str
    train_seconds: Seconds | None = None
    other_seconds: Seconds | None = None
    startup_seconds: Seconds | None = None
    epochs: Annotated[int, Field(ge=0)] | None = None
    source: str | None = None

    @property
    def estimated(self) -> bool:
        return None not in (self.train_seconds, self.other_seconds, self.startup_seconds, self.epochs, self.source)

    def to_json(self) -> dict:
        out = {"config": dict(self.config), "studies": list(self.studies), "same_as": self.same_as, "why": self.why,
               "cpu": self.cpu, "gpu": self.gpu, "shape": self.shape}
        if self.estimated:
            out.update(train_seconds=self.train_seconds, other_seconds=self.other_seconds,
                       startup_seconds=self.startup_seconds, epochs=self.epochs, source=self.source)
        return out


@dataclass(frozen=True)
class PlanRecord:
    """What ``plan.json`` holds: the device and estimate the launch used, the cluster's nodes (Ray resource dicts)
    and every trial's ``PlanEntry``, merged over launches; ``gnsweep status`` tells the time left from it, and the
    readers expand shared runs with it."""

    __pydantic_config__ = _STRICT

    name: str
    device: str
    estimate: str
    nodes: tuple[Mapping[str, Seconds], ...]
    trials: Mapping[str, PlanEntry]
    val_images: Count | None = None  # the validation set's size (the report's intervals include its sampling error)

    def to_json(self) -> dict:
        return {"name": self.name, "device": self.device, "estimate": self.estimate,
                "nodes": [dict(n) for n in self.nodes], "val_images": self.val_images,
                "trials": {k: e.to_json() for k, e in self.trials.items()}}


@dataclass(frozen=True)
class LaunchRecord:
    """What ``launch.json`` holds: the launch that runs the sweep (host, pid and when that process started, since
    when) and its heartbeat, renewed while it lives; ``orchestrator.launch.lock`` claims and takes over with it."""

    __pydantic_config__ = _STRICT

    id: Annotated[str, Field(min_length=1, max_length=64)]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    pid: int
    pid_started: Annotated[int, Field(ge=0)] | None  # clock ticks since boot (/proc), to tell a reused pid
    since: Annotated[str, Field(max_length=64)]  # ISO time the launch started
    heartbeat: Finite  # unix time of the last renewal
    lease_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]

    def impossible(self, now: float) -> bool:
        """A claim no launch writes (a pid outside Linux's range, a heartbeat from the future, a lease of days):
        forged or garbled, so stale whatever its process or heartbeat says."""
        return not 0 < self.pid <= PID_MAX or self.heartbeat > now + CLOCK_SKEW_SECONDS or \
            self.lease_seconds > LEASE_LIMIT_SECONDS

    def live(self, now: float | None = None) -> bool:
        """Whether the launch still holds the sweep: on its own host, while its process lives (a reused pid does
        not count); seen from another host, while its heartbeat is younger than its lease."""
        now = time.time() if now is None else now
        if self.impossible(now):
            return False
        if self.host == socket.gethostname():
            return pid_alive(self.pid, self.pid_started)
        return now - self.heartbeat < self.lease_seconds

    def where(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


PID_MAX = 2**22  # Linux's largest pid_max
CLOCK_SKEW_SECONDS = 60.0  # a heartbeat written by another host may be this far ahead of this host's clock
LEASE_LIMIT_SECONDS = 3600.0  # launches write 120 s


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, from /proc), to tell a reused pid from the launch's own."""
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return started is None or process_start(pid) in (None, started)


def from_json_text(record_type: type, text: str):
    """A ``record_type`` (SweepRecord, PlanRecord, LaunchRecord) from a JSON file's text. Raises ValueError naming the
    first field that is not what gnsweep writes there (``trials.gn-b32-s0.cpu: input should be a valid number,
    got the string 'x'``)."""
    try:
        return _adapter(record_type).validate_json(text, strict=True)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        message = f"{err['msg'][:1].lower()}{err['msg'][1:]}"
        if err["type"] == "json_invalid":
            raise ValueError(message) from None
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        raise ValueError(f"{where[:120]}: {message}, got {_describe(err.get('input'))}") from None


@functools.cache
def _adapter(record_type: type) -> TypeAdapter:
    return TypeAdapter(record_type)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."
