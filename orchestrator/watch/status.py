"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage)."""
from __future__ import annotations

import math

from orchestrator.cost.costs import fmt_left, status_remaining
from results import store
from results.schema import ENDED, FINISHED, TrialStatus
from results.shared_runs import expand_shared
from trainer.storage import Location


class StatusError(Exception):
    pass


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{value:.2f}"


def status_lines(sweep_dir: store.Where) -> list[str]:
    """Status, epochs done, latest and final (trainer.config.final_error) val error for every planned trial. Raises
    DamagedResults naming a results file that is not what gnsweep wrote."""
    sweep_dir = Location.of(sweep_dir)
    record = store.read_sweep(sweep_dir)
    if record is None:
        raise StatusError(f"{sweep_dir}: no sweep here (no sweep.json); check the name and --results")
    epochs, trials = expand_shared(sweep_dir, store.read_epochs(sweep_dir), store.read_trials(sweep_dir),
                                   pending_rows=True)
    left, left_line = status_remaining(sweep_dir, epochs, trials)
    trials = trials.set_index("trial_key")
    # sorted by epoch: the last row wins, NaN included (groupby().last() would skip a diverged epoch's NaN)
    latest = epochs.groupby("trial_key").tail(1).set_index("trial_key")["val_err"] if len(epochs) else {}
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8} {'left':>9}  error"]
    for key in dict.fromkeys([*record.trials, *trials.index]):
        row = trials.loc[key] if key in trials.index else None
        st = row["status"] if row is not None else TrialStatus.PENDING
        n = int(row["epochs"]) if row is not None else 0
        last = f"{latest[key]:.2f}" if key in latest else "-"
        final = _number(row["final_val_err"]) if row is not None and st in FINISHED else "-"
        err = row["error"] if row is not None and isinstance(row["error"], str) else ""  # null reads back as NaN
        err = f"shares the run of {row['same_as']}" if row is not None and isinstance(row["same_as"], str) else err
        time_left = "-" if st in ENDED else fmt_left(left, key)
        lines.append(f"{key:<24} {st:<10} {n:>6} {last:>9} {final:>8} {time_left:>9}  {err}")
    return lines + ([left_line] if left_line else [])
