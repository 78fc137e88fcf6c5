"""A signal that lands while Ray Tune runs the trials, inside code of Tune's that catches exceptions.

Tune takes an exception raised in its ``on_trial_complete`` handling (``TuneController.stop_trial``'s ``except
Exception``), or in the ``ray.get`` of a trial's result (``RayEventManager.resolve_future``), for the failure of that
trial, and retries the trial. A signal handler that raised there had its exception swallowed: a CI run of
tests/faults/test_interrupts.py saw a launch run on, its trials hanging, after its SIGTERM. Here the driver sends the
signal to itself from inside Tune's ``on_trial_complete`` handling, the place Tune swallows, so the test does not
depend on timing: real Ray (the session's, which this process joins as a launch's driver), real Tune, the launch's
catcher and callbacks, the fake trainer (one trial ends after its epoch, the other hangs in it until it is stopped).
"""
import os
import signal
import time

import pytest
from ray import tune

from orchestrator.launch.interrupts import Interrupted, catch
from orchestrator.spec.file import load_spec
from orchestrator.spec.plan import plan_trials
from orchestrator.tune.run import TrainerChoice, run_trials
from orchestrator.tune.stop import StopOnSignal
from tests.support.cli import write_spec
from tests.support.fake_trainer import PATH as FAKE_TRAINER

DEADLINE_S = 60  # how long the loop may go on after the signal before the test calls it a hang


class SignalOnTrialComplete(tune.Callback):
    """Sends SIGTERM to this process while Tune handles a trial's completion, and notes whether the rest of this
    handler ran (a handler that raises at once would cut it short, inside Tune's ``except``)."""

    def __init__(self):
        self.sent_at = None
        self.handler_went_on = False

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.sent_at = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        self.handler_went_on = True


class Deadline(tune.Callback):
    """Fails the test (at a step of Tune's loop, where Tune lets exceptions through) once the loop has gone on
    ``DEADLINE_S`` after the signal: without this, a swallowed signal would leave the test waiting on the hanging
    trial for ever."""

    def __init__(self, signal_sent):
        self.signal_sent = signal_sent

    def on_step_begin(self, iteration, trials, **info):
        sent = self.signal_sent.sent_at
        if sent is not None and time.monotonic() - sent > DEADLINE_S:
            raise AssertionError(f"Tune's loop still ran {DEADLINE_S} s after the SIGTERM: the signal was lost")


@pytest.fixture
def joined_ray(shared_ray):
    """This process connected to the session's Ray as a launch's driver (``--address``, with the cluster's token);
    the environment and the signal handlers put back afterwards (``ray.init`` installs its own)."""
    import ray
    from ray._raylet import Config

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.MonkeyPatch.context() as env:
        for name, value in shared_ray.join_env.items():
            env.setenv(name, value)
        # Ray reads RAY_AUTH_MODE into its config once: re-read, as Ray does itself when ray.init turns token auth on
        Config.initialize("")
        ray.init(address=shared_ray.address, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
            for sig, handler in before.items():
                signal.signal(sig, handler)
    Config.initialize("")


@pytest.mark.slow
def test_a_signal_inside_tunes_event_handling_stops_the_loop_at_its_next_step(joined_ray, digits_dataset,
                                                                                tmp_path):
    spec = load_spec(write_spec(tmp_path / "signal.yaml", digits_dataset, name="signal", epochs=1,
                                studies="a: {norm: [bn, gn], batch_size: [64]}"))
    trials = plan_trials(spec)
    hanging = next(t.key for t in trials if t.key.startswith("gn"))
    injector = SignalOnTrialComplete()
    with catch() as catcher, pytest.raises(Interrupted) as stopped:
        with catcher.deferred():  # as orchestrator.launch.launcher runs the trials
            run_trials(spec, trials, sweep_dir=tmp_path / "results", dataset_dir=digits_dataset,
                       callbacks=[StopOnSignal(catcher.check), injector, Deadline(injector)],
                       trainer=TrainerChoice(FAKE_TRAINER, {"hang": {hanging: 1}}))
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    assert injector.handler_went_on, "the handler raised inside Tune's on_trial_complete handling"
    assert time.monotonic() - injector.sent_at < DEADLINE_S
