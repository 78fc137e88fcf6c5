"""Stopping Tune's loop on Ctrl-C or SIGTERM at a point where Tune lets the exception through.

A Python signal handler runs in the main thread wherever that thread is, and Tune's loop spends its time in Ray's C++
(``ray.wait``, ``ray.get``) and in Tune's own ``try``/``except Exception`` blocks. An exception raised by the handler
there becomes a ``SystemError``, or is taken for the failure of the trial whose result was being fetched
(``RayEventManager.resolve_future`` catches what ``ray.get`` raises), which Tune then retries: the launch went on
after the SIGTERM, its trials running (a CI run of tests/faults/test_interrupts.py hung so). So while Tune runs, the
launch's handler only notes the signal (``interrupts.Catcher.deferred``), and ``StopOnSignal`` raises it between two
steps of Tune's loop (a step handles one event and waits at most 0.1 s for it), where no trial is half handled.
"""
from __future__ import annotations

from typing import Callable

from ray import tune


class StopOnSignal(tune.Callback):
    """Calls ``check`` (which raises once a signal was noted) at the start and the end of each step of Tune's loop."""

    def __init__(self, check: Callable[[], None]):
        self.check = check

    def on_step_begin(self, iteration, trials, **info):
        self.check()

    def on_step_end(self, iteration, trials, **info):
        self.check()
