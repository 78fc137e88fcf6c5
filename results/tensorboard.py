"""Each epoch row as TensorBoard scalars: one run per trial under ``<sweep>/tensorboard/<trial_key>/``, so
``tensorboard --logdir results/NAME/tensorboard`` draws every trial's curves.

One event file per (trial, epoch), named by the epoch and written whole, first write wins (like the Parquet rows):
an epoch reported again after a crash or resume never draws a second point. Files appear in epoch order, which is
the order TensorBoard reads a run's files in. File 0 holds the trial's hyperparameters (norm, batch size, groups,
...) as the HParams plugin's session start, so its HParams view can filter and compare trials by them; TensorBoard
derives the experiment (the hyperparameters' domains, the metrics) from the runs. The protobufs come from
``tensorboardX`` (installed with Ray Tune); no TensorFlow in the driver. Without it, nothing is written and the sweep
goes on.
"""
from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

from trainer.storage import Location

TENSORBOARD = "tensorboard"
SCALARS = {  # TensorBoard tag -> epoch row column; the prefix before '/' is the section TensorBoard groups by
    "error/train": "train_err", "error/val": "val_err", "error/val_top5": "val_err_top5",
    "loss/train": "train_loss", "loss/val": "val_loss", "lr": "lr",
    "speed/images_per_second": "images_per_second", "speed/epoch_seconds": "epoch_seconds",
}


HPARAMS = ("model", "norm", "batch_size", "groups", "channels_per_group", "seed", "precision")  # epoch row columns


def run_dir(sweep_dir: str | Path | Location, trial_key: str) -> Location:
    return Location.of(sweep_dir) / TENSORBOARD / trial_key


def event_file(sweep_dir: str | Path | Location, trial_key: str, epoch: int) -> Location:
    return run_dir(sweep_dir, trial_key) / f"events.out.tfevents.{epoch:06d}.gnsweep"


def hparams_file(sweep_dir: str | Path | Location, trial_key: str) -> Location:
    return event_file(sweep_dir, trial_key, 0)


def _record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC32C, the data, its masked CRC32C."""
    from tensorboardX.record_writer import masked_crc32c

    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def event_bytes(row: dict) -> bytes:
    """A whole event file for one epoch row: the version record, then one event with every finite scalar."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary

    at = row.get("recorded_at")
    wall = at.timestamp() if isinstance(at, datetime) else 0.0
    values = [Summary.Value(tag=tag, simple_value=float(row[col])) for tag, col in SCALARS.items()
              if row.get(col) is not None]
    version = Event(wall_time=wall, file_version="brain.Event:2")
    scalars = Event(wall_time=wall, step=int(row["epoch"]), summary=Summary(value=values))
    return _record(version.SerializeToString()) + _record(scalars.SerializeToString())


def hparams_bytes(row: dict) -> bytes:
    """A whole event file holding the HParams session start of the trial of ``row`` (an epoch row: its config
    columns); a null value (BN's group count) is left out, as TensorBoard has no null."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.summary import hparams

    at = row.get("recorded_at")
    wall = at.timestamp() if isinstance(at, datetime) else 0.0
    values = {k: row[k] for k in HPARAMS if row.get(k) is not None}
    _, session_start, _ = hparams(values, {})
    version = Event(wall_time=wall, file_version="brain.Event:2")
    start = Event(wall_time=wall, step=0, summary=session_start)
    return _record(version.SerializeToString()) + _record(start.SerializeToString())


def write_epoch_scalars(sweep_dir: str | Path | Location, row: dict) -> bool:
    """Write the epoch row's scalars unless that (trial, epoch) already has its event file; returns whether it
    wrote. A failure to write (disk full, tensorboardX missing) loses only the curve, never the sweep."""
    return _write_once(event_file(sweep_dir, row["trial_key"], int(row["epoch"])), event_bytes, row)


def write_hparams(sweep_dir: str | Path | Location, row: dict) -> bool:
    """Write the hyperparameters of the trial of ``row`` (an epoch row) unless its run has them; returns whether it
    wrote. Like the scalars, a failure loses only TensorBoard's view."""
    return _write_once(hparams_file(sweep_dir, row["trial_key"]), hparams_bytes, row)


def _write_once(where: Location, make, row: dict) -> bool:
    try:
        if where.exists():
            return False
        data = make(row)
        where.write_bytes(data)  # whole, atomically: TensorBoard never reads half an event file
    except (ImportError, OSError):
        return False
    return True
