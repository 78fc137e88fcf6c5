"""Trials that fail inside a real sweep: one that raises on every attempt, one whose Ray worker is SIGKILLed in the
middle of training, and one that diverges. Real Ray, real Keras on digits, real Parquet; nothing is mocked.

The raising trial is real input the spec cannot reject: batch 4096 on the 1,437 digits training images, which
``train_trial`` refuses inside the trial (the spec does not know the dataset's size)."""
import os
import signal

import numpy as np
import pandas as pd
import pytest
from launches import Launch, ResultsPoller, assert_one_row_per_epoch, epoch_files, gnsweep, trial_workers, \
    write_spec

EPOCHS = 2
GOOD, HUGE = "bn-b128-s0", "bn-b4096-s0"


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory, digits_dataset):
    """Two sweeps side by side. "failures": two concurrent trials; HUGE raises on each attempt, GOOD's worker is
    SIGKILLed right after its first epoch is recorded, and a poller reads the tables every 50 ms throughout.
    "diverge": one trial at an absurd learning rate (it needs a spec of its own: base_lr is per sweep)."""
    root = tmp_path_factory.mktemp("failures")
    spec = write_spec(root / "failures.yaml", digits_dataset, name="failures", epochs=EPOCHS, retries=1,
                      studies="ok: {norm: [bn], batch_size: [128]}\nhuge: {norm: [bn], batch_size: [4096]}")
    diverge_spec = write_spec(root / "diverge.yaml", digits_dataset, name="diverge", epochs=2, base_lr=1.0e8,
                              retries=2, studies="a: {norm: [bn], batch_size: [128]}")
    sweep_dir = root / "results" / "failures"
    poller = ResultsPoller(sweep_dir, watch_latest=(GOOD,))
    poller.start()
    launch = Launch(spec, root / "results", cwd=root)
    diverge = Launch(diverge_spec, root / "results", cwd=root)
    try:
        launch.wait_for(lambda: epoch_files(sweep_dir, GOOD), f"a first epoch of {GOOD}")
        workers = trial_workers(launch.sid, GOOD)
        assert len(workers) == 1, f"expected one worker for {GOOD}, found {workers}\n{launch.tail()}"
        os.kill(workers[0], signal.SIGKILL)
        killed_after = sorted(epoch_files(sweep_dir, GOOD))
        diverge_rc = diverge.wait()
        rc = launch.wait()
    finally:
        poller.stop()
        launch.kill()
        diverge.kill()
    return {"root": root, "sweep_dir": sweep_dir, "launch": launch, "rc": rc, "poller": poller,
            "killed_after": killed_after, "diverge": diverge, "diverge_rc": diverge_rc, "diverge_spec": diverge_spec}


@pytest.mark.slow
def test_sweep_exits_1_naming_the_failed_trial(failing_sweep):
    launch = failing_sweep["launch"]
    assert failing_sweep["rc"] == 1, launch.tail()
    assert f"1 trial(s) failed: {HUGE}" in launch.stdout, launch.tail()
    assert "Traceback" not in launch.stdout
    assert launch.left_behind == [], "Ray processes outlived the driver's exit"


@pytest.mark.slow
def test_raising_trial_is_retried_then_recorded_failed_with_its_error(failing_sweep):
    trials = pd.read_parquet(failing_sweep["sweep_dir"] / "trials").set_index("trial_key")
    huge = trials.loc[HUGE]
    assert huge["status"] == "failed" and huge["epochs"] == 0
    assert huge["attempts"] == 1 + 1, "retries: 1 means two attempts"
    assert huge["error"] == "ValueError: batch 4096 is larger than the 1437 training images", huge["error"]


@pytest.mark.slow
def test_killed_worker_resumes_from_its_checkpoint(failing_sweep):
    sweep_dir = failing_sweep["sweep_dir"]
    assert failing_sweep["killed_after"] == [f"{GOOD}-e0001.parquet"], "the kill came after epoch 1 only"
    good = pd.read_parquet(sweep_dir / "trials").set_index("trial_key").loc[GOOD]
    assert good["status"] == "completed" and good["epochs"] == EPOCHS and good["attempts"] == 2
    epochs = pd.read_parquet(sweep_dir / "epochs")
    assert_one_row_per_epoch(epochs, {GOOD: EPOCHS})
    assert epochs.sort_values("epoch")["attempt"].tolist() == [0] + [1] * (EPOCHS - 1)
    # the retried attempt loaded epoch 1's checkpoint: 'latest' was never written back to epoch 1
    assert failing_sweep["poller"].latest[GOOD] == [f"epoch-{e:04d}" for e in range(1, EPOCHS + 1)]


@pytest.mark.slow
def test_reader_polling_during_the_sweep_never_saw_a_partial_file(failing_sweep):
    poller = failing_sweep["poller"]
    assert poller.failures == []
    assert poller.reads > 20 and poller.counts == sorted(poller.counts) and poller.counts[-1] == EPOCHS


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
