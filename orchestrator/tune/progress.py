"""Progress of a running sweep on the terminal: one line per trial event, saying what ``describe`` says (the
launch passes ``orchestrator.watch.tally``'s summary, the count ``status`` prints too) after the elapsed time."""
from __future__ import annotations

import time
from typing import Callable

from ray import tune


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressPrinter(tune.Callback):
    """One line when a trial starts, ends or fails, and at most every ``interval`` seconds on epochs. Put it after
    the results writer in Tune's callbacks, so ``describe`` sees the event it reports on."""

    def __init__(self, describe: Callable[[], str], echo=print, interval: float = 10.0):
        self.describe = describe
        self.start = time.monotonic()
        self.last = 0.0
        self.echo = echo
        self.interval = interval

    def line(self, event: str = "") -> str:
        return f"[{_clock(time.monotonic() - self.start)}] {self.describe()}" + (f"  {event}" if event else "")

    def _say(self, event: str) -> None:
        self.last = time.monotonic()
        self.echo(self.line(event))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(f"started {trial.config['trial']['key']}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if time.monotonic() - self.last >= self.interval:
            key = trial.config["trial"]["key"]
            self._say(f"{key} epoch {result.get('epoch')} val_err {result.get('val_err', float('nan')):.1f}%")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._say(f"finished {trial.config['trial']['key']}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say(f"FAILED {trial.config['trial']['key']}")
