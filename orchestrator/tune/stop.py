"""Stopping Tune's loop on Ctrl-C or SIGTERM at a point where Tune lets the exception through.

A Python signal handler runs in the main thread wherever that thread is, and Tune's loop spends its time in Ray's C++
(``ray.wait``, ``ray.get``) and in Tune's own ``try``/``except Exception`` blocks. An exception raised by the handler
there becomes a ``SystemError``, or is taken for the failure of the trial whose result was being fetched
(``RayEventManager.resolve_future`` catches what ``ray.get`` raises), which Tune then retries: the launch went on
after the SIGTERM, its trials running (a CI run of tests/faults/test_interrupts.py hung so). So while Tune runs, the
launch's handler only notes the signal (``interrupts.Catcher.deferred``), and ``StopOnSignal``, first among Tune's
callbacks, raises it at the next step of the loop or the next trial event, before any other callback records that
event.
"""
from __future__ import annotations

from typing import Callable

from ray import tune


class StopOnSignal(tune.Callback):
    """Calls ``check`` (which raises once a signal was noted) at each step of Tune's loop and before each trial
    event reaches the callbacks after it; never in ``on_experiment_end``, which Tune calls while it cleans up."""

    def __init__(self, check: Callable[[], None]):
        self.check = check

    def on_step_begin(self, iteration, trials, **info):
        self.check()

    def on_step_end(self, iteration, trials, **info):
        self.check()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.check()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.check()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.check()

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.check()

    def on_trial_error(self, iteration, trials, trial, **info):
        self.check()
