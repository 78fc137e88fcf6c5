"""The rows of a sweep's two tables and its ``sweep.json``, as typed records: what the Tune callback writes, what
``launch``, ``status`` and ``report`` read back. Their fields are the schema's columns (a test holds them equal), so
a metric is added in one place per table."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

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

    name: str
    fingerprint: Mapping[str, Any]
    trials: tuple[str, ...]
    studies: Mapping[str, str] = field(default_factory=dict)
    images: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"name": self.name, "fingerprint": dict(self.fingerprint), "trials": list(self.trials),
               "studies": dict(self.studies)}
        return {**out, "images": dict(self.images)} if self.images else out

    @classmethod
    def from_json(cls, data: Any) -> "SweepRecord":
        """Raises ValueError naming what is wrong with ``data`` (as parsed from sweep.json)."""
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, got {type(data).__name__}")
        name, fingerprint = data.get("name"), data.get("fingerprint", {})
        trials, studies, images = data.get("trials", []), data.get("studies", {}), data.get("images", {})
        if not isinstance(name, str):
            raise ValueError("'name' must be a string")
        if not isinstance(fingerprint, dict):
            raise ValueError("'fingerprint' must be an object")
        if not isinstance(trials, list) or not all(isinstance(k, str) for k in trials):
            raise ValueError("'trials' must be a list of trial keys")
        if not isinstance(studies, dict) or not all(isinstance(v, str) for v in studies.values()):
            raise ValueError("'studies' must map study names to kinds")
        if not isinstance(images, dict) or not all(type(v) is int and v > 0 for v in images.values()):
            raise ValueError("'images' must map dataset splits to positive image counts")
        return cls(name, fingerprint, tuple(trials), studies, images)
