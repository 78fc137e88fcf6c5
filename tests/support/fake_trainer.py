"""A stand-in for ``trainer.train_trial`` without TensorFlow, for tests of the orchestration (faults, interrupts,
claims, node loss, monitoring) where the model is not what they test: a trial costs a Ray worker and a few sleeps
instead of importing TensorFlow and training.

A launch runs it when its environment has ``GNSWEEP_TRAINER=tests.support.fake_trainer:train_trial``, and
``GNSWEEP_TRAINER_OPTIONS`` (JSON) gives its keyword options (``tests.support.cli.fake_trainer_env`` writes both). It
keeps the real contract: the same signature; each epoch checkpointed in ``trainer.checkpoints``' format (a small JSON
file where the Keras model would be) before it is reported; on a resume the checkpointed epochs reported again first,
then training goes on from the next epoch; ValueError for a batch larger than the training images; ``diverged`` on a
non-finite loss. Everything else is Ray Tune, the results writer and Parquet, as real as in production.
"""
from __future__ import annotations

import json
import math
import os
import time
import zlib
from pathlib import Path

from trainer import checkpoints
from trainer.config import EpochMetrics, TrialConfig, TrialOutcome, final_error
from trainer.storage import Location
from trainer.train import lr_at

PATH = "tests.support.fake_trainer:train_trial"
STEP_SECONDS = 0.02  # per training step; steps per epoch as the real trainer counts them
MODEL_FILE = "model.keras"  # the name trainer.checkpoints gives the model; here it holds the JSON of ``_Model``


class _Model:
    """What a checkpoint holds in place of the Keras model: what the trial was given (``checkpoints.save`` calls
    ``save``), so a test can read which process, CPUs and GPU share wrote each epoch."""

    def __init__(self, **info):
        self.info = info

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.info))


def model_info(checkpoint_dir: str | Path) -> dict:
    """The ``_Model`` of a trial's latest checkpoint (local checkpoints only)."""
    folder = Path(checkpoint_dir) / (Path(checkpoint_dir) / checkpoints.LATEST).read_text().strip()
    return json.loads((folder / MODEL_FILE).read_text())


def _epoch_of(plan: dict | None, key: str) -> int | None:
    """The 1-based epoch at which ``plan`` (``{trial key or "*": epoch}``) acts on trial ``key``, if it does."""
    return None if not plan else plan.get(key, plan.get("*"))


def _train_images(dataset_dir) -> int:
    info = json.loads((Location.of(str(dataset_dir)) / "dataset.json").read_text())
    return int(info["counts"]["train"])


def _metrics(trial: TrialConfig, epoch: int, images: int, seconds: float, diverged: bool) -> EpochMetrics:
    """Plausible numbers that fall with the epochs and differ between trials; NaN losses for a diverged epoch."""
    spread = (zlib.crc32(trial.key.encode()) % 1000) / 100
    val_err = 10 + spread + 80 * 0.7 ** (epoch + 1)
    loss = math.nan if diverged else math.log(10) * val_err / 90
    return EpochMetrics(epoch=epoch + 1, train_loss=loss, train_err=max(0.0, val_err - 5), val_loss=loss,
                        val_err=val_err, val_err_top5=val_err / 3, lr=lr_at(trial, epoch),
                        epoch_seconds=max(seconds, 1e-3), images_per_second=images / max(seconds, 1e-3))


def train_trial(trial: TrialConfig, dataset_dir: str | Path, checkpoint_dir: str | Path, report=None, *,
                cpus: int | None = None, gpu: float | None = None, shard_index: int = 0, num_shards: int = 1,
                step_seconds: float = STEP_SECONDS, fail: dict | None = None, diverge: dict | None = None,
                hang: dict | None = None) -> TrialOutcome:
    """``trainer.train_trial``'s contract with sleeps for training. Options: ``step_seconds`` per step (an epoch
    takes its steps times that, so batch 32 takes 4x batch 128, as in real training); ``fail``, ``diverge`` and
    ``hang`` map a trial key (or ``"*"``, every trial) to the 1-based epoch at which that trial raises RuntimeError
    (on every attempt), reports NaN losses and ends ``diverged``, or sleeps until it is killed."""
    report = report or (lambda m: None)
    global_batch = trial.batch_size * trial.replicas
    images = _train_images(dataset_dir) // num_shards
    steps = images // global_batch
    if steps < 1:
        raise ValueError(f"batch {global_batch} is larger than the {images} training images")
    saved = checkpoints.load_state(checkpoint_dir)
    start, history = saved if saved is not None else (0, [])
    for m in history:
        report(m)
    for epoch in range(start, trial.train.epochs):
        if _epoch_of(hang, trial.key) == epoch + 1:
            while True:
                time.sleep(60)
        if _epoch_of(fail, trial.key) == epoch + 1:
            raise RuntimeError(f"fake trainer: {trial.key} fails at epoch {epoch + 1}, as told")
        t0 = time.perf_counter()
        time.sleep(steps * step_seconds)
        diverged = _epoch_of(diverge, trial.key) == epoch + 1
        metrics = _metrics(trial, epoch, steps * global_batch, time.perf_counter() - t0, diverged)
        history.append(metrics)
        if diverged:
            report(metrics)
            return TrialOutcome("diverged", epoch + 1, tuple(history), final_error([m.val_err for m in history]))
        model = _Model(pid=os.getpid(), cpus=cpus, gpu=gpu, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                       resumed_from=start)
        checkpoints.save(checkpoint_dir, model, epoch + 1, history)
        report(metrics)
    return TrialOutcome("completed", len(history), tuple(history), final_error([m.val_err for m in history]))
