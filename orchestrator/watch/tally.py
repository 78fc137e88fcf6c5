"""How far a sweep has got: every planned trial's state (a shared trial's is its run's), how many trials have
ended, and the time left. ``gnsweep status``, ``status --watch`` and the launch's progress line all count with
``tally``, so the three never disagree.

Time left comes from plan.json's estimates replaced by measured epochs (``orchestrator.cost.costs.sweep_remaining``), as
wall time on the launch's cluster. A sweep launched before estimates were recorded falls back on each trial's
recent epoch seconds times the epochs it has left (a trial not started yet: the sweep's median epoch time).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from orchestrator.cost.costs import sweep_remaining
from orchestrator.cost.estimate import fmt_seconds
from results import store
from results.records import SweepRecord
from results.schema import ENDED, FINISHED, STOPPED, TrialStatus
from results.shared_runs import expand_shared, read_plan

RECENT_EPOCHS = 3


class TallyError(Exception):
    """No sweep at the place asked about; the message is one line."""


@dataclass(frozen=True)
class TrialState:
    """One planned trial as the results have it; a shared trial carries its run's status and figures."""

    key: str
    status: str
    epoch: int  # epochs done
    latest: float | None  # latest val error (NaN for a diverged epoch)
    best: float | None
    final: float | None  # the final error of a completed or diverged trial, else None
    images_per_second: float | None
    seconds_left: float | None  # its run's trial time left; None when ended or unknown
    started: bool  # it has recorded epochs, so its time left is measured rather than estimated
    error: str | None
    same_as: str | None

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class Tally:
    """Every planned trial's state, the epochs each trial runs, and the sweep's time left."""

    trials: tuple[TrialState, ...]
    epochs: int  # per trial; 0 when the sweep record does not say
    wall_seconds: float | None  # wall time left on the launch's cluster; None when unknown
    trial_seconds: float | None  # trial time left over all runs; None when unknown
    basis: str = ""  # "remaining: ..." with what the figures rest on; empty without estimates

    def count(self, *statuses: str) -> int:
        return sum(t.status in statuses for t in self.trials)

    @property
    def ended(self) -> int:
        return self.count(*ENDED)

    @property
    def finished(self) -> bool:
        """Every planned trial, shared or not, has ended: nothing is left to wait for."""
        return all(t.ended for t in self.trials)

    def time_left(self) -> str:
        if self.finished:
            return "nothing left to run"
        if self.wall_seconds is not None:
            return f"about {fmt_seconds(self.wall_seconds)} left"
        if self.trial_seconds:
            return f"about {fmt_seconds(self.trial_seconds)} of trial time left"
        return "time left unknown"

    def summary(self) -> str:
        """``3/9 trials ended, 2 running, 1 failed; about 12.5 min left``: the counts every view prints."""
        extra = "".join(f", {n} {s}" for s in TrialStatus if s in STOPPED and (n := self.count(s)))
        return f"{self.ended}/{len(self.trials)} trials ended, {self.count(TrialStatus.RUNNING)} running{extra}; " \
               f"{self.time_left()}"


def _fallback_left(epochs: pd.DataFrame, statuses: dict[str, str], keys, total: int) -> dict[str, float]:
    """Per run: recent epoch seconds times the epochs left (the sweep's median epoch time when none is recorded)."""
    if not total:
        return {}
    by_trial = dict(tuple(epochs.groupby("trial_key"))) if len(epochs) else {}
    typical = float(epochs["epoch_seconds"].median()) if len(epochs) else None
    left = {}
    for key in keys:
        if statuses.get(key) in ENDED:
            continue
        ep = by_trial.get(key)
        per_epoch = float(ep.tail(RECENT_EPOCHS)["epoch_seconds"].mean()) if ep is not None else typical
        if per_epoch is not None:
            done = int(ep["epoch"].max()) if ep is not None else 0
            left[key] = per_epoch * max(total - done, 0)
    return left


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def tally(record: SweepRecord, epochs: pd.DataFrame, trials: pd.DataFrame, plan: dict) -> Tally:
    """The sweep's tally from its record (``sweep.json``: the planned trials and epochs), its epochs and trials
    tables as stored (each run once) and its plan.json (``{}`` when there is none)."""
    total = int(record.fingerprint.get("train.epochs") or 0)
    epochs = epochs.sort_values(["trial_key", "epoch"]) if len(epochs) else epochs
    runs = trials[trials["same_as"].isna()] if "same_as" in trials else trials
    statuses = dict(zip(runs["trial_key"], runs["status"]))
    remaining = sweep_remaining(plan, epochs, statuses)
    if remaining is not None:
        left, wall, trial_seconds, basis = (remaining.seconds, remaining.wall_seconds, remaining.trial_seconds,
                                            remaining.line)
    else:
        keys = dict.fromkeys([*record.trials, *statuses])
        left = _fallback_left(epochs, statuses, keys, total)
        wall, trial_seconds, basis = None, (sum(left.values()) if left else None), ""
    epochs, trials = expand_shared(None, epochs, trials, pending_rows=True, plan=plan)
    rows = trials.drop_duplicates("trial_key", keep="last").set_index("trial_key")
    by_trial = dict(tuple(epochs.groupby("trial_key"))) if len(epochs) else {}
    states = []
    for key in dict.fromkeys([*record.trials, *rows.index]):
        row = rows.loc[key] if key in rows.index else None
        status = str(row["status"]) if row is not None else TrialStatus.PENDING
        same_as = row["same_as"] if row is not None and isinstance(row["same_as"], str) else None
        ep = by_trial.get(key)
        val = ep["val_err"].astype(float) if ep is not None else pd.Series(dtype=float)
        error = row["error"] if row is not None and isinstance(row.get("error"), str) else None
        ended = status in ENDED
        states.append(TrialState(
            key=key, status=status, epoch=int(ep["epoch"].max()) if ep is not None else 0,
            latest=float(val.iloc[-1]) if len(val) else None, best=float(val.min()) if val.notna().any() else None,
            final=_number(row.get("final_val_err")) if row is not None and status in FINISHED
            else None,
            images_per_second=_number(ep["images_per_second"].iloc[-1]) if ep is not None else None,
            seconds_left=None if ended else left.get(same_as or key), started=ep is not None,
            error=f"shares the run of {same_as}" if same_as else error, same_as=same_as))
    return Tally(tuple(states), total, wall, trial_seconds, basis)


def read_tally(sweep_dir: store.Where) -> Tally:
    """``tally`` of the sweep at ``sweep_dir`` as its results store has it. Raises TallyError when there is no sweep
    there, DamagedResults naming a results file that is not what gnsweep wrote."""
    record = store.read_sweep(sweep_dir)
    if record is None:
        raise TallyError(f"{sweep_dir}: no sweep here (no sweep.json); check the name and --results")
    return tally(record, store.read_epochs(sweep_dir), store.read_trials(sweep_dir), read_plan(sweep_dir))
