"""The issue's acceptance check, on real Ray and a real S3 server (moto's): ``data prepare --out s3://...``, then a
digits sweep whose ``dataset:`` and ``--results`` are both in the bucket, stopped by Ctrl-C (SIGINT to the launch's
process group) after its first epoch and launched again, gives the same rows as the same sweep on local folders.
The trials train from this machine's cache of the dataset; nothing is written to a local results folder.

What is tested is the orchestration (the bucket as the only place for data and results, the node's cache, Ctrl-C and
the relaunch), so the trials train with the fake trainer (tests/support/fake_trainer.py), which reads the dataset
from the cache the launch's glue fetched it into and checkpoints each epoch into the bucket in
``trainer.checkpoints``' format. Real Keras checkpoints in the bucket resuming exactly are
tests/results/test_object_storage.py's; a real model resuming to the same numbers, tests/trainer/test_train.py's."""
import os
import signal

import pandas as pd
import pytest

from tests.support import run_shared
from tests.support.cli import fake_trainer_env, gnsweep
from tests.support.launches import Launch, assert_one_row_per_epoch
from trainer.data import load_info
from trainer.data.cache import CACHE_ENV

EPOCHS = 2
KEYS = ("bn-b64-s0", "gn-b64-g8-s0")
CONFIG = ["trial_key", "model", "norm", "batch_size", "groups", "channels_per_group", "seed", "epoch", "lr"]
METRICS = ["train_loss", "train_err", "val_loss", "val_err", "val_err_top5"]


def spec_text(dataset: str) -> str:
    return f"""name: bucket
dataset: "{dataset}"
model: resnet8
train: {{epochs: {EPOCHS}, base_lr: 0.1, base_batch: 32}}
studies:
  a: {{norm: [bn, gn], batch_size: [64]}}
seeds: [0]
defaults: {{groups: 8}}
resources: {{cpu: 1}}
retries: 1
"""


def epoch_rows(uri: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(uri)
    except (FileNotFoundError, OSError, ValueError):  # nothing written yet
        return pd.DataFrame(columns=CONFIG)


@pytest.fixture(scope="module")
def runs(bucket, digits_dataset, tmp_path_factory, shared_ray):
    root = tmp_path_factory.mktemp("bucket-sweep")
    cache = run_shared.node_cache()  # the shared Ray's node cache; no other sweep on it reads a bucket dataset
    env = {CACHE_ENV: str(cache)}  # the driver's, as the node's
    dataset = bucket.uri("acceptance/digits")
    prepared = gnsweep("data", "prepare", "digits", "--out", dataset, cwd=root, timeout=300)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    spec = root / "bucket.yaml"
    spec.write_text(spec_text(dataset))
    results = bucket.uri("acceptance/results")
    epochs_uri = bucket.uri("acceptance/results/bucket/epochs")

    # the interrupted launch's trials stop in their second epoch until the Ctrl-C: however slowly the bucket is read
    # on a loaded machine, the interrupt lands after a first epoch and before the last
    first = Launch(spec, results, cwd=root, ray=shared_ray, extra_env={**env, **fake_trainer_env(hang={"*": 2})})
    try:
        first.wait_for(lambda: 0 < len(epoch_rows(epochs_uri)) < len(KEYS) * EPOCHS, "a first epoch in the bucket")
        before = epoch_rows(epochs_uri)
        os.killpg(first.sid, signal.SIGINT)
        rc1 = first.wait(120)
    finally:
        first.kill()
    again = Launch(spec, results, cwd=root, ray=shared_ray, extra_env={**env, **fake_trainer_env()})
    rc2 = again.wait()

    local_root = tmp_path_factory.mktemp("local-sweep")
    local_spec = local_root / "bucket.yaml"
    local_spec.write_text(spec_text(str(digits_dataset)))
    # the same sweep on local folders
    local = Launch(local_spec, local_root / "results", cwd=local_root, ray=shared_ray, extra_env=fake_trainer_env())
    rc3 = local.wait()
    return {"root": root, "cache": cache, "dataset": dataset, "first": first, "again": again, "local": local,
            "rc": (rc1, rc2, rc3), "before": before, "bucket": epoch_rows(epochs_uri),
            "local_rows": pd.read_parquet(local_root / "results" / "bucket" / "epochs")}


@pytest.mark.slow
def test_a_bucket_only_sweep_interrupted_and_relaunched_gives_the_rows_of_a_local_one(runs):
    rc1, rc2, rc3 = runs["rc"]
    assert rc1 == 128 + signal.SIGINT, runs["first"].tail()
    assert rc2 == 0, runs["again"].tail()
    assert rc3 == 0, runs["local"].tail()
    assert 0 < len(runs["before"]) < len(KEYS) * EPOCHS  # the interrupt came mid-sweep
    bucket, local = runs["bucket"], runs["local_rows"]
    assert_one_row_per_epoch(bucket, {k: EPOCHS for k in KEYS})
    assert_one_row_per_epoch(local, {k: EPOCHS for k in KEYS})
    order = ["trial_key", "epoch"]
    bucket, local = bucket.sort_values(order).reset_index(drop=True), local.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(bucket[CONFIG], local[CONFIG], check_dtype=False, check_categorical=False)
    pd.testing.assert_frame_equal(bucket[METRICS], local[METRICS], rtol=1e-4)
    assert (bucket["attempt"] >= 1).any()  # some epochs came from the relaunch


@pytest.mark.slow
def test_the_trials_trained_from_the_nodes_cache_and_wrote_nothing_local(runs):
    info = load_info(runs["dataset"])
    folders = [p for p in runs["cache"].iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and load_info(folders[0]) == info
    assert sorted(p.name for p in runs["root"].iterdir() if not p.name.startswith("launch-")) == ["bucket.yaml"]
