"""The driver-side writer: a Ray Tune callback that turns each reported epoch into a Parquet row as it arrives and
keeps the trials table current (running, completed, diverged, failed)."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from ray import tune

from results import store, tensorboard
from results.schema import FINAL_EPOCHS
from trainer.storage import Location

EPOCH_METRICS = ("train_loss", "train_err", "val_loss", "val_err", "val_err_top5", "lr", "epoch_seconds",
                 "images_per_second")


def now() -> datetime:
    return datetime.now(timezone.utc)


def config_columns(sweep: str, trial_key: str, trial: dict) -> dict:
    return {"sweep": sweep, "trial_key": trial_key, "model": trial["model"], "norm": trial["norm"],
            "batch_size": trial["batch_size"], "groups": trial.get("groups"),
            "channels_per_group": trial.get("channels_per_group"), "seed": trial["seed"]}


def trial_row(sweep_dir: store.Where, base: dict, *, status: str, error: str | None = None) -> dict:
    """A trials-table row whose figures come from the epochs on disk, so it is right after any crash."""
    epochs = store.read_epochs(sweep_dir, base["trial_key"])
    errs = epochs["val_err"].to_numpy(dtype=float)
    finite = errs[np.isfinite(errs)]
    return {**base, "status": status, "epochs": len(epochs), "error": error,
            "final_val_err": float(np.median(errs[-FINAL_EPOCHS:])) if len(errs) else None,
            "best_val_err": float(finite.min()) if len(finite) else None,
            "train_seconds": float(epochs["epoch_seconds"].sum()) if len(epochs) else 0.0,
            "ended_at": now() if status in ("completed", "failed", "diverged") else None}


def plain(value):
    """A value of a row read back with pandas as the plain Python value it was written from: pandas turns a null
    int32 into NaN, a null timestamp into NaT and a list into an ndarray, which pyarrow refuses to write back."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return value
    if value is None or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if isinstance(value, np.generic) else value


def error_message(trial) -> str:
    """The last line of the trial's traceback (e.g. ``ValueError: ...``)."""
    path = trial.error_file
    try:
        lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1] if lines else "trial failed"


class ResultsWriter(tune.Callback):
    """Writes ``epochs/`` rows on every result and the trial's ``trials/`` row on every status change."""

    def __init__(self, sweep_dir: store.Where, sweep: str, studies: dict[str, tuple[str, ...]], prior: dict[str, dict]):
        self.sweep_dir = Location.of(sweep_dir)
        self.sweep = sweep
        self.studies = studies  # trial_key -> studies
        # trial_key -> trials row of earlier launches (as read back with pandas)
        self.rows = {key: {k: plain(v) for k, v in row.items()} for key, row in prior.items()}
        self.diverged: set[str] = set()
        self.failure: store.StoreError | None = None  # the first results file that could not be written

    def _store(self, write, row: dict) -> None:
        """Write a row; a StoreError stops the sweep (Tune re-raises it from ``fit``, wrapped in a TuneError), so it
        is kept here for the launcher to report as one line."""
        try:
            write(self.sweep_dir, row)
        except store.StoreError as e:
            self.failure = self.failure or e
            raise

    def _base(self, trial) -> dict:
        key = trial.config["trial"]["key"]
        if key not in self.rows:
            self.rows[key] = {**config_columns(self.sweep, key, trial.config["trial"]["config"]), "attempts": 0,
                              "started_at": None, "studies": list(self.studies.get(key, ()))}
        row = self.rows[key]
        row["studies"] = list(self.studies.get(key, row.get("studies") or ()))
        return row

    def _update(self, trial, status: str, error: str | None = None) -> None:
        row = trial_row(self.sweep_dir, self._base(trial), status=status, error=error)
        self.rows[row["trial_key"]] = row
        self._store(store.write_trial_row, row)

    def on_trial_start(self, iteration, trials, trial, **info):
        base = self._base(trial)
        base["attempts"] = int(base.get("attempts") or 0) + 1
        base["started_at"] = base.get("started_at") or now()
        self._update(trial, "running")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        base = self._base(trial)
        row = {**{k: base[k] for k in ("sweep", "trial_key", "model", "norm", "batch_size", "groups",
                                       "channels_per_group", "seed")},
               **{k: float(result[k]) for k in EPOCH_METRICS}, "epoch": int(result["epoch"]),
               "attempt": int(base["attempts"]) - 1, "node": result.get("node"), "recorded_at": now()}
        self._store(store.write_epoch_row, row)
        tensorboard.write_epoch_scalars(self.sweep_dir, row)
        if not math.isfinite(row["train_loss"]) or not math.isfinite(row["val_loss"]):
            self.diverged.add(base["trial_key"])
        self._update(trial, "running")

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config["trial"]["key"] in self.diverged:
            self._update(trial, "diverged", "loss became NaN or infinite")
        else:
            self._update(trial, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, "failed", error_message(trial))
