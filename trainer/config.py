"""What one trial is and what it reports: the data that crosses from the orchestrator into the trainer and back."""
from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from dataclasses import dataclass
from typing import Sequence

FINAL_EPOCHS = 5  # the paper reports the median error of the final 5 epochs


def final_error(errors: Sequence[float]) -> float | None:
    """The paper's reported figure of a per-epoch error series: the median of its last FINAL_EPOCHS values; NaN if
    one of those is NaN (a diverged epoch), None for no epochs. The trainer, the results table and the analysis all
    use this one rule."""
    last = [float(e) for e in errors][-FINAL_EPOCHS:]
    if not last:
        return None
    return math.nan if any(math.isnan(e) for e in last) else float(statistics.median(last))

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISION_SUFFIX = {"float32": "", "mixed_bfloat16": "bf16", "mixed_float16": "fp16"}


@dataclass(frozen=True)
class TrainSettings:
    """The paper's protocol (section 4.1); the same for every trial of a sweep."""

    epochs: int = 100
    base_lr: float = 0.1
    base_batch: int = 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = True
    decay_at: tuple[float, ...] = (0.3, 0.6, 0.9)
    precision: str = "float32"  # a Keras dtype policy: float32 (the paper's), mixed_bfloat16 or mixed_float16

    def decay_epochs(self) -> list[int]:
        """Epochs (0-based) at whose start the learning rate is divided by 10."""
        return sorted({round(f * self.epochs) for f in self.decay_at if 0 < round(f * self.epochs) < self.epochs})


@dataclass(frozen=True)
class TrialConfig:
    """One combination of the sweep: a fresh model trained once with these settings."""

    model: str
    norm: str
    batch_size: int
    groups: int | None = None
    channels_per_group: int | None = None
    seed: int = 0
    replicas: int = 1
    train: TrainSettings = TrainSettings()

    @functools.cached_property
    def key(self) -> str:
        """Readable, stable identity, e.g. ``gn-b32-g32-s0`` (model and settings are fixed per sweep); mixed
        precision adds ``-bf16`` or ``-fp16``, so float32 keys stay as they were. Computed once per config: a plan
        at max_trials asks for it millions of times."""
        parts = [self.norm, f"b{self.batch_size}"]
        if self.groups is not None:
            parts.append(f"g{self.groups}")
        if self.channels_per_group is not None:
            parts.append(f"cpg{self.channels_per_group}")
        if self.replicas != 1:
            parts.append(f"r{self.replicas}")
        parts.append(f"s{self.seed}")
        if PRECISION_SUFFIX[self.train.precision]:
            parts.append(PRECISION_SUFFIX[self.train.precision])
        return "-".join(parts)

    @property
    def lr(self) -> float:
        """Linear scaling rule over the global batch (per-replica batch times replicas)."""
        return self.train.base_lr * self.batch_size * self.replicas / self.train.base_batch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialConfig":
        d = dict(d)
        train = d.pop("train", {}) or {}
        if "decay_at" in train:
            train["decay_at"] = tuple(train["decay_at"])
        return cls(**d, train=TrainSettings(**train))


@dataclass(frozen=True)
class EpochMetrics:
    """What a trial reports after each epoch. Errors are top-1 (top-5) error in percent on the validation set."""

    epoch: int  # 1-based
    train_loss: float
    train_err: float
    val_loss: float
    val_err: float
    val_err_top5: float
    lr: float
    epoch_seconds: float
    images_per_second: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrialOutcome:
    """How ``train_trial`` ended: completed, or diverged (NaN/inf loss) after ``epochs`` epochs."""

    status: str  # "completed" | "diverged"
    epochs: int
    history: tuple[EpochMetrics, ...]
    final_val_err: float | None

    def to_dict(self) -> dict:
        return {"status": self.status, "epochs": self.epochs, "final_val_err": self.final_val_err,
                "history": [m.to_dict() for m in self.history]}
