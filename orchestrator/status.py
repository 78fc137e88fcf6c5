"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage)."""
from __future__ import annotations

import json

import numpy as np

from orchestrator.costs import fmt_left, status_remaining
from results import store
from results.shared_runs import expand_shared
from trainer.storage import Location


class StatusError(Exception):
    pass


def status_lines(sweep_dir: store.Where) -> list[str]:
    """Status, epochs done, latest and final (median of last 5) val error for every planned trial."""
    sweep_dir = Location.of(sweep_dir)
    plan = sweep_dir / "sweep.json"
    if not plan.exists():
        raise StatusError(f"{sweep_dir}: no sweep here (no sweep.json); check the name and --results")
    keys = json.loads(plan.read_text()).get("trials", [])
    epochs, trials = expand_shared(sweep_dir, store.read_epochs(sweep_dir), store.read_trials(sweep_dir),
                                   pending_rows=True)
    left, left_line = status_remaining(sweep_dir, epochs, trials)
    trials = trials.set_index("trial_key")
    latest = epochs.groupby("trial_key")["val_err"].last() if len(epochs) else {}
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8} {'left':>9}  error"]
    for key in dict.fromkeys(keys + list(trials.index)):
        row = trials.loc[key] if key in trials.index else None
        st = row["status"] if row is not None else "pending"
        n = int(row["epochs"]) if row is not None else 0
        last = f"{latest[key]:.2f}" if key in latest else "-"
        final = row["final_val_err"] if row is not None else None
        final = f"{final:.2f}" if final is not None and np.isfinite(final) and st in ("completed", "diverged") else "-"
        err = row["error"] if row is not None and isinstance(row["error"], str) else ""  # null reads back as NaN
        err = f"shares the run of {row['same_as']}" if row is not None and isinstance(row["same_as"], str) else err
        lines.append(f"{key:<24} {st:<10} {n:>6} {last:>9} {final:>8} {fmt_left(left, key):>9}  {err}")
    return lines + ([left_line] if left_line else [])
