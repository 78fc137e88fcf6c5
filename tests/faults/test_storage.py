"""The results directory stops taking writes in the middle of a real sweep: the disk fills up, or it turns read-only.

Tests run as root, for whom ``chmod 0o555`` stops nothing. So the faults are real file systems in a private mount
namespace (``unshare --user --map-root-user --mount``: no privilege needed, nothing outside the launch sees them):
a 12 KiB tmpfs mounted on ``results/<sweep>/epochs`` (room for one epoch file; the second write gets ENOSPC from the
kernel), and a bind mount of ``epochs/`` on itself remounted read-only once the first epoch file is there (EROFS).
Only the epochs directory is affected; checkpoints and the trials table stay writable. Skipped where the machine
allows no such namespace. The trials train with the fake trainer (tests/support/fake_trainer.py: what fails here is
the driver's writing, not the model), slowed to seconds an epoch where the remount must come between two epochs.
"""
import shutil
import subprocess
from datetime import datetime, timezone
from types import SimpleNamespace

import pandas as pd
import pytest

from orchestrator.tune.results_writer import ResultsWriter
from results import store
from results.records import EpochRow
from results.schema import EPOCH_SCHEMA
from tests.support.cli import fake_trainer_env, write_spec
from tests.support.launches import Launch, assert_one_row_per_epoch

KEY = "bn-b128-s0"
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def namespace_or_skip() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot make a small or read-only file system without privileges")
    probe = subprocess.run([*UNSHARE, "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged mount namespace here ({probe.stderr.strip()})")
    return UNSHARE


def storage_error(launch, rc, *words) -> None:
    """Non-zero exit and one ``gnsweep:`` line naming the file and the reason, no traceback."""
    assert rc not in (0, 97), launch.tail()
    stderr = launch.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    ours = [line for line in stderr.splitlines() if line.startswith("gnsweep: ")]
    assert len(ours) == 1, stderr[-3000:]
    for word in words:
        assert word in ours[0], ours[0]


def spec_for(root, digits_dataset, name):
    spec = write_spec(root / f"{name}.yaml", digits_dataset, name=name, epochs=2,
                      studies="a: {norm: [bn], batch_size: [128]}")
    epochs_dir = root / "results" / name / "epochs"
    epochs_dir.mkdir(parents=True)  # the mount point
    return spec, epochs_dir


# Inside the namespace: a 12 KiB tmpfs on epochs/, the launch, then a verbatim copy of the tmpfs (hidden files too)
# to a directory outside it for the checks (the tmpfs goes away with the namespace).
DISK_FULL = 'mount -t tmpfs -o size=12k tmpfs "$EPOCHS" || exit 97; "$@"; rc=$?; cp -a "$EPOCHS"/. "$SAVED"/; exit $rc'
# Inside the namespace: bind epochs/ on itself, start the launch, and once its first epoch file is there remount the
# bind read-only (retrying while a write is in flight), then check that it is.
READ_ONLY = ('mount --bind "$EPOCHS" "$EPOCHS" || exit 97; "$@" & pid=$!; '
             'while [ -z "$(ls "$EPOCHS")" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done; '
             'n=0; until mount -o remount,bind,ro "$EPOCHS" "$EPOCHS" 2>/dev/null; do '
             '  n=$((n+1)); [ $n -gt 100 ] && echo "gnsweep-test: cannot remount read-only" >&2 && break; '
             '  sleep 0.01; done; '
             'touch "$EPOCHS/.probe" 2>/dev/null && echo "gnsweep-test: still writable" >&2; '
             'wait $pid')


@pytest.fixture(scope="module")
def storage_faults(tmp_path_factory, digits_dataset, shared_ray):
    """Two one-trial sweeps side by side on the shared Ray (only the drivers are in the namespace: the results
    writer is what the faults hit): one fills its disk, one turns read-only. Then the read-only one is launched
    again outside the namespace, where its directory is writable."""
    wrap = namespace_or_skip()
    root = tmp_path_factory.mktemp("storage")
    full_spec, full_epochs = spec_for(root, digits_dataset, "full")
    saved = root / "tmpfs-contents"
    saved.mkdir()
    ro_spec, ro_epochs = spec_for(root, digits_dataset, "readonly")
    full = Launch(full_spec, root / "results", cwd=root, wrap=[*wrap, "sh", "-c", DISK_FULL, "sh"], ray=shared_ray,
                  extra_env={"EPOCHS": str(full_epochs), "SAVED": str(saved), **fake_trainer_env()})
    ro = Launch(ro_spec, root / "results", cwd=root, wrap=[*wrap, "sh", "-c", READ_ONLY, "sh"], ray=shared_ray,
                extra_env={"EPOCHS": str(ro_epochs), **fake_trainer_env(step_seconds=0.3)})
    try:
        ro_rc = ro.wait()
        ro_files = sorted(p.name for p in ro_epochs.iterdir())
        again = Launch(ro_spec, root / "results", cwd=root, ray=shared_ray, extra_env=fake_trainer_env())
        full_rc = full.wait()
        again_rc = again.wait()
    finally:
        for launch in (full, ro):
            launch.kill()
    return SimpleNamespace(full=full, full_rc=full_rc, full_epochs=full_epochs, saved=saved, ro=ro, ro_rc=ro_rc,
                           ro_epochs=ro_epochs, ro_files=ro_files, again=again, again_rc=again_rc)


@pytest.mark.slow
def test_disk_full_keeps_what_was_written_readable(storage_faults):
    f = storage_faults
    assert f.full_rc not in (0, 97), f.full.tail()
    assert sorted(p.name for p in f.saved.iterdir()) == [f"{KEY}.parquet"], "a partial file was left"
    rows = pd.read_parquet(f.saved)
    assert rows["epoch"].tolist() == [1] and rows["trial_key"].tolist() == [KEY]


@pytest.mark.slow
def test_disk_full_is_one_line_naming_the_file(storage_faults):
    f = storage_faults
    storage_error(f.full, f.full_rc, str(f.full_epochs / f"{KEY}.parquet"), "No space left on device")


@pytest.mark.slow
def test_read_only_keeps_what_was_written_readable(storage_faults):
    f = storage_faults
    assert f.ro_rc not in (0, 97) and "gnsweep-test:" not in f.ro.stderr, f.ro.tail()
    assert f.ro_files == [f"{KEY}.parquet"], "a partial or hidden file was left"


@pytest.mark.slow
def test_read_only_is_one_line_naming_the_file(storage_faults):
    f = storage_faults
    storage_error(f.ro, f.ro_rc, str(f.ro_epochs / f"{KEY}.parquet"), "Read-only file system")


@pytest.mark.slow
def test_relaunch_once_writable_loses_no_row(storage_faults):
    f = storage_faults
    assert f.again_rc == 0, f.again.tail()
    epochs = pd.read_parquet(f.ro_epochs)
    assert_one_row_per_epoch(epochs, {KEY: 2})
    assert epochs.sort_values("epoch")["attempt"].tolist() == [0, 1]


def test_unwritable_results_directory_is_one_line_naming_the_file(tmp_path):
    """ENOTDIR/EEXIST: a regular file where ``epochs/`` should be. The results writer's write names the file it
    could not write; a reader names the file that is not a folder."""
    (tmp_path / "epochs").write_text("a file where the epochs directory should be")
    row = {**dict.fromkeys(EPOCH_SCHEMA.names), "trial_key": KEY, "epoch": 1}
    with pytest.raises(store.StoreError) as e:
        store.write_trial_epochs(tmp_path, KEY, [EpochRow(**row)])
    assert str(e.value).startswith(f"cannot write {tmp_path / 'epochs' / KEY}.parquet: ")
    assert "\n" not in str(e.value)
    with pytest.raises(store.DamagedResults) as e:
        store.read_epochs(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'epochs'}: not a folder of epoch rows (")


def fake_trial(key: str, config: dict):
    """The two attributes of a Tune trial that ResultsWriter reads."""
    return SimpleNamespace(config={"trial": {"key": key, "config": config}}, error_file=None)


def test_writer_takes_back_rows_of_an_unfinished_trial_read_with_pandas(tmp_path):
    """A relaunch after a crash hands the writer the trials table as read back (a null group count, a list of
    studies); rewriting that trial's rows must work (read with pandas, it raised ArrowInvalid: nan to int32 for
    every BN trial)."""
    config = {"model": "resnet8", "norm": "bn", "batch_size": 128, "groups": None, "channels_per_group": None,
              "seed": 0}
    first = ResultsWriter(tmp_path, "s", {KEY: ("a",)}, {})
    first.on_trial_start(0, [], fake_trial(KEY, config))
    prior = store.read_trial_rows(tmp_path)
    assert prior[KEY].groups is None and prior[KEY].studies == ("a",)

    again = ResultsWriter(tmp_path, "s", {KEY: ("a",)}, prior)
    trial = fake_trial(KEY, config)
    again.on_trial_start(0, [], trial)
    metrics = dict.fromkeys(("train_loss", "train_err", "val_loss", "val_err", "val_err_top5", "lr",
                             "epoch_seconds", "images_per_second"), 1.0)
    again.on_trial_result(0, [], trial, {**metrics, "epoch": 1, "node": "n"})
    again.on_trial_complete(0, [], trial)
    row = store.read_trials(tmp_path).iloc[0]
    assert row["status"] == "completed" and row["attempts"] == 2 and pd.isna(row["groups"])
    assert list(row["studies"]) == ["a"] and row["started_at"] < pd.Timestamp(datetime.now(timezone.utc))
    assert store.read_epochs(tmp_path)["attempt"].tolist() == [1]
