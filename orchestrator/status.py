"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage)."""
from __future__ import annotations

import math

from results import store
from trainer.storage import Location


class StatusError(Exception):
    pass


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


def status_lines(sweep_dir: store.Where) -> list[str]:
    """Status, epochs done, latest and final (trainer.config.final_error) val error for every planned trial. Raises
    DamagedResults naming a results file that is not what gnsweep wrote."""
    sweep_dir = Location.of(sweep_dir)
    record = store.read_sweep(sweep_dir)
    if record is None:
        raise StatusError(f"{sweep_dir}: no sweep here (no sweep.json); check the name and --results")
    trials = store.read_trial_rows(sweep_dir)
    latest = {r.trial_key: r.val_err for r in store.read_epoch_rows(sweep_dir)}  # sorted by epoch: the last wins
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8}  error"]
    for key in dict.fromkeys([*record.trials, *trials]):
        row = trials.get(key)
        st = row.status if row else "pending"
        final = _number(row.final_val_err) if row and st in ("completed", "diverged") else "-"
        last = f"{latest[key]:.2f}" if key in latest else "-"
        lines.append(f"{key:<24} {st:<10} {row.epochs if row else 0:>6} {last:>9} {final:>8}  "
                     f"{(row.error or '') if row else ''}")
    return lines
