"""Rows checked for sense, not only for schema: a table can have every column right and still be wrong (an epoch 0,
an error of 250 %, the same epoch twice). ``status`` and ``report`` would believe such rows, so the store names the
file and the field instead (DamagedResults), as it does for a file that is not Parquet at all.

Errors are percentages in 0-100, or NaN (null): what a diverged trial records. Whether a trial diverged is its trials
row's word, not its epoch rows', so an epoch row's NaN is taken as that; an infinite error is not a percentage.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa

from results.damage import damaged, quoted
from results.schema import TrialStatus

EPOCH_ERRORS = ("train_err", "val_err", "val_err_top5")
RECORDED_STATUSES = tuple(s.value for s in TrialStatus if s is not TrialStatus.UNKNOWN)  # what a trials row can say
TRIAL_ERRORS = ("final_val_err", "best_val_err")
EPOCHS_WHAT = "a table of epoch rows"
TRIALS_WHAT = "a table of trial rows"


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(float)  # null becomes NaN


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _out_of_range(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        inside = (values >= 0.0) & (values <= 100.0)
    return ~(inside | np.isnan(values))


def _check_errors(table: pa.Table, names, where, what: str, row: Callable[[int], str]) -> None:
    """Each column of ``names`` holds percentages 0-100 (or NaN); ``row(i)`` names row i in the message."""
    for name in names:
        values = _floats(table, name)
        bad = _first(_out_of_range(values))
        if bad is not None:
            raise damaged(where, what, f"{name}: {float(values[bad])!r} {row(bad)}; errors are percentages, 0-100")


def check_epochs(table: pa.Table, where) -> None:
    """Every row of one file of epoch rows makes sense: epochs count from 1, errors are 0-100 % (or NaN)."""
    if not len(table):
        return
    keys = table["trial_key"].to_pylist()
    epochs = table["epoch"].to_numpy(zero_copy_only=False)
    bad = _first(epochs < 1)
    if bad is not None:
        raise damaged(where, EPOCHS_WHAT, f"epoch: {int(epochs[bad])} in trial {quoted(keys[bad])}; epochs count "
                                          f"from 1")
    _check_errors(table, EPOCH_ERRORS, where, EPOCHS_WHAT,
                  lambda i: f"in trial {quoted(keys[i])} epoch {int(epochs[i])}")


def check_trials(table: pa.Table, where) -> None:
    """Every row of one file of trial rows makes sense: a known status, epochs done >= 0, errors 0-100 % or none."""
    if not len(table):
        return
    keys = table["trial_key"].to_pylist()
    for i, status in enumerate(table["status"].to_pylist()):
        if status not in RECORDED_STATUSES:
            raise damaged(where, TRIALS_WHAT, f"status: {quoted(status)} of trial {quoted(keys[i])} is not a "
                                              f"trial status")
    epochs = table["epochs"].to_numpy(zero_copy_only=False).astype(float)
    bad = _first(epochs < 0)
    if bad is not None:
        raise damaged(where, TRIALS_WHAT, f"epochs: {int(epochs[bad])} done by trial {quoted(keys[bad])}")
    _check_errors(table, TRIAL_ERRORS, where, TRIALS_WHAT, lambda i: f"of trial {quoted(keys[i])}")


def check_unique(parts: list, columns: tuple[str, ...], what: str) -> None:
    """No row key (``columns``' values) in two rows of the files ``parts`` (``(where, table)`` pairs, in the order
    a reader meets them); the later file is named, with the earlier one."""
    seen: dict[tuple, object] = {}
    for where, table in parts:
        for key in zip(*(table[c].to_pylist() for c in columns)):
            if key in seen:
                shown = " ".join(f"{c} {quoted(v)}" for c, v in zip(columns, key))
                first = seen[key]
                other = "this file twice" if first is where else f"{getattr(first, 'name', first)} too"
                raise damaged(where, what, f"{', '.join(columns)}: {shown} is in {other}; one row each")
            seen[key] = where
