"""Reading and writing a sweep's Parquet tables, one small file per row, each appearing atomically.

``epochs/<trial_key>-e<epoch>.parquet`` holds one epoch of one trial: the first write wins, so re-reported epochs
(after a crash or resume) can never duplicate a row. ``trials/<trial_key>.parquet`` is replaced whenever the
trial's status changes. A file is written whole under a hidden name and renamed (locally), or uploaded in one piece
(object stores), so readers never see a partial file (pyarrow ignores names starting with '.'). A sweep directory is
a local path or a URI (``trainer.storage``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from trainer.storage import Location

EPOCHS = "epochs"
TRIALS = "trials"
Where = str | Path | Location


class StoreError(Exception):
    """A results file could not be written (disk full, read-only or missing directory); one line naming the file.
    What was written before stays readable."""


def _write_atomic(table: pa.Table, where: Location) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    try:
        where.write_bytes(sink.getvalue().to_pybytes())
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e).splitlines()[0]
        raise StoreError(f"cannot write {where}: {reason}") from e


def epoch_file(sweep_dir: Where, trial_key: str, epoch: int) -> Location:
    return Location.of(sweep_dir) / EPOCHS / f"{trial_key}-e{epoch:04d}.parquet"


def write_epoch_row(sweep_dir: Where, row: dict) -> bool:
    """Write one (trial_key, epoch) row unless it is already there; returns whether it wrote."""
    where = epoch_file(sweep_dir, row["trial_key"], row["epoch"])
    if where.exists():
        return False
    _write_atomic(pa.Table.from_pylist([row], schema=EPOCH_SCHEMA), where)
    return True


def write_trial_row(sweep_dir: Where, row: dict) -> None:
    """Replace the trial's row in the trials table."""
    _write_atomic(pa.Table.from_pylist([row], schema=TRIAL_SCHEMA),
                  Location.of(sweep_dir) / TRIALS / f"{row['trial_key']}.parquet")


def _read(directory: Location, schema: pa.Schema, pattern: str = "*.parquet") -> pd.DataFrame:
    files = directory.files(pattern)
    if not files:
        return schema.empty_table().to_pandas()
    return pa.concat_tables(pq.read_table(f.path, filesystem=f.fs, schema=schema) for f in files).to_pandas()


def read_epochs(sweep_dir: Where, trial_key: str | None = None) -> pd.DataFrame:
    """The epochs table (one row per trial and epoch), optionally of one trial, sorted by trial and epoch."""
    pattern = f"{trial_key}-e*.parquet" if trial_key else "*.parquet"
    df = _read(Location.of(sweep_dir) / EPOCHS, EPOCH_SCHEMA, pattern)
    return df.sort_values(["trial_key", "epoch"], ignore_index=True)


def read_trials(sweep_dir: Where) -> pd.DataFrame:
    """The trials table, one row per trial."""
    return _read(Location.of(sweep_dir) / TRIALS, TRIAL_SCHEMA).sort_values("trial_key", ignore_index=True)
