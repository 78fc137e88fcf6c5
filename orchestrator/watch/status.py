"""``gnsweep status``: one line per trial of a sweep, read from its results (local or shared storage), then the
counts and time left (``tally``, as ``--watch`` and the launch's progress line count them), and, where trials read
"running" but no launch runs the sweep any more, a line that says so (``launch_gone``, which ``--watch`` ends on)."""
from __future__ import annotations

import math

from orchestrator.cost.estimate import fmt_seconds
from orchestrator.watch.tally import Tally, read_tally
from results import store
from results.schema import TrialStatus
from results.terminal import terminal_text
from trainer.storage import Location


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{value:.2f}"


def launch_gone(sweep_dir: Location, tally: Tally) -> str | None:
    """Why a sweep with trials left is not running: no live launch holds it (``launch.json`` gone, or its process
    dead, or its lease run out, as after a SIGKILL), so trials shown as running are stale. None while one does."""
    if tally.finished:
        return None
    claim = store.read_launch(sweep_dir)
    if claim is not None and claim.live():
        return None
    left, running = sum(not t.ended for t in tally.trials), tally.count(TrialStatus.RUNNING)
    who = "no launch holds it" if claim is None else f"its launch ({terminal_text(claim.where())}) is gone"
    return (f"sweep {terminal_text(sweep_dir.name)}: {who}; {left} trial(s) not ended"
            + (f", the {running} shown as running are stale" if running else "")
            + "; launch the spec again to resume them")


def status_lines(sweep_dir: store.Where) -> list[str]:
    """Status, epochs done, latest and final (trainer.config.final_error) val error and time left for every planned
    trial, then the sweep's summary line, what its time left rests on, and ``launch_gone``'s line where trials read
    "running" but no launch runs the sweep any more. Raises TallyError when there is no sweep, DamagedResults naming
    a results file that is not what gnsweep wrote."""
    sweep_dir = Location.of(sweep_dir)
    tally = read_tally(sweep_dir)
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'latest %':>9} {'final %':>8} {'left':>9}  error"]
    for t in tally.trials:
        latest = "-" if t.latest is None else f"{t.latest:.2f}"  # a diverged epoch's NaN shows as nan
        left = "-" if t.seconds_left is None else fmt_seconds(t.seconds_left)
        lines.append(f"{terminal_text(t.key):<24} {terminal_text(t.status):<10} {t.epoch:>6} {latest:>9} "
                     f"{_number(t.final):>8} {left:>9}  {terminal_text(t.error or '')}")
    lines += [tally.summary()] + ([terminal_text(tally.basis)] if tally.basis else [])
    stale = tally.count(TrialStatus.RUNNING) and launch_gone(sweep_dir, tally)  # "running", yet nothing runs them
    return lines + ([stale] if stale else [])
