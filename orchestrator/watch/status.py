"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage), then the
counts and time left (``tally``, as ``--watch`` and the launch's progress line count them)."""
from __future__ import annotations

import math

from orchestrator.cost.estimate import fmt_seconds
from orchestrator.watch.tally import read_tally
from results import store


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{value:.2f}"


def status_lines(sweep_dir: store.Where) -> list[str]:
    """Status, epochs done, latest and final (trainer.config.final_error) val error and time left for every planned
    trial, then the sweep's summary line and what its time left rests on. Raises TallyError when there is no sweep,
    DamagedResults naming a results file that is not what gnsweep wrote."""
    tally = read_tally(sweep_dir)
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8} {'left':>9}  error"]
    for t in tally.trials:
        latest = "-" if t.latest is None else f"{t.latest:.2f}"  # a diverged epoch's NaN shows as nan
        left = "-" if t.seconds_left is None else fmt_seconds(t.seconds_left)
        lines.append(f"{t.key:<24} {t.status:<10} {t.epoch:>6} {latest:>9} {_number(t.final):>8} {left:>9}  "
                     f"{t.error or ''}")
    return lines + [tally.summary()] + ([tally.basis] if tally.basis else [])
