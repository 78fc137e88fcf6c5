"""Results and checkpoints on an object store, through pyarrow's S3 file system, against a real S3 server (moto's)
on 127.0.0.1: the Parquet store, a trial's checkpoints (a real Keras model's), and a whole sweep launched with
``--results s3://...`` (its trials train with the fake trainer, which writes its checkpoints to the bucket through
``trainer.checkpoints`` as the real one does)."""
import dataclasses
import os
import signal
from datetime import datetime, timezone

import pandas as pd
import pyarrow.fs as pafs
import pytest

from results import store
from results.records import EpochRow
from tests.support.cli import fake_trainer_env, gnsweep, write_spec
from trainer import checkpoints
from trainer.config import EpochMetrics
from trainer.storage import Location


def epoch_row(epoch: int, val_err: float) -> EpochRow:
    return EpochRow(**{"sweep": "t", "trial_key": "bn-b32-s0", "model": "resnet8", "norm": "bn", "batch_size": 32,
            "groups": None, "channels_per_group": None, "seed": 0, "epoch": epoch, "train_loss": 1.0,
            "train_err": 40.0, "val_loss": 1.1, "val_err": val_err, "val_err_top5": 5.0, "lr": 0.1,
            "epoch_seconds": 2.0, "images_per_second": 700.0, "attempt": 0, "node": "n1",
            "recorded_at": datetime.now(timezone.utc)})


class Stop(Exception):
    pass


class OpenThenInterrupt:
    """The bucket's file system, with a SIGINT delivered to this process right after an output stream opens: where a
    Ctrl-C lands between opening an upload and writing it."""

    def __init__(self, fs):
        self.fs = fs

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def open_output_stream(self, path):
        stream = self.fs.open_output_stream(path)
        os.kill(os.getpid(), signal.SIGINT)
        return stream


def test_ctrl_c_in_the_middle_of_an_upload_publishes_the_whole_object_then_interrupts(bucket):
    """pyarrow closes a stream an exception leaves, and a closed upload is published: Ctrl-C right after the open
    once put an empty object where a results file was (the relaunch refused the sweep). The interrupt now comes
    after the write, which is whole."""
    def stop(signum, frame):
        raise Stop()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        where = Location.of(bucket.uri("interrupted/file.bin"))
        where.write_bytes(b"old")
        hostile = dataclasses.replace(where, fs=OpenThenInterrupt(where.fs))
        with pytest.raises(Stop):
            hostile.write_bytes(b"new, whole")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert where.read_bytes() == b"new, whole"


def test_location_keeps_the_uri_options_for_its_children(bucket):
    loc = Location.of(bucket.uri("a/b"))
    child = loc / "c" / "d.parquet"
    assert not loc.local and child.path == f"{bucket.name}/a/b/c/d.parquet"
    assert str(child) == bucket.uri("a/b/c/d.parquet") and Location.of(str(child)).path == child.path


def test_epochs_on_s3_first_write_wins_and_read_with_plain_pandas(bucket):
    sweep = bucket.uri("store/t")
    assert store.write_epoch_row(sweep, epoch_row(1, 30.0))
    assert not store.write_epoch_row(sweep, epoch_row(1, 99.0))
    assert store.write_epoch_row(sweep, epoch_row(2, 20.0))
    df = store.read_epochs(sweep)
    assert df["epoch"].tolist() == [1, 2] and df["val_err"].tolist() == [30.0, 20.0]
    plain = pd.read_parquet(bucket.uri("store/t/epochs"))
    assert sorted(plain["epoch"]) == [1, 2] and str(plain["batch_size"].dtype) == "int32"
    assert Location.of(sweep).files() == []  # only epochs/ under it, no stray files at the top


def test_checkpoints_on_s3_resume_the_latest_epoch_and_drop_older_ones(bucket):
    import numpy as np

    from trainer.models import build_model
    from trainer.train import compile_model
    from trainer.config import TrainSettings, TrialConfig

    trial = TrialConfig(model="resnet8", norm="gn", batch_size=8, groups=8, train=TrainSettings(epochs=2))
    model = build_model("resnet8", norm="gn", num_classes=10, input_shape=(16, 16, 3), groups=8)
    compile_model(model, trial, steps_per_epoch=4)
    x, y = np.random.default_rng(0).normal(size=(32, 16, 16, 3)), np.arange(32) % 10
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    where = bucket.uri("ckpt/gn-b8-g8-s0")
    metrics = EpochMetrics(1, 2.0, 80.0, 2.1, 85.0, 50.0, 0.1, 1.0, 100.0)
    assert checkpoints.load(where) is None
    checkpoints.save(where, model, 1, [metrics])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    checkpoints.save(where, model, 2, [metrics, metrics])
    ckpt = checkpoints.load(where)
    assert ckpt.epoch == 2 and len(ckpt.history) == 2
    for a, b in zip(ckpt.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(ckpt.model.optimizer.iterations) == int(model.optimizer.iterations) == 8
    infos = Location.of(where).fs.get_file_info(pafs.FileSelector(f"{bucket.name}/ckpt/gn-b8-g8-s0"))
    assert sorted(i.base_name for i in infos) == ["epoch-0002", "latest"]


def remote_spec(path, dataset):
    return write_spec(path, dataset, name="remote", studies="norms: {norm: [bn, gn], batch_size: [128]}", retries=0)


def test_a_results_uri_of_an_unknown_scheme_or_a_missing_bucket_is_one_line(bucket, tmp_path, digits_dataset):
    spec = remote_spec(tmp_path / "remote.yaml", digits_dataset)
    for results, words in (("nosuch://x/y", "--results nosuch://x/y: cannot open"),
                           (f"s3://no-such-bucket/r?{bucket.options}", "--results: cannot write")):
        run = gnsweep("launch", spec, "--results", results, "--no-dashboard", cwd=tmp_path, timeout=120)
        assert run.returncode == 2, run.stdout + run.stderr
        lines = [ln for ln in run.stderr.splitlines() if ln.startswith("gnsweep: ")]
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_sweep_with_results_on_s3(bucket, tmp_path, digits_dataset, shared_ray):
    """Ray Tune, the driver's Parquet writer and the trial workers' checkpoints all go to the bucket; status and
    report read it back; a relaunch finds every trial finished there. Nothing is written to a local results dir.
    The trials run on the session's Ray, whose workers see the bucket only through its URI and their credentials."""
    spec = remote_spec(tmp_path / "remote.yaml", digits_dataset)
    results = bucket.uri("sweeps")
    run = gnsweep("launch", spec, "--results", results, "--no-dashboard", "--address", shared_ray.address,
                  cwd=tmp_path, timeout=400, env={**shared_ray.join_env, **fake_trainer_env()})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    epochs = pd.read_parquet(bucket.uri("sweeps/remote/epochs"))
    assert sorted(zip(epochs["trial_key"], epochs["epoch"])) == [
        ("bn-b128-s0", 1), ("bn-b128-s0", 2), ("gn-b128-g8-s0", 1), ("gn-b128-g8-s0", 2)]
    trials = pd.read_parquet(bucket.uri("sweeps/remote/trials"))
    assert set(trials["status"]) == {"completed"}
    sweep = Location.of(bucket.uri("sweeps/remote"))
    assert (sweep / "checkpoints" / "bn-b128-s0" / "latest").read_text() == "epoch-0002"
    assert (sweep / "tune").is_dir()
    runs = sweep / "tensorboard"  # the driver's TensorBoard event files in the bucket too: the run's hyperparameters
    # (000000), then one per (trial, epoch)
    assert [f.name for f in (runs / "gn-b128-g8-s0").files()] == [f"events.out.tfevents.{e:06d}.gnsweep"
                                                                  for e in (0, 1, 2)]

    status = gnsweep("status", "remote", "--results", results, cwd=tmp_path, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    rows = [line.split() for line in status.stdout.splitlines()[1:] if line.startswith(("bn-", "gn-"))]
    assert [r[:3] for r in rows] == [["bn-b128-s0", "completed", "2"], ["gn-b128-g8-s0", "completed", "2"]]
    assert all(0 <= float(r[4]) <= 100 for r in rows)  # a number, not nan or '-'
    report = gnsweep("report", "remote", "--results", results, cwd=tmp_path, timeout=120)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "results" / "remote" / "report" / "report.md").stat().st_size > 500
    again = gnsweep("launch", spec, "--results", results, "--no-dashboard", cwd=tmp_path, timeout=120)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout + again.stderr
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["remote"]
    assert sorted(p.name for p in (tmp_path / "results" / "remote").iterdir()) == ["report"]


def test_sweep_claim_on_s3_refuses_a_live_launch_and_takes_over_an_expired_one(bucket):
    """One launch per sweep holds for results in a bucket too (shared by nodes without a common file system)."""
    import json
    import time

    from orchestrator.launch.lock import LOCK_FILE, LockError, lock_sweep

    sweep = Location.of(bucket.uri("claims/s"))
    other = {"id": "f" * 32, "host": "node-b.example", "pid": 4242, "pid_started": None,
             "since": "2026-12-01T10:00:00+00:00", "heartbeat": time.time(), "lease_seconds": 120.0}
    (sweep / LOCK_FILE).write_text(json.dumps(other))
    with pytest.raises(LockError, match="host node-b.example, pid 4242"):
        lock_sweep(sweep, "s", print)
    (sweep / LOCK_FILE).write_text(json.dumps({**other, "heartbeat": time.time() - 3600}))
    held = lock_sweep(sweep, "s", print)
    assert json.loads((sweep / LOCK_FILE).read_text())["pid"] == os.getpid()
    held.release()
    assert not (sweep / LOCK_FILE).exists()
