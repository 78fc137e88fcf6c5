"""Reading and writing a sweep's Parquet tables and JSON files as typed records, each file appearing whole,
each checked against its schema and for sense when read back.

``epochs/<trial_key>.parquet`` holds every epoch of one trial, one row each, and is replaced whole when the trial
reports an epoch (``results.folding`` says why that keeps readers exact and how sweeps written one file per row are
folded into it). ``trials/<trial_key>.parquet`` is replaced whenever the trial's status changes. A file is written
whole under a hidden name and renamed (locally), or uploaded in one piece (object stores), so readers never see a
partial file (pyarrow ignores names starting with '.'). A sweep directory is a local path or a URI
(``trainer.storage``). A file that is not a table of the expected schema, or whose rows make no sense
(``results.sense``), or a JSON file (``sweep.json``, ``plan.json``, ``launch.json``) with a field that is not what
gnsweep writes there, raises DamagedResults naming it and the field: no row is ever made up from a foreign file.

Readers fetch a folder's files in parallel; a ``SweepTables`` kept between reads fetches only what changed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from results import folding, sense
from results.damage import DamagedResults, damaged
from results.parquet_folder import ARROW_ERRORS, ParquetFolder, StoreError, write_file
from results.records import ClaimRow, EpochRow, LaunchRecord, PlanRecord, SweepRecord, TrialRow, from_json_text
from results.schema import CLAIM_SCHEMA, EPOCH_SCHEMA, TRIAL_SCHEMA
from trainer.storage import Location

if TYPE_CHECKING:  # the readers' return type; to_pandas() imports pandas, not loading a spec or taking a claim
    import pandas as pd

__all__ = ["DamagedResults", "RowError", "StoreError", "SweepTables", "check_sweep", "fold_sweep", "fold_trial",
           "launch_file", "read_epoch_rows", "read_epochs", "read_launch", "read_plan", "read_sweep", "read_trial_rows",
           "read_trials", "trial_epochs_file", "write_claim_rows", "write_epoch_row", "write_plan", "write_sweep",
           "write_trial_epochs", "write_trial_row"]

EPOCHS = "epochs"
TRIALS = "trials"
SWEEP_FILE = "sweep.json"
PLAN_FILE = "plan.json"
LAUNCH_FILE = "launch.json"
CLAIMS_FILE = "claims.parquet"  # in a report's folder
Where = str | Path | Location


class RowError(ValueError):
    """A record whose values do not fit its table's schema; nothing was written."""


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except ARROW_ERRORS as e:
        raise RowError(f"a row does not fit the table's schema: {e}") from None


def trial_epochs_file(sweep_dir: Where, trial_key: str) -> Location:
    return Location.of(sweep_dir) / EPOCHS / folding.trial_file_name(trial_key)


def write_trial_epochs(sweep_dir: Where, trial_key: str, rows: Sequence[EpochRow]) -> None:
    """Replace the trial's epochs file with ``rows``: all its epochs, one row each (in any order). The trial must
    have no row files of the old layout left (``fold_trial``), or readers would see those rows twice."""
    epochs = [r.epoch for r in rows]
    if len(set(epochs)) != len(epochs) or any(r.trial_key != trial_key for r in rows):
        raise RowError(f"rows of {trial_key}: one row per epoch of this trial only")
    table = _table([r.to_dict() for r in sorted(rows, key=lambda r: r.epoch)], EPOCH_SCHEMA)
    write_file(table, trial_epochs_file(sweep_dir, trial_key))


def write_epoch_row(sweep_dir: Where, row: EpochRow) -> bool:
    """Add one (trial_key, epoch) row unless the trial already has that epoch (the first write wins); returns
    whether it wrote. Reads and rewrites the trial's file: a writer of many rows keeps them (``write_trial_epochs``)."""
    rows = fold_trial(sweep_dir, row.trial_key)
    if any(r.epoch == row.epoch for r in rows):
        return False
    write_trial_epochs(sweep_dir, row.trial_key, [*rows, row])
    return True


def write_trial_row(sweep_dir: Where, row: TrialRow) -> None:
    """Replace the trial's row in the trials table."""
    write_file(_table([row.to_dict()], TRIAL_SCHEMA), Location.of(sweep_dir) / TRIALS / f"{row.trial_key}.parquet")


def write_claim_rows(report_dir: Where, rows: list[ClaimRow]) -> Location:
    """Replace ``report_dir/claims.parquet`` with these rows (an empty table when there are none); returns where."""
    where = Location.of(report_dir) / CLAIMS_FILE
    write_file(_table([r.to_dict() for r in rows], CLAIM_SCHEMA), where)
    return where


class SweepTables:
    """A sweep's two tables, read through one object that keeps what it read: each read lists the folders again and
    fetches (in parallel) only the files that changed since, so ``status --watch`` refetches only what its running
    trials rewrote. Raises DamagedResults naming the first file that is not what gnsweep wrote."""

    def __init__(self, sweep_dir: Where):
        self.sweep_dir = Location.of(sweep_dir)
        self._epochs = ParquetFolder(self.sweep_dir / EPOCHS, EPOCH_SCHEMA, sense.EPOCHS_WHAT,
                                     subfolders=(folding.STAGED,), check=sense.check_epochs)
        self._trials = ParquetFolder(self.sweep_dir / TRIALS, TRIAL_SCHEMA, sense.TRIALS_WHAT,
                                     check=sense.check_trials)
        self._memo: dict[str, tuple[tuple, pa.Table]] = {}

    def _memoised(self, name: str, parts, build) -> pa.Table:
        """``build()`` unless the files read are the very ones it was last built from (the same table objects, held
        here so that none is freed and its id reused)."""
        tables = tuple(p.table for p in parts)
        last = self._memo.get(name)
        if last is None or len(last[0]) != len(tables) or any(a is not b for a, b in zip(last[0], tables)):
            self._memo[name] = (tables, build())
        return self._memo[name][1]

    def epoch_parts(self, trial_key: str | None = None):
        return self._epochs.read(None if trial_key is None else folding.names_of(trial_key))

    def epochs(self, trial_key: str | None = None) -> pa.Table:
        """The epochs table (one row per trial and epoch), optionally of one trial, sorted by trial and epoch."""
        parts = self.epoch_parts(trial_key)

        def build() -> pa.Table:
            table = folding.assemble(parts, EPOCH_SCHEMA)
            if trial_key is not None:
                return _of_trial(table, trial_key)
            return table.sort_by([("trial_key", "ascending"), ("epoch", "ascending")])

        return self._memoised(f"epochs:{trial_key}", parts, build)

    def trials(self) -> pa.Table:
        """The trials table, one row per trial, sorted by trial."""
        parts = self._trials.read()

        def build() -> pa.Table:
            sense.check_unique([(p.where, p.table) for p in parts], ("trial_key",), sense.TRIALS_WHAT)
            tables = [p.table for p in parts]
            return (pa.concat_tables(tables) if tables else TRIAL_SCHEMA.empty_table()).sort_by("trial_key")

        return self._memoised("trials", parts, build)


def _of_trial(table: pa.Table, trial_key: str) -> pa.Table:
    return table.filter(pc.equal(table["trial_key"], trial_key)).sort_by("epoch")


def fold_trial(sweep_dir: Where, trial_key: str) -> list[EpochRow]:
    """The trial's epoch rows, its files of the old layout folded into its own file first (``results.folding``).
    Only the launch holding the sweep's claim may call this (it writes)."""
    tables = SweepTables(sweep_dir)
    parts = tables.epoch_parts(trial_key)
    table = folding.assemble(parts, EPOCH_SCHEMA)  # damaged files are named before anything is written
    todo = folding.needs_fold(parts).get(trial_key)
    if todo:
        table = folding.fold(tables.sweep_dir / EPOCHS, trial_key, todo)
    return _rows(_of_trial(table, trial_key))


def fold_sweep(sweep_dir: Where) -> list[str]:
    """Fold every trial of the sweep that has files of the old layout (or a fold a kill left unfinished); returns
    their keys. Reads every epochs file first, so a damaged one is named before anything is written."""
    tables = SweepTables(sweep_dir)
    parts = tables.epoch_parts()
    folding.assemble(parts, EPOCH_SCHEMA)
    todo = folding.needs_fold(parts)
    for key, trial_parts in todo.items():
        folding.fold(tables.sweep_dir / EPOCHS, key, trial_parts)
    folding.remove_dead_temporaries(tables.sweep_dir / EPOCHS)  # parts of writes a kill cut short
    return list(todo)


def _rows(table: pa.Table) -> list[EpochRow]:
    return [EpochRow(**r) for r in table.to_pylist()]


def read_epochs(sweep_dir: Where, trial_key: str | None = None) -> pd.DataFrame:
    """The epochs table (one row per trial and epoch), optionally of one trial, sorted by trial and epoch."""
    return SweepTables(sweep_dir).epochs(trial_key).to_pandas()


def read_trials(sweep_dir: Where) -> pd.DataFrame:
    """The trials table, one row per trial."""
    return SweepTables(sweep_dir).trials().to_pandas()


def read_epoch_rows(sweep_dir: Where, trial_key: str | None = None) -> list[EpochRow]:
    """The epochs table as records, optionally of one trial, sorted by trial and epoch."""
    return _rows(SweepTables(sweep_dir).epochs(trial_key))


def read_trial_rows(sweep_dir: Where) -> dict[str, TrialRow]:
    """The trials table as records, by trial key."""
    return {r["trial_key"]: TrialRow(**r) for r in SweepTables(sweep_dir).trials().to_pylist()}


def _read_json(where: Location, record_type: type, what: str):
    """The record in the JSON file ``where``, or None where there is none; DamagedResults naming the file and its
    first wrong field for anything else (broken JSON, a wrong type, a directory in its place)."""
    try:
        if not where.exists():
            return None
        text = where.read_text()
    except (OSError, ValueError) as e:  # IsADirectoryError, UnicodeDecodeError
        raise damaged(where, what, e.strerror if isinstance(e, OSError) and e.strerror else e) from None
    try:
        return from_json_text(record_type, text)
    except ValueError as e:
        raise damaged(where, what, e) from None


def _write_json(where: Location, record) -> None:
    try:
        where.write_text(json.dumps(record.to_json(), indent=1))
    except OSError as e:
        raise StoreError(f"cannot write {where}: {str(e).splitlines()[0]}") from None


def read_sweep(sweep_dir: Where) -> SweepRecord | None:
    """The sweep's ``sweep.json``, or None where there is none."""
    return _read_json(Location.of(sweep_dir) / SWEEP_FILE, SweepRecord, "a sweep record written by gnsweep launch")


def write_sweep(sweep_dir: Where, record: SweepRecord) -> None:
    _write_json(Location.of(sweep_dir) / SWEEP_FILE, record)


def read_plan(sweep_dir: Where) -> PlanRecord | None:
    """The sweep's ``plan.json`` (estimates, resources, shared runs), or None where there is none."""
    return _read_json(Location.of(sweep_dir) / PLAN_FILE, PlanRecord, "a plan written by gnsweep launch")


def write_plan(sweep_dir: Where, record: PlanRecord) -> None:
    _write_json(Location.of(sweep_dir) / PLAN_FILE, record)


def launch_file(sweep_dir: Where) -> Location:
    return Location.of(sweep_dir) / LAUNCH_FILE


def read_launch(sweep_dir: Where) -> LaunchRecord | None:
    """The sweep's ``launch.json`` (the claim of the launch that runs it), or None where there is none. Whether it
    is live is ``LaunchRecord.live``; an impossible claim is never live."""
    return _read_json(launch_file(sweep_dir), LaunchRecord, "a launch claim written by gnsweep launch")


def check_sweep(sweep_dir: Where) -> None:
    """Read every results file of the sweep, raising DamagedResults at the first that is not what it should be."""
    read_sweep(sweep_dir)
    read_plan(sweep_dir)
    read_launch(sweep_dir)
    tables = SweepTables(sweep_dir)
    tables.trials()
    tables.epochs()
