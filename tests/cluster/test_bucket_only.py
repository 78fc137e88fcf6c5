"""A cluster whose nodes share no path for data or results (``ray.cluster_utils.Cluster`` on one machine): the
dataset and the results live only in an S3 server (moto's on 127.0.0.1), each node keeps its own dataset cache
(``GNSWEEP_DATA_CACHE`` in that node's environment), and a sweep survives losing the node a trial runs on: the trial
resumes on another node from its checkpoint in the bucket and every row comes out exactly once.

"Share no path" on one machine: the nodes still share the code, the venv and Ray's session folder, as nodes built
from one image would; what they do not share is any place for the dataset or the results. Each trial reads the copy
in its own node's cache, which is asserted below, and the launch's folder gets nothing.

The trials train with the fake trainer (tests/support/fake_trainer.py): what is tested is where data, checkpoints and
rows go when a node is lost, not the model. It reads the dataset from the node's cache that the launch's glue filled,
and checkpoints each epoch into the bucket in ``trainer.checkpoints``' format; a real Keras checkpoint in the bucket
resuming is tests/results/test_object_storage.py's.
"""
import subprocess
import time

import pandas as pd
import pytest

from tests.support.cli import GNSWEEP, fake_trainer_env, process_env
from trainer.data import INFO_FILE, load_info
from trainer.data.cache import CACHE_ENV
from trainer.data.remote import upload
from trainer.storage import Location

EPOCHS = 2
STEP_S = 0.15  # an epoch of batch 64 on digits takes 3.3 s: the node is lost while its trial trains epoch 2
KEYS = ("bn-b64-s0", "gn-b64-g8-s0")


def epoch_rows(uri: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(uri)
    except (FileNotFoundError, OSError, ValueError):  # nothing written yet
        return pd.DataFrame()


@pytest.fixture(scope="module")
def bucket_sweep(ray_tmp, bucket, digits_dataset, tmp_path_factory):
    """A 0-CPU head and two 1-CPU workers, each with its own cache; a 2-trial sweep with its dataset and results in
    the bucket; the node of the first trial to record an epoch is killed, a spare node (own cache) joins."""
    from ray.cluster_utils import Cluster

    root = tmp_path_factory.mktemp("bucket-only")
    dataset = bucket.uri("cluster/datasets/digits")
    upload(digits_dataset, Location.of(dataset), load_info(digits_dataset))
    results = bucket.uri("cluster/results")
    spec = root / "spec.yaml"
    spec.write_text(f"""name: nodes
dataset: "{dataset}"
model: resnet8
train: {{epochs: {EPOCHS}, base_lr: 0.1, base_batch: 32}}
studies:
  a: {{norm: [bn, gn], batch_size: [64]}}
defaults: {{groups: 8}}
resources: {{cpu: 1}}
retries: 1
""")
    caches = {}

    def add_worker(c, name):
        node = c.add_node(num_cpus=1, env_vars={CACHE_ENV: str(root / f"cache-{name}")})
        caches[node.node_id] = root / f"cache-{name}"
        return node

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [add_worker(c, "a"), add_worker(c, "b")]
        c.wait_for_nodes()
        refused = storage_check(c.address, results, bucket.uri("cluster/datasets/nothing-here"))
        env = process_env(RAY_TMPDIR=ray_tmp, **fake_trainer_env(step_seconds=STEP_S))
        cwd = root / "driver"
        cwd.mkdir()
        with open(root / "stdout", "w") as out, open(root / "stderr", "w") as err:
            launch = subprocess.Popen([*GNSWEEP, "launch", str(spec), "--address", c.address, "--results", results,
                                       "--no-dashboard"], cwd=cwd, env=env, stdout=out, stderr=err)
            try:
                epochs_uri = bucket.uri("cluster/results/nodes/epochs")
                deadline = time.monotonic() + 300
                while (first := epoch_rows(epochs_uri)).empty:
                    assert launch.poll() is None and time.monotonic() < deadline, (root / "stderr").read_text()
                    time.sleep(0.2)
                row = first.iloc[0]
                lost = next(n for n in workers if n.node_id == row["node"])
                c.remove_node(lost, allow_graceful=False)
                killed_at = time.time()
                spare = add_worker(c, "spare")
                code = launch.wait(timeout=420)
            finally:
                if launch.poll() is None:
                    launch.kill()
    finally:
        c.shutdown()
    return {"code": code, "stdout": (root / "stdout").read_text(), "stderr": (root / "stderr").read_text(),
            "rows": epoch_rows(epochs_uri), "before": first, "trial": row["trial_key"], "lost": lost.node_id,
            "killed_at": killed_at, "caches": caches, "spare": spare.node_id, "cwd": cwd, "refused": refused,
            "dataset": dataset, "results": results}


def storage_check(address: str, results: str, unreadable: str) -> str:
    """The launch's cluster check for a dataset no node can read (the message), and for the real one (passes)."""
    import ray

    from orchestrator.launch.cluster import ClusterError, check_shared_storage

    ray.init(address=address, logging_level="WARNING")
    try:
        with pytest.raises(ClusterError) as refused:
            check_shared_storage(Location.of(results), Location.of(unreadable), echo=print)
    finally:
        ray.shutdown()
    return str(refused.value)


@pytest.mark.slow
def test_a_lost_nodes_trial_resumes_elsewhere_from_the_bucket_and_rows_come_out_once(bucket_sweep):
    s = bucket_sweep
    assert s["code"] == 0, s["stderr"][-3000:]
    rows = s["rows"]
    assert not rows.duplicated(["trial_key", "epoch"]).any()
    assert {k: sorted(g["epoch"]) for k, g in rows.groupby("trial_key")} == {k: [1, 2] for k in KEYS}
    trial = rows[rows["trial_key"] == s["trial"]].sort_values("epoch")
    first, resumed = trial.iloc[0], trial.iloc[1]
    assert first["node"] == s["lost"] and first["attempt"] == 0
    assert resumed["node"] != s["lost"] and resumed["attempt"] >= 1  # from the checkpoint: epoch 1 not trained again
    seconds = resumed["recorded_at"].timestamp() - s["killed_at"]
    where = "the spare node" if resumed["node"] == s["spare"] else "the other worker"
    print(f"\nnode loss: the resumed trial's next epoch was recorded {seconds:.1f} s after the node was killed "
          f"(on {where}; that epoch itself trained {resumed['epoch_seconds']:.1f} s)")
    assert seconds > 0
    assert "shared storage: checked 2 nodes" in s["stdout"]
    assert list(s["cwd"].iterdir()) == []  # nothing written where the driver runs


@pytest.mark.slow
def test_each_node_trained_from_its_own_cache(bucket_sweep):
    s = bucket_sweep
    assert s["code"] == 0, s["stderr"][-3000:]
    info = load_info(s["dataset"])
    ran = set(s["rows"]["node"])
    assert len(ran) >= 2
    for node, cache in s["caches"].items():
        copies = [p for p in cache.glob("*") if not p.name.startswith(".")] if cache.exists() else []
        if node in ran:
            assert len(copies) == 1 and load_info(copies[0]) == info, (node, copies)
            assert sorted(p.name for p in copies[0].iterdir()) == sorted(
                [INFO_FILE, *(x["file"] for split in ("train", "val") for x in info.shards[split])])
        else:
            assert copies == [], node


@pytest.mark.slow
def test_nodes_that_cannot_read_the_dataset_are_refused_by_name(bucket_sweep):
    message = bucket_sweep["refused"]
    assert message.startswith("object storage: 2 of 2 nodes cannot read the dataset "
                              "s3://gnsweep-data/cluster/datasets/nothing-here (")
    assert "credentials for the bucket" in message and "\n" not in message
