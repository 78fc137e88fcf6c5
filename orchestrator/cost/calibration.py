"""The calibration table: measured speed of each trial shape on one device, one Parquet file per device beside the
results (``<results>/calibration/<device>.parquet``), read with ``pd.read_parquet``. Written by ``gnsweep
calibrate``; read by every estimate (no TensorFlow needed to read it)."""
from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.cost.devices import slug
from orchestrator.cost.estimate import SHAPE_COLUMNS
from trainer.storage import Location

CALIBRATION_DIR = "calibration"

CALIBRATION_SCHEMA = pa.schema([
    pa.field("device", pa.string()),
    pa.field("model", pa.string()),
    pa.field("norm", pa.string()),
    pa.field("batch_size", pa.int32()),
    pa.field("replicas", pa.int32()),
    pa.field("precision", pa.string()),
    pa.field("height", pa.int32()),
    pa.field("width", pa.int32()),
    pa.field("cpus", pa.float64()),  # the trial's CPU share the measurement ran with (TensorFlow's thread pools)
    pa.field("steps_timed", pa.int32()),
    pa.field("steps_per_second", pa.float64()),  # steady state, after the warm-up steps
    pa.field("images_per_second", pa.float64()),
    pa.field("epoch_overhead_seconds", pa.float64()),  # per fit() call: fresh iterator, shuffle fill, callbacks
    pa.field("val_seconds_per_image", pa.float64()),
    pa.field("checkpoint_seconds", pa.float64()),  # one checkpoint save (every epoch)
    pa.field("startup_seconds", pa.float64()),  # model build, compile, the first steps (tracing, XLA, data cache)
    pa.field("import_seconds", pa.float64()),  # TensorFlow and Keras import in a fresh process
    pa.field("peak_memory_bytes", pa.int64()),  # null when not measured
    pa.field("memory_kind", pa.string()),  # device peak | RSS peak growth | not measured
    pa.field("data", pa.string()),  # the dataset measured on (real, or generated shards of its shape)
    pa.field("measured_at", pa.timestamp("ms", tz="UTC")),
])


def calibration_file(results, device: str) -> Location:
    return Location.of(results) / CALIBRATION_DIR / f"{slug(device)}.parquet"


def calibrated_devices(results) -> list[str]:
    """The devices ``gnsweep calibrate`` measured under ``results`` (their file names: ``nvidia-h200``)."""
    try:
        return [f.name[: -len(".parquet")] for f in (Location.of(results) / CALIBRATION_DIR).files("*.parquet")]
    except (OSError, ValueError):
        return []


def read_calibration(results, device: str) -> pd.DataFrame:
    """The device's calibration rows (empty when it has none, or the file cannot be read)."""
    where = calibration_file(results, device)
    try:
        if not where.exists():
            return CALIBRATION_SCHEMA.empty_table().to_pandas()
        return pq.read_table(io.BytesIO(where.read_bytes()), schema=CALIBRATION_SCHEMA).to_pandas()
    except (OSError, pa.ArrowException):
        return CALIBRATION_SCHEMA.empty_table().to_pandas()


def write_calibration(results, device: str, rows: list[dict]) -> Location:
    """Add ``rows`` to the device's table, replacing earlier rows of the same shapes; written whole, atomically."""
    old = read_calibration(results, device)
    new = pa.Table.from_pylist(rows, schema=CALIBRATION_SCHEMA).to_pandas()
    keys = set(map(tuple, new[SHAPE_COLUMNS].astype(object).values.tolist()))
    keep = old[[tuple(r) not in keys for r in old[SHAPE_COLUMNS].astype(object).values.tolist()]]
    table = pa.Table.from_pandas(pd.concat([keep, new], ignore_index=True) if len(keep) else new,
                                 schema=CALIBRATION_SCHEMA, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    where = calibration_file(results, device)
    where.write_bytes(sink.getvalue().to_pybytes())
    return where
