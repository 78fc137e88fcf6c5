"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage)."""
from __future__ import annotations

import json

import numpy as np

from results import store
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
    trials = store.read_trials(sweep_dir).set_index("trial_key")
    epochs = store.read_epochs(sweep_dir)
    latest = epochs.groupby("trial_key")["val_err"].last() if len(epochs) else {}
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8}  error"]
    for key in dict.fromkeys(keys + list(trials.index)):
        row = trials.loc[key] if key in trials.index else None
        st = row["status"] if row is not None else "pending"
        n = int(row["epochs"]) if row is not None else 0
        last = f"{latest[key]:.2f}" if key in latest else "-"
        final = row["final_val_err"] if row is not None else None
        final = f"{final:.2f}" if final is not None and np.isfinite(final) and st in ("completed", "diverged") else "-"
        err = (row["error"] or "") if row is not None else ""
        lines.append(f"{key:<24} {st:<10} {n:>6} {last:>9} {final:>8}  {err}")
    return lines
