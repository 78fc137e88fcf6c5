"""Progress of a running sweep on the terminal: trials done, running and failed, epochs, elapsed and remaining."""
from __future__ import annotations

import time

from ray import tune

from results.terminal import terminal_text


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressPrinter(tune.Callback):
    """One line when a trial starts, ends or fails, and at most every ``interval`` seconds on epochs."""

    def __init__(self, total_trials: int, epochs_per_trial: int, done_before: int = 0, echo=print,
                 interval: float = 10.0):
        self.total = total_trials
        self.epochs_per_trial = epochs_per_trial
        self.done = done_before
        self.failed = 0
        self.running: set[str] = set()
        self.epochs: dict[str, int] = {}
        self.start = time.monotonic()
        self.last = 0.0
        self.echo = echo
        self.interval = interval

    def line(self, event: str = "") -> str:
        elapsed = time.monotonic() - self.start
        done_epochs = sum(self.epochs.values())
        todo = (self.total - self.done - self.failed) * self.epochs_per_trial - sum(
            self.epochs.get(k, 0) for k in self.running)
        rate = done_epochs / elapsed if elapsed > 0 and done_epochs else 0.0
        left = _clock(todo / rate) if rate else "?"
        return (f"[{_clock(elapsed)}] {self.done}/{self.total} done, {len(self.running)} running, "
                f"{self.failed} failed, {done_epochs} epochs this launch, ~{left} left" + (f"  {event}" if event
                                                                                          else ""))

    def _say(self, event: str) -> None:
        self.last = time.monotonic()
        self.echo(self.line(event))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.config["trial"]["key"])
        self._say(f"started {terminal_text(trial.config['trial']['key'])}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        key = trial.config["trial"]["key"]
        if "epoch" in result:
            self.epochs[key] = max(self.epochs.get(key, 0), int(result["epoch"]))
        if time.monotonic() - self.last >= self.interval:
            self._say(f"{terminal_text(key)} epoch {result.get('epoch')} "
                      f"val_err {result.get('val_err', float('nan')):.1f}%")

    def on_trial_complete(self, iteration, trials, trial, **info):
        key = trial.config["trial"]["key"]
        self.running.discard(key)
        self.done += 1
        self._say(f"finished {terminal_text(key)}")

    def on_trial_error(self, iteration, trials, trial, **info):
        key = trial.config["trial"]["key"]
        self.running.discard(key)
        self.failed += 1
        self._say(f"FAILED {terminal_text(key)}")
