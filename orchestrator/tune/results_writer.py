"""The driver-side writer: a Ray Tune callback that turns each reported epoch into a Parquet row as it arrives and
keeps the trials table current (running, completed, diverged, failed, interrupted).

It keeps each trial's rows in memory, read once when it first meets the trial (old-layout files folded then), so an
epoch costs two whole-file writes (the trial's epochs file and its trials row) and no read, whatever the epoch."""
from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from pathlib import Path

from ray import tune

from results import store, tensorboard
from results.records import CONFIG_COLUMNS, EpochRow, TrialRow
from results.schema import ENDED_STATUSES
from trainer.config import final_error
from trainer.storage import Location


def now() -> datetime:
    return datetime.now(timezone.utc)


def config_columns(sweep: str, trial_key: str, trial: dict) -> dict:
    return {"sweep": sweep, "trial_key": trial_key, "model": trial["model"], "norm": trial["norm"],
            "batch_size": trial["batch_size"], "groups": trial.get("groups"),
            "channels_per_group": trial.get("channels_per_group"), "seed": trial["seed"],
            "precision": (trial.get("train") or {}).get("precision", "float32")}


def trial_row(base: TrialRow, epochs: list[EpochRow], *, status: str, error: str | None = None) -> TrialRow:
    """``base`` with the figures of the trial's epoch rows as stored (``epochs``), so the row is right after any
    crash."""
    finite = [r.val_err for r in epochs if math.isfinite(r.val_err)]
    return dataclasses.replace(
        base, status=status, epochs=len(epochs), error=error, final_val_err=final_error([r.val_err for r in epochs]),
        best_val_err=min(finite) if finite else None, train_seconds=float(sum(r.epoch_seconds for r in epochs)),
        ended_at=now() if status in ENDED_STATUSES else None)


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

    def __init__(self, sweep_dir: store.Where, sweep: str, studies: dict[str, tuple[str, ...]],
                 prior: dict[str, TrialRow]):
        self.sweep_dir = Location.of(sweep_dir)
        self.sweep = sweep
        self.studies = studies  # trial_key -> studies
        self.rows = dict(prior)  # trial_key -> its trials row (of earlier launches, then this one's)
        self.diverged: set[str] = set()
        self.epochs: dict[str, dict[int, EpochRow]] = {}  # trial_key -> its stored rows by epoch
        self.written: dict[str, TrialRow] = {}  # trial_key -> the trials row this writer last stored
        self.failure: store.StoreError | None = None  # the first results file that could not be written

    def _store(self, write, *args) -> None:
        """Write rows; a StoreError stops the sweep (Tune re-raises it from ``fit``, wrapped in a TuneError), so it
        is kept here for the launcher to report as one line."""
        try:
            write(self.sweep_dir, *args)
        except store.StoreError as e:
            self.failure = self.failure or e
            raise

    def _base(self, trial) -> TrialRow:
        key = trial.config["trial"]["key"]
        row = self.rows.get(key) or TrialRow(
            **config_columns(self.sweep, key, trial.config["trial"]["config"]), status="pending", epochs=0,
            final_val_err=None, best_val_err=None, error=None, studies=(), attempts=0, started_at=None,
            ended_at=None, train_seconds=0.0)
        row = dataclasses.replace(row, studies=tuple(self.studies.get(key, row.studies)))
        self.rows[key] = row
        return row

    def _epochs(self, key: str) -> dict[int, EpochRow]:
        """The trial's stored rows by epoch, read (and folded, if the sweep has old-layout files) the first time."""
        if key not in self.epochs:
            self.epochs[key] = {r.epoch: r for r in store.fold_trial(self.sweep_dir, key)}
        return self.epochs[key]

    def _rows(self, key: str) -> list[EpochRow]:
        return sorted(self._epochs(key).values(), key=lambda r: r.epoch)

    def _update(self, trial, status: str, error: str | None = None) -> None:
        base = self._base(trial)
        row = trial_row(base, self._rows(base.trial_key), status=status, error=error)
        self.rows[row.trial_key] = row
        if self.written.get(row.trial_key) != row:  # an epoch reported again after a resume changes nothing
            self._store(store.write_trial_row, row)
            self.written[row.trial_key] = row

    def on_trial_start(self, iteration, trials, trial, **info):
        base = self._base(trial)
        self.rows[base.trial_key] = dataclasses.replace(base, attempts=base.attempts + 1,
                                                        started_at=base.started_at or now())
        self._update(trial, "running")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        base = self._base(trial)
        row = EpochRow.of({k: getattr(base, k) for k in CONFIG_COLUMNS}, result, attempt=base.attempts - 1,
                          node=result.get("node"), recorded_at=now(), precision=base.precision)
        stored = self._epochs(base.trial_key)
        if row.epoch not in stored:  # the first write wins: an epoch reported again (a resume) keeps its row
            self._store(store.write_trial_epochs, base.trial_key, [*self._rows(base.trial_key), row])
            stored[row.epoch] = row
        tensorboard.write_epoch_scalars(self.sweep_dir, row.to_dict())
        if not math.isfinite(row.train_loss) or not math.isfinite(row.val_loss):
            self.diverged.add(base.trial_key)
        self._update(trial, "running")

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config["trial"]["key"] in self.diverged:
            self._update(trial, "diverged", "loss became NaN or infinite")
        else:
            self._update(trial, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, "failed", error_message(trial))

    def record_interrupted(self) -> list[str]:
        """After the launch was stopped (Ctrl-C, SIGTERM): trials still recorded as running become ``interrupted``
        (a relaunch resumes them); returns their keys."""
        stopped = [key for key, row in self.rows.items() if row.status == "running"]
        for key in stopped:
            self.rows[key] = trial_row(self.rows[key], self._rows(key), status="interrupted")
            self._store(store.write_trial_row, self.rows[key])
            self.written[key] = self.rows[key]
        return stopped
