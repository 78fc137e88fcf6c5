"""The driver killed outright: ``gnsweep launch`` runs in a session of its own and gets SIGKILL (its process group,
then every process left in its session: Ray's gcs, raylet, agents and workers), then the same launch again.

Kill moments: (1) during startup, once a trial's worker has started, before any epoch row; (2) right after a state
change in mid-sweep: one trial just recorded completed, the other has its first epoch file and is in its second
epoch. The callback writes the trial's row right after each epoch file, so the kill can also land inside a Parquet
write; what such a kill leaves (a hidden ``.<id>.tmp`` holding part of a file, as ``_write_atomic`` renames only
complete files) is planted before the relaunch, which must ignore it.

The trials train with the fake trainer (tests/support/fake_trainer.py: real Ray Tune, results writer and Parquet, no
TensorFlow), told to hang where a kill must find them, so each kill lands at its moment whatever the machine's load;
that a real Keras trial resumes from its checkpoint is tests/faults/test_trial_failures.py's.
"""
import json
import socket

import pandas as pd
import pytest

from results import store
from tests.support.cli import fake_trainer_env, write_spec
from tests.support.launches import Launch, ResultsPoller, assert_one_row_per_epoch, epoch_rows, session_pids, \
    statuses, trials_table

EPOCHS = 2
FAST, SLOW = "bn-b128-s0", "bn-b32-s0"  # SLOW: 4x the steps of FAST, and where the second launch hangs


def completed_and_half_trained(sweep_dir):
    def condition():
        done = [k for k, s in statuses(sweep_dir).items() if s == "completed"]
        if len(done) != 1:
            return len(done) > 1
        other = SLOW if done[0] == FAST else FAST
        return bool(epoch_rows(sweep_dir, other))
    return condition


def plant_partial_files(sweep_dir, half: str) -> list:
    """What a SIGKILL in the middle of ``pq.write_table`` leaves: a hidden temp file holding the start of a file."""
    planted = []
    whole = (sweep_dir / "epochs" / f"{half}.parquet").read_bytes()
    for path in (sweep_dir / "epochs" / f".{'deadbeef' * 4}.tmp", sweep_dir / "trials" / f".{'deadbeef' * 4}.tmp",
                 sweep_dir / "epochs" / f".{half}-e{EPOCHS:04d}.parquet.deadbeef.tmp",  # as earlier versions named them
                 sweep_dir / "trials" / f".{half}.parquet.deadbeef.tmp"):
        path.write_bytes(whole[: len(whole) // 2])
        planted.append(path)
    return planted


@pytest.fixture(scope="module")
def killed_twice(tmp_path_factory, digits_dataset, shared_ray):
    root = tmp_path_factory.mktemp("driver-kill")
    spec = write_spec(root / "kill.yaml", digits_dataset, name="kill", epochs=EPOCHS, retries=1,
                      studies="a: {norm: [bn], batch_size: [128, 32]}")
    results = root / "results"
    sweep_dir = results / "kill"
    story = {"sweep_dir": sweep_dir, "killed": []}

    # (1) startup: a trial's worker has started (its row says running), no epoch yet (they hang in epoch 1)
    first = Launch(spec, results, cwd=root, extra_env=fake_trainer_env(hang={"*": 1}))
    first.wait_for(lambda: not trials_table(sweep_dir).empty, "a trial row")
    story["epochs_at_first_kill"] = epoch_rows(sweep_dir)
    story["killed"].append(first.kill())
    story["left_after_first_kill"] = session_pids(first.sid)
    story["first_pid"] = first.proc.pid
    story["claim_after_first_kill"] = json.loads((sweep_dir / "launch.json").read_text())

    # (2) mid-sweep: one trial completed, the other has epoch 1 and is training epoch 2 (where SLOW hangs)
    second = Launch(spec, results, cwd=root, extra_env=fake_trainer_env(hang={SLOW: 2}))
    second.wait_for(completed_and_half_trained(sweep_dir), "one trial completed and the other half-trained")
    story["killed"].append(second.kill())
    story["left_after_second_kill"] = session_pids(second.sid)
    story["rows_at_kill"] = epoch_rows(sweep_dir)
    story["file_mtimes_at_kill"] = {p.name: p.stat().st_mtime_ns for p in (sweep_dir / "epochs").glob("*.parquet")}
    story["trials_at_kill"] = trials_table(sweep_dir).set_index("trial_key")
    story["epochs_at_kill"] = pd.read_parquet(sweep_dir / "epochs")
    done = [k for k, s in story["trials_at_kill"]["status"].items() if s == "completed"]
    story["done"], story["half"] = done[0], (SLOW if done[0] == FAST else FAST)
    story["planted"] = plant_partial_files(sweep_dir, story["half"])
    story["rows_with_partial_files"] = len(pd.read_parquet(sweep_dir / "epochs"))

    # (3) the same launch again, on the shared Ray, with a reader polling the tables throughout
    poller = ResultsPoller(sweep_dir, watch_latest=(story["half"],))
    poller.start()
    third = Launch(spec, results, cwd=root, ray=shared_ray, extra_env=fake_trainer_env())
    try:
        story["rc"] = third.wait()
    finally:
        poller.stop()
    story.update(third=third, poller=poller)
    return story


@pytest.mark.slow
def test_each_kill_took_every_process_of_the_launch(killed_twice):
    assert killed_twice["epochs_at_first_kill"] == {}, "the first kill was meant to come before any epoch"
    assert killed_twice["left_after_first_kill"] == [] and killed_twice["left_after_second_kill"] == []
    # driver, gcs_server, raylet and agents at least: Ray was running and went down with the driver
    assert all(n >= 4 for n in killed_twice["killed"]), killed_twice["killed"]


@pytest.mark.slow
def test_relaunch_completes_every_trial_with_one_row_per_epoch(killed_twice):
    third, sweep_dir = killed_twice["third"], killed_twice["sweep_dir"]
    assert killed_twice["rc"] == 0, third.tail()
    assert "running 1 of 2 trials (1 already finished)" in third.stdout, third.stdout
    assert statuses(sweep_dir) == {FAST: "completed", SLOW: "completed"}
    assert_one_row_per_epoch(pd.read_parquet(sweep_dir / "epochs"), {FAST: EPOCHS, SLOW: EPOCHS})
    assert_one_row_per_epoch(store.read_epochs(sweep_dir), {FAST: EPOCHS, SLOW: EPOCHS})


@pytest.mark.slow
def test_completed_trial_is_not_run_again(killed_twice):
    sweep_dir, done = killed_twice["sweep_dir"], killed_twice["done"]
    before = killed_twice["trials_at_kill"].loc[done]
    after = trials_table(sweep_dir).set_index("trial_key").loc[done]
    assert after["attempts"] == before["attempts"] and after["ended_at"] == before["ended_at"]
    rows = {n: t for n, t in killed_twice["rows_at_kill"].items() if n.startswith(f"{done}-e")}
    assert len(rows) == EPOCHS and epoch_rows(sweep_dir, done) == rows, "its epoch rows were recorded again"
    own = sweep_dir / "epochs" / f"{done}.parquet"
    assert own.stat().st_mtime_ns == killed_twice["file_mtimes_at_kill"][own.name], "its epochs file was rewritten"


@pytest.mark.slow
def test_half_trained_trial_resumes_from_its_checkpoint(killed_twice):
    sweep_dir, half = killed_twice["sweep_dir"], killed_twice["half"]
    kept = {n: t for n, t in killed_twice["rows_at_kill"].items() if n.startswith(f"{half}-e")}
    assert sorted(kept) == [f"{half}-e0001"]
    assert {n: t for n, t in epoch_rows(sweep_dir, half).items() if n in kept} == kept
    rows = pd.read_parquet(sweep_dir / "epochs").query("trial_key == @half").set_index("epoch")["attempt"]
    attempts = int(trials_table(sweep_dir).set_index("trial_key").loc[half, "attempts"])
    assert rows[1] < rows[2] == attempts - 1, rows
    # it loaded epoch 1's checkpoint: after the pointer found at the start, the relaunch wrote epoch 2's only
    assert killed_twice["poller"].latest[half] == ["epoch-0001", f"epoch-{EPOCHS:04d}"]


@pytest.mark.slow
def test_partial_temp_files_are_ignored(killed_twice):
    sweep_dir = killed_twice["sweep_dir"]
    assert killed_twice["rows_with_partial_files"] == len(killed_twice["epochs_at_kill"]) == EPOCHS + 1
    assert all(p.exists() for p in killed_twice["planted"])
    assert len(pd.read_parquet(sweep_dir / "epochs")) == 2 * EPOCHS
    assert len(pd.read_parquet(sweep_dir / "trials")) == 2


@pytest.mark.slow
def test_reader_polling_during_the_relaunch_never_saw_a_partial_file(killed_twice):
    poller = killed_twice["poller"]
    assert poller.failures == []
    assert poller.reads > 20 and poller.counts == sorted(poller.counts)
    assert poller.counts[0] >= EPOCHS + 1 and poller.counts[-1] == 2 * EPOCHS


@pytest.mark.slow
def test_claim_of_a_killed_launch_does_not_block_the_next(killed_twice):
    """SIGKILL leaves the launch's claim behind; its pid is dead on this host, so the next launch took it over."""
    claim = killed_twice["claim_after_first_kill"]
    assert claim["pid"] == killed_twice["first_pid"] and claim["host"] == socket.gethostname()
    assert killed_twice["killed"][1] >= 4, "the second launch ran despite the first one's claim"
    assert not (killed_twice["sweep_dir"] / "launch.json").exists(), "the last launch released its claim"
