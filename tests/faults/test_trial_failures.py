"""Trials that fail inside a real sweep: one that raises on every attempt, one per norm kind (BN, GN, LN, IN) whose Ray
worker is SIGKILLed in the middle of training, and one that diverges. Real Ray, real Keras on digits, real Parquet;
nothing is mocked: every norm resumes from a real checkpoint (GN once could not).

The raising trial and the diverging one are the orchestration's half of those faults (a raising trial retried, then
recorded failed with its error and named in the exit; a NaN epoch recorded, the trial ``diverged``, not retried, not run
again): each is a sweep of its own on the shared Ray with the fake trainer told to raise or diverge. The spec now
refuses the real input that once raised inside the trainer (a batch past the training set, tests/faults/
test_hostile_specs.py); that real training diverges on an absurd learning rate is tests/trainer/test_train.py's."""
import os
import signal

import numpy as np
import pandas as pd
import pytest

from tests.support.cli import fake_trainer_env, gnsweep, write_spec
from tests.support.launches import Launch, ResultsPoller, assert_one_row_per_epoch, epoch_rows

EPOCHS = 2
# seed_cnn, the lightest model, at batch 16: 89 steps an epoch (most of a second, the time the kill has to land
# between a first epoch's row and the second's), at a third of resnet8's training time per worker
BATCH = 16
GOOD = f"bn-b{BATCH}-s0"
RAISING = "bn-b128-s0"  # the one trial of the "raising" sweep
# every norm kind is interrupted: GN, LN and IN checkpoints hold gnsweep's own layers, which a fresh worker must load
KILLED = (GOOD, f"gn-b{BATCH}-g8-s0", f"ln-b{BATCH}-s0", f"in-b{BATCH}-s0")
STEPS_PER_EPOCH = 1437 // BATCH  # full batches of the digits' training images


def kill_each_after_its_first_epoch(launch, sweep_dir) -> dict[str, list[str]]:
    """SIGKILL the Ray worker of each of ``KILLED`` once its first epoch file appears; the epoch files each trial had
    at its kill."""
    killed: dict[str, list[str]] = {}

    def kill_ready() -> bool:
        recorded = epoch_rows(sweep_dir)  # one read of the table per poll for all four trials, not one each
        for key in KILLED:
            if key not in killed and any(row.startswith(f"{key}-e") for row in recorded):
                workers = launch.workers(key)
                assert len(workers) == 1, f"expected one worker for {key}, found {workers}\n{launch.tail()}"
                os.kill(workers[0], signal.SIGKILL)
                killed[key] = sorted(epoch_rows(sweep_dir, key))
        return len(killed) == len(KILLED)

    launch.wait_for(kill_ready, f"a first epoch of each of {KILLED}", timeout=600)
    return killed


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory, digits_dataset, shared_ray):
    """Three sweeps side by side on the shared Ray. "failures": four real Keras trials (seed_cnn), two at a time;
    the worker of each of KILLED is SIGKILLed right after its first epoch is recorded, and a poller reads the tables
    every 150 ms (and the checkpoint pointers every 50 ms) throughout. With the fake trainer: "raising", one trial
    that raises in its first epoch on each attempt; "diverge", one trial whose first epoch has NaN losses. (That a
    launch's own Ray goes with it is tests/faults/test_interrupts.py's and test_driver_kill.py's.)"""
    root = tmp_path_factory.mktemp("failures")
    spec = write_spec(root / "failures.yaml", digits_dataset, name="failures", epochs=EPOCHS, retries=1,
                      model="seed_cnn", studies=f"ok: {{norm: [bn, gn, ln, in], batch_size: [{BATCH}]}}")
    raising_spec = write_spec(root / "raising.yaml", digits_dataset, name="raising", epochs=EPOCHS, retries=1,
                              studies="a: {norm: [bn], batch_size: [128]}")
    diverge_spec = write_spec(root / "diverge.yaml", digits_dataset, name="diverge", epochs=2, retries=2,
                              studies="a: {norm: [bn], batch_size: [128]}")
    sweep_dir = root / "results" / "failures"
    poller = ResultsPoller(sweep_dir, watch_latest=KILLED)
    poller.start()
    launch = Launch(spec, root / "results", "--max-concurrent", "2", cwd=root, ray=shared_ray)
    raising = Launch(raising_spec, root / "results", cwd=root, ray=shared_ray,
                     extra_env=fake_trainer_env(fail={"*": 1}))
    diverge = Launch(diverge_spec, root / "results", cwd=root, ray=shared_ray,
                     extra_env=fake_trainer_env(diverge={"*": 1}))
    try:
        killed_after = kill_each_after_its_first_epoch(launch, sweep_dir)
        raising_rc = raising.wait()
        diverge_rc = diverge.wait()
        rc = launch.wait()
    finally:
        poller.stop()
        for each in (launch, raising, diverge):
            each.kill()
    return {"root": root, "sweep_dir": sweep_dir, "launch": launch, "rc": rc, "poller": poller,
            "killed_after": killed_after, "raising": raising, "raising_rc": raising_rc,
            "diverge": diverge, "diverge_rc": diverge_rc, "diverge_spec": diverge_spec}


@pytest.mark.slow
def test_sweep_exits_1_naming_the_failed_trial(failing_sweep):
    raising, launch = failing_sweep["raising"], failing_sweep["launch"]
    assert failing_sweep["raising_rc"] == 1, raising.tail()
    assert f"1 trial(s) failed: {RAISING}" in raising.stdout, raising.tail()
    assert "Traceback" not in raising.stdout
    assert failing_sweep["rc"] == 0 and "failed:" not in launch.stdout, launch.tail()  # killed trials resumed


@pytest.mark.slow
def test_raising_trial_is_retried_then_recorded_failed_with_its_error(failing_sweep):
    trials = pd.read_parquet(failing_sweep["root"] / "results" / "raising" / "trials").set_index("trial_key")
    raised = trials.loc[RAISING]
    assert raised["status"] == "failed" and raised["epochs"] == 0
    assert raised["attempts"] == 1 + 1, "retries: 1 means two attempts"
    assert raised["error"] == f"RuntimeError: fake trainer: {RAISING} fails at epoch 1, as told", raised["error"]


@pytest.mark.slow
@pytest.mark.parametrize("key", KILLED)
def test_killed_worker_resumes_from_its_checkpoint(failing_sweep, key):
    sweep_dir = failing_sweep["sweep_dir"]
    assert failing_sweep["killed_after"][key] == [f"{key}-e0001"], "the kill came after epoch 1 only"
    trial = pd.read_parquet(sweep_dir / "trials").set_index("trial_key").loc[key]
    assert (trial["status"], trial["epochs"], trial["attempts"]) == ("completed", EPOCHS, 2), trial["error"]
    epochs = pd.read_parquet(sweep_dir / "epochs")
    assert_one_row_per_epoch(epochs[epochs.trial_key == key], {key: EPOCHS})
    assert epochs[epochs.trial_key == key].sort_values("epoch")["attempt"].tolist() == [0] + [1] * (EPOCHS - 1)
    # the retried attempt loaded epoch 1's checkpoint: 'latest' was never written back to epoch 1
    assert failing_sweep["poller"].latest[key] == [f"epoch-{e:04d}" for e in range(1, EPOCHS + 1)]


@pytest.mark.slow
def test_resumed_trials_kept_their_optimizer_state(failing_sweep):
    """The optimizer's step count went on from the checkpoint (a fresh optimizer would have restarted at 0, and with
    it the lr schedule and the momentum)."""
    from trainer import checkpoints

    for key in KILLED:
        ckpt = checkpoints.load(failing_sweep["sweep_dir"] / "checkpoints" / key)
        assert ckpt.epoch == EPOCHS and int(ckpt.model.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH, key


@pytest.mark.slow
def test_reader_polling_during_the_sweep_never_saw_a_partial_file(failing_sweep):
    poller = failing_sweep["poller"]
    assert poller.failures == []
    assert poller.reads > 20 and poller.counts == sorted(poller.counts) and poller.counts[-1] == len(KILLED) * EPOCHS


@pytest.mark.slow
def test_diverging_trial_is_a_result_not_a_failure(failing_sweep):
    launch, root = failing_sweep["diverge"], failing_sweep["root"]
    assert failing_sweep["diverge_rc"] == 0, launch.tail()
    sweep_dir = root / "results" / "diverge"
    trial = pd.read_parquet(sweep_dir / "trials").iloc[0]
    assert trial["status"] == "diverged" and trial["attempts"] == 1, trial
    assert "NaN" in trial["error"] and "\n" not in trial["error"]
    epochs = pd.read_parquet(sweep_dir / "epochs")
    assert epochs["epoch"].tolist() == [1] and not np.isfinite(epochs["train_loss"].iloc[0])
    assert "diverged" in launch.stdout and "failed:" not in launch.stdout

    again = gnsweep("launch", failing_sweep["diverge_spec"], "--results", root / "results", "--no-dashboard",
                    cwd=root)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout + again.stderr
    assert pd.read_parquet(sweep_dir / "trials").iloc[0]["attempts"] == 1
