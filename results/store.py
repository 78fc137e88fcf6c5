"""Reading and writing a sweep's Parquet tables and ``sweep.json`` as typed records, one small file per row, each
appearing atomically, and each checked against its schema when read back.

``epochs/<trial_key>-e<epoch>.parquet`` holds one epoch of one trial: the first write wins, so re-reported epochs
(after a crash or resume) can never duplicate a row. ``trials/<trial_key>.parquet`` is replaced whenever the
trial's status changes. A file is written whole under a hidden name and renamed (locally), or uploaded in one piece
(object stores), so readers never see a partial file (pyarrow ignores names starting with '.'). A sweep directory is
a local path or a URI (``trainer.storage``). A file that is not a table of the expected schema (or a ``sweep.json``
that is not a sweep record) raises DamagedResults naming it: no row is ever made up from a foreign file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from results.records import ClaimRow, EpochRow, SweepRecord, TrialRow
from results.schema import ADDED_LATER, CLAIM_SCHEMA, EPOCH_SCHEMA, TRIAL_SCHEMA
from trainer.storage import Location

EPOCHS = "epochs"
TRIALS = "trials"
SWEEP_FILE = "sweep.json"
CLAIMS_FILE = "claims.parquet"  # in a report's folder
Where = str | Path | Location
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


class StoreError(Exception):
    """A results file could not be written (disk full, read-only or missing directory); one line naming the file.
    What was written before stays readable."""


class RowError(ValueError):
    """A record whose values do not fit its table's schema; nothing was written."""


class DamagedResults(Exception):
    """A results file that is not what gnsweep wrote there (not Parquet, empty, another table's columns, broken
    JSON); one line naming the file and what to do."""


def _damaged(where: Location, what: str, why: str) -> DamagedResults:
    why = " ".join(str(why).split())[:200]
    return DamagedResults(f"{where}: not {what} ({why}); move the file out of the sweep's folder (or restore it "
                          f"from a backup) and run again")


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except _ARROW_ERRORS as e:
        raise RowError(f"a row does not fit the table's schema: {e}") from None


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


def write_epoch_row(sweep_dir: Where, row: EpochRow) -> bool:
    """Write one (trial_key, epoch) row unless it is already there; returns whether it wrote."""
    where = epoch_file(sweep_dir, row.trial_key, row.epoch)
    if where.exists():
        return False
    _write_atomic(_table([row.to_dict()], EPOCH_SCHEMA), where)
    return True


def write_trial_row(sweep_dir: Where, row: TrialRow) -> None:
    """Replace the trial's row in the trials table."""
    _write_atomic(_table([row.to_dict()], TRIAL_SCHEMA), Location.of(sweep_dir) / TRIALS / f"{row.trial_key}.parquet")


def write_claim_rows(report_dir: Where, rows: list[ClaimRow]) -> Location:
    """Replace ``report_dir/claims.parquet`` with these rows (an empty table when there are none); returns where."""
    where = Location.of(report_dir) / CLAIMS_FILE
    _write_atomic(_table([r.to_dict() for r in rows], CLAIM_SCHEMA), where)
    return where


def _conform(table: pa.Table, schema: pa.Schema, where: Location, what: str) -> pa.Table:
    """``table`` as ``schema``: every column it must have present and castable, columns added later null in files
    written before them, and the key columns never null."""
    missing = [n for n in schema.names if n not in table.column_names]
    if [n for n in missing if n not in ADDED_LATER]:
        raise _damaged(where, what, f"no column {', '.join(n for n in missing if n not in ADDED_LATER)[:120]}")
    columns = [table[n] if n in table.column_names else pa.nulls(len(table), schema.field(n).type)
               for n in schema.names]
    try:
        table = pa.Table.from_arrays(columns, names=schema.names).cast(schema)
    except _ARROW_ERRORS as e:
        raise _damaged(where, what, e) from None
    for key in ("trial_key", "epoch") if schema is EPOCH_SCHEMA else ("trial_key", "status"):
        if table[key].null_count:
            raise _damaged(where, what, f"a row without {key}")
    return table


def _read(directory: Location, schema: pa.Schema, what: str, pattern: str = "*.parquet") -> pa.Table:
    tables = []
    for f in directory.files(pattern):
        try:
            table = pq.read_table(f.path, filesystem=f.fs)
        except _ARROW_ERRORS + (OSError,) as e:
            raise _damaged(f, what, e) from None
        tables.append(_conform(table, schema, f, what))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _epochs(sweep_dir: Where, trial_key: str | None) -> pa.Table:
    pattern = f"{trial_key}-e*.parquet" if trial_key else "*.parquet"
    table = _read(Location.of(sweep_dir) / EPOCHS, EPOCH_SCHEMA, "a table of epoch rows", pattern)
    return table.sort_by([("trial_key", "ascending"), ("epoch", "ascending")])


def _trials(sweep_dir: Where) -> pa.Table:
    table = _read(Location.of(sweep_dir) / TRIALS, TRIAL_SCHEMA, "a table of trial rows")
    return table.sort_by("trial_key")


def read_epochs(sweep_dir: Where, trial_key: str | None = None) -> pd.DataFrame:
    """The epochs table (one row per trial and epoch), optionally of one trial, sorted by trial and epoch."""
    return _epochs(sweep_dir, trial_key).to_pandas()


def read_trials(sweep_dir: Where) -> pd.DataFrame:
    """The trials table, one row per trial."""
    return _trials(sweep_dir).to_pandas()


def read_epoch_rows(sweep_dir: Where, trial_key: str | None = None) -> list[EpochRow]:
    """The epochs table as records, optionally of one trial, sorted by trial and epoch."""
    return [EpochRow(**r) for r in _epochs(sweep_dir, trial_key).to_pylist()]


def read_trial_rows(sweep_dir: Where) -> dict[str, TrialRow]:
    """The trials table as records, by trial key."""
    return {r["trial_key"]: TrialRow(**r) for r in _trials(sweep_dir).to_pylist()}


def read_sweep(sweep_dir: Where) -> SweepRecord | None:
    """The sweep's ``sweep.json``, or None where there is none."""
    where = Location.of(sweep_dir) / SWEEP_FILE
    if not where.exists():
        return None
    try:
        return SweepRecord.from_json(json.loads(where.read_text()))
    except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _damaged(where, "a sweep record written by gnsweep launch", e) from None


def write_sweep(sweep_dir: Where, record: SweepRecord) -> None:
    where = Location.of(sweep_dir) / SWEEP_FILE
    try:
        where.write_text(json.dumps(record.to_json(), indent=2))
    except OSError as e:
        raise StoreError(f"cannot write {where}: {str(e).splitlines()[0]}") from None


def check_sweep(sweep_dir: Where) -> None:
    """Read every results file of the sweep, raising DamagedResults at the first that is not what it should be."""
    read_sweep(sweep_dir)
    _trials(sweep_dir)
    _epochs(sweep_dir, None)
