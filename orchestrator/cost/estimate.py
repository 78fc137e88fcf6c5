"""What each trial of a sweep will cost: seconds per epoch and in all, on a named device.

Three sources, best first: the trial's own measured epochs (``measured``); a calibration of its shape (model, norm,
batch size, replicas, precision, image size) on this device by ``gnsweep calibrate`` (``calibrated``); else a FLOP
count of the architecture at the device's assumed throughput (``rough``). Imports neither TensorFlow nor Ray.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestrator.cost.devices import DeviceModel, assumed_model
from trainer.data.shapes import BUILTIN_DIGITS, DataShape, known_shape
from trainer.models import Conv, Dense, layers_of, sized

ACTOR_START_S = 2.7  # a fresh Ray actor per trial (BENCHMARKS.md, scheduling: ~2.7 s of a slot per trial)
IMPORT_S = 6.0  # TensorFlow and Keras import in that actor (BENCHMARKS.md)
ROUGH_COMPILE_S = 20.0  # model build, tracing/XLA and the first pass over the data, when not calibrated
ROUGH_EPOCH_OVERHEAD_S = 1.0  # per epoch: a fresh dataset iterator, the checkpoint, the report
VAL_BATCH = 256


def data_shape(spec_dataset: str, data_dir: str | Path = "data") -> DataShape:
    """The dataset's sizes from its ``dataset.json`` when it is prepared (where ``gnsweep launch`` would prepare
    it, or in object storage), else its known sizes (``trainer.data.shapes``)."""
    from trainer.data import INFO_FILE, DataError, load_info
    from trainer.data.preparation import prepared_dir
    from trainer.storage import is_remote

    if is_remote(spec_dataset):  # read from the bucket; named without the URI's options
        prepared, shown = spec_dataset, f"{spec_dataset.split('?')[0].rstrip('/')}/{INFO_FILE}"
        missing = f" ({shown} cannot be read)"
    else:
        there = spec_dataset == BUILTIN_DIGITS or Path(spec_dataset).expanduser().exists()
        prepared = prepared_dir(spec_dataset, data_dir) if there else None
        prepared = prepared if prepared is not None and (prepared / INFO_FILE).is_file() else None
        shown = f"{prepared / INFO_FILE}" if prepared is not None else ""
        missing = "" if there else f" ({spec_dataset} is not there yet)"
    if prepared is not None:
        try:
            info = load_info(prepared)
            return DataShape(info.name, info.counts["train"], info.counts["val"], tuple(info.image_size),
                             info.num_classes, shown)
        except DataError:
            pass
    known = known_shape(spec_dataset)
    return DataShape(known.name, known.train, known.val, known.image_size, known.num_classes,
                     f"{known.source}: {known.train:,} train / {known.val:,} val images, "
                     f"{known.image_size[0]}x{known.image_size[1]}, {known.num_classes} classes{missing}")


def forward_macs(model: str, image_size: tuple[int, int], num_classes: int) -> tuple[int, int]:
    """Multiply-adds of one image's forward pass through the convolutions and dense layers, and the number of
    those layers (normalization and element-wise ops are not counted), from ``trainer.models``' description."""
    weighted = [(layer, h, w) for layer, h, w in sized(layers_of(model, num_classes), image_size)
                if isinstance(layer, (Conv, Dense))]
    macs = sum(h * w * layer.kernel ** 2 * layer.c_in * layer.c_out if isinstance(layer, Conv)
               else layer.c_in * layer.c_out for layer, h, w in weighted)
    return macs, len(weighted)


@dataclass(frozen=True)
class TrialEstimate:
    """Seconds of one trial: ``startup`` once (actor, imports, build and compile), then ``epochs`` epochs of
    ``train_seconds`` (the fit) plus ``other_seconds`` (validation, checkpoint, per-epoch set-up) each."""

    key: str
    train_seconds: float
    other_seconds: float
    startup_seconds: float
    epochs: int
    source: str  # measured | calibrated | rough

    @property
    def epoch_seconds(self) -> float:
        return self.train_seconds + self.other_seconds

    @property
    def total_seconds(self) -> float:
        return self.startup_seconds + self.epochs * self.epoch_seconds


def precision_of(config) -> str:
    return getattr(config, "precision", None) or "float32"


def shape_key(config, shape: DataShape) -> tuple:
    """What calibration is keyed by, besides the device."""
    return (config.model, config.norm, int(config.batch_size), int(config.replicas), precision_of(config),
            int(shape.image_size[0]), int(shape.image_size[1]))


SHAPE_COLUMNS = ["model", "norm", "batch_size", "replicas", "precision", "height", "width"]


class Estimator:
    """Estimates trials of one sweep on one device: from ``calibration`` rows (a DataFrame as
    ``calibrate.read_calibration`` returns; may be empty) where they cover the trial's shape, else rough."""

    def __init__(self, shape: DataShape, device: str, calibration: pd.DataFrame | None = None):
        self.shape = shape
        self.device = device
        self.model: DeviceModel = assumed_model(device)
        self.rows: dict[tuple, dict] = {}
        if calibration is not None and len(calibration):
            for r in calibration.to_dict("records"):
                self.rows[tuple(r[c] for c in SHAPE_COLUMNS)] = r

    def throughput(self, cpus: float) -> float:
        """Assumed effective FLOP/s of one trial's device (a CPU trial gets its share of cores)."""
        return self.model.tflops * 1e12 * (max(1.0, cpus) if self.model.per_core else 1.0)

    def estimate(self, config, cpus: float = 1.0) -> TrialEstimate:
        row = self.rows.get(shape_key(config, self.shape))
        steps = self.shape.train // (config.batch_size * config.replicas)
        epochs = config.train.epochs
        if row is not None:
            train = steps / row["steps_per_second"]
            other = (row["epoch_overhead_seconds"] + row["val_seconds_per_image"] * self.shape.val
                     + row["checkpoint_seconds"])
            startup = ACTOR_START_S + row["import_seconds"] + row["startup_seconds"]
            return TrialEstimate(config.key, train, other, startup, epochs, "calibrated")
        macs, layers = forward_macs(config.model, self.shape.image_size, self.shape.num_classes)
        per_replica = self.throughput(cpus) / (config.replicas if self.model.per_core else 1)
        step = config.batch_size * 6 * macs / per_replica + layers * self.model.step_overhead_per_layer_s
        val = self.shape.val * 2 * macs / (per_replica * config.replicas)
        val += math.ceil(self.shape.val / VAL_BATCH) * layers * self.model.step_overhead_per_layer_s
        return TrialEstimate(config.key, steps * step, val + ROUGH_EPOCH_OVERHEAD_S,
                             ACTOR_START_S + IMPORT_S + ROUGH_COMPILE_S, epochs, "rough")

    def describe(self) -> str:
        m = self.model
        unit = " per core" if m.per_core else ""
        if self.rows:
            return (f"{self.device}: calibrated ({len(self.rows)} shapes measured by gnsweep calibrate); "
                    f"other shapes rough at an assumed {m.tflops:g} TFLOP/s{unit}")
        return (f"{self.device}: ROUGH estimate (no calibration for this device; run gnsweep calibrate on it): "
                f"FLOP count at an assumed {m.tflops:g} TFLOP/s{unit} effective, plus "
                f"{m.step_overhead_per_layer_s * 1e3:g} ms per layer and step")


def fmt_seconds(s: float) -> str:
    """A duration a person reads at a glance: 45 s, 12.5 min, 3.2 h, 4.1 d."""
    if not math.isfinite(s):
        return "?"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"
