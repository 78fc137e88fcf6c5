"""The driver-side writer: a Ray Tune callback that turns each reported epoch into a Parquet row as it arrives and
keeps the trials table current (running, completed, diverged, failed, interrupted). A trial that shares another's
run (GN with G = 1 is LN) gets its own trials row and TensorBoard run whenever its run's are written, so every
trial name of the plan is a row; its epochs stay stored once, under the run."""
from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
from ray import tune

from results import store, tensorboard
from results.records import CONFIG_COLUMNS, EpochRow, TrialRow
from results.schema import ENDED, EPOCH_SCHEMA, TRIAL_SCHEMA, TrialStatus
from results.shared_runs import SharedTrial
from trainer.config import final_error
from trainer.storage import Location


def now() -> datetime:
    return datetime.now(timezone.utc)


def config_columns(sweep: str, trial_key: str, trial: dict) -> dict:
    return {"sweep": sweep, "trial_key": trial_key, "model": trial["model"], "norm": trial["norm"],
            "batch_size": trial["batch_size"], "groups": trial.get("groups"),
            "channels_per_group": trial.get("channels_per_group"), "seed": trial["seed"],
            "precision": (trial.get("train") or {}).get("precision", "float32")}


def trial_row(sweep_dir: store.Where, base: TrialRow, *, status: str, error: str | None = None) -> TrialRow:
    """``base`` with the figures of the epochs on disk, so the row is right after any crash."""
    epochs = store.read_epoch_rows(sweep_dir, base.trial_key)
    finite = [r.val_err for r in epochs if math.isfinite(r.val_err)]
    return dataclasses.replace(
        base, status=status, epochs=len(epochs), error=error, final_val_err=final_error([r.val_err for r in epochs]),
        best_val_err=min(finite) if finite else None, train_seconds=float(sum(r.epoch_seconds for r in epochs)),
        ended_at=now() if status in ENDED else None)


def shared_trials(trials: Iterable) -> dict[str, list[SharedTrial]]:
    """``{run key: the trials that share its run}`` of planned trials (``orchestrator.spec.PlannedTrial``)."""
    out: dict[str, list[SharedTrial]] = {}
    for t in trials:
        if t.same_as:
            out.setdefault(t.same_as, []).append(SharedTrial(t.key, t.same_as, t.config.norm, t.config.groups,
                                                             t.config.channels_per_group, tuple(t.studies)))
    return out


def record_shared_runs(sweep_dir: store.Where, rows: Mapping[str, TrialRow],
                       shared: Mapping[str, Sequence[SharedTrial]]) -> None:
    """For runs recorded before this launch (``rows``, the trials table by key): each shared trial's trials row and
    TensorBoard run (hyperparameters and every epoch of its run), so a relaunch of a finished sweep, or of one
    launched before shared trials had rows, lists them all. Event files already there are kept."""
    for key, aliases in shared.items():
        run = rows.get(key)
        if run is None or run.same_as is not None:
            continue
        epochs = [r.to_dict() for r in store.read_epoch_rows(sweep_dir, key)]
        for alias in aliases:
            store.write_trial_row(sweep_dir, alias.trial_row(run))
            for i, epoch in enumerate(epochs):
                row = alias.epoch_row(epoch)
                if i == 0:
                    tensorboard.write_hparams(sweep_dir, row)
                tensorboard.write_epoch_scalars(sweep_dir, row)


def error_message(trial) -> str:
    """The last line of the trial's traceback (e.g. ``ValueError: ...``)."""
    path = trial.error_file
    try:
        lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1] if lines else "trial failed"


class ResultsWriter(tune.Callback):
    """Writes ``epochs/`` rows on every result and the trial's ``trials/`` row on every status change; ``shared``
    (``shared_trials``) names the trials that share each run, whose rows and TensorBoard runs follow it."""

    def __init__(self, sweep_dir: store.Where, sweep: str, studies: dict[str, tuple[str, ...]],
                 prior: dict[str, TrialRow], shared: Mapping[str, Sequence[SharedTrial]] | None = None,
                 prior_epochs: pd.DataFrame | None = None):
        self.sweep_dir = Location.of(sweep_dir)
        self.sweep = sweep
        self.studies = studies  # trial_key -> studies
        # trial_key -> its trials row (of earlier launches, then this one's); shared trials' rows follow their run's
        self.rows = {k: r for k, r in prior.items() if r.same_as is None}
        self.shared = {k: tuple(v) for k, v in (shared or {}).items()}
        self.described: set[str] = set()  # TensorBoard runs whose hyperparameters this launch has written
        self.prior_epochs = prior_epochs  # the epochs table as the launch read it
        self.new_epochs: list[dict] = []  # the epoch rows written since
        self.diverged: set[str] = set()
        self.failure: store.StoreError | None = None  # the first results file that could not be written

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The epochs and trials tables (runs only) as the store now holds them, known without reading it again:
        the launch's progress line counts from these."""
        frames = [x for x in (self.prior_epochs, pd.DataFrame(self.new_epochs)) if x is not None and len(x)]
        epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EPOCH_SCHEMA.names)
        return epochs, pd.DataFrame([r.to_dict() for r in self.rows.values()], columns=TRIAL_SCHEMA.names)

    def _store(self, write, row):
        """Write a row; a StoreError stops the sweep (Tune re-raises it from ``fit``, wrapped in a TuneError), so it
        is kept here for the launcher to report as one line."""
        try:
            return write(self.sweep_dir, row)
        except store.StoreError as e:
            self.failure = self.failure or e
            raise

    def _base(self, trial) -> TrialRow:
        key = trial.config["trial"]["key"]
        row = self.rows.get(key) or TrialRow(
            **config_columns(self.sweep, key, trial.config["trial"]["config"]), status=TrialStatus.PENDING, epochs=0,
            final_val_err=None, best_val_err=None, error=None, studies=(), attempts=0, started_at=None,
            ended_at=None, train_seconds=0.0)
        row = dataclasses.replace(row, studies=tuple(self.studies.get(key, row.studies)))
        self.rows[key] = row
        return row

    def _write_trial(self, row: TrialRow) -> None:
        """The run's trials row, then each of its shared trials' rows made from it."""
        self._store(store.write_trial_row, row)
        for alias in self.shared.get(row.trial_key, ()):
            self._store(store.write_trial_row, alias.trial_row(row))

    def _update(self, trial, status: str, error: str | None = None) -> None:
        row = trial_row(self.sweep_dir, self._base(trial), status=status, error=error)
        self.rows[row.trial_key] = row
        self._write_trial(row)

    def _tensorboard(self, row: dict) -> None:
        """The epoch's scalars in the run's TensorBoard run and its shared trials' (hyperparameters first)."""
        for r in (row, *(alias.epoch_row(row) for alias in self.shared.get(row["trial_key"], ()))):
            if r["trial_key"] not in self.described:
                tensorboard.write_hparams(self.sweep_dir, r)
                self.described.add(r["trial_key"])
            tensorboard.write_epoch_scalars(self.sweep_dir, r)

    def on_trial_start(self, iteration, trials, trial, **info):
        base = self._base(trial)
        self.rows[base.trial_key] = dataclasses.replace(base, attempts=base.attempts + 1,
                                                        started_at=base.started_at or now())
        self._update(trial, TrialStatus.RUNNING)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        base = self._base(trial)
        row = EpochRow.of({k: getattr(base, k) for k in CONFIG_COLUMNS}, result, attempt=base.attempts - 1,
                          node=result.get("node"), recorded_at=now(), precision=base.precision)
        if self._store(store.write_epoch_row, row):
            self.new_epochs.append(row.to_dict())
        self._tensorboard(row.to_dict())
        if not math.isfinite(row.train_loss) or not math.isfinite(row.val_loss):
            self.diverged.add(base.trial_key)
        self._update(trial, TrialStatus.RUNNING)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config["trial"]["key"] in self.diverged:
            self._update(trial, TrialStatus.DIVERGED, "loss became NaN or infinite")
        else:
            self._update(trial, TrialStatus.COMPLETED)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, TrialStatus.FAILED, error_message(trial))

    def record_interrupted(self) -> list[str]:
        """After the launch was stopped (Ctrl-C, SIGTERM): trials still recorded as running become ``interrupted``
        (a relaunch resumes them); returns their keys."""
        stopped = [key for key, row in self.rows.items() if row.status == TrialStatus.RUNNING]
        for key in stopped:
            self.rows[key] = trial_row(self.sweep_dir, self.rows[key], status=TrialStatus.INTERRUPTED)
            self._write_trial(self.rows[key])
        return stopped
