"""A real Ray cluster of several nodes on one machine (``ray.cluster_utils.Cluster``): a sweep joined with
``--address`` spreads over the workers, survives losing the node a trial runs on, checks that every node sees the
results, and ``gnsweep status`` reads what it wrote. (A local launch's dashboard, on loopback and opened to the
network on purpose, is tests/faults/test_interrupts.py's.)

The cluster's head has no CPUs, so every trial runs on a worker that can be removed. Ray records the newest
cluster's address in ``$RAY_TMPDIR/ray/ray_current_cluster`` and a plain ``ray.init()`` on the machine would join it,
so the cluster runs under a private ``RAY_TMPDIR``.

The trials train with the fake trainer (tests/support/fake_trainer.py: real Ray Tune, results writer and Parquet, no
TensorFlow): what is tested is where Ray puts them and how the sweep survives a node, not the model. An epoch takes
seconds, so the node is lost while its trial has an epoch to go.
"""
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.cli import GNSWEEP, fake_trainer_env, gnsweep, process_env, write_spec
from tests.support.launches import epoch_rows, wait_until

EPOCHS = 2
TRIALS = ["bn-b128-s0", "bn-b64-s0", "gn-b64-g8-s0"]
STEP_SECONDS = 0.2  # 11 or 22 steps an epoch (batch 128 or 64): seconds between an epoch row and the next


def private_ray_env(tmp: str, **extra) -> dict:
    return process_env(RAY_TMPDIR=tmp, **extra)


@pytest.fixture(scope="module")
def cluster(ray_tmp):
    """A 0-CPU head and two 1-CPU workers."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


def first_epoch_row(epochs_dir: Path, launch: subprocess.Popen, stderr: Path, timeout: float = 240):
    def row():
        files = sorted(epochs_dir.glob("*.parquet")) if epochs_dir.exists() else []
        return (files[0], pq.read_table(files[0]).to_pylist()[0]) if files else None

    return wait_until(row, launch, "an epoch row", timeout, tail=lambda: stderr.read_text()[-3000:])


@pytest.fixture(scope="module")
def cluster_sweep(cluster, ray_tmp, tmp_path_factory, digits_dataset):
    """One sweep of 3 trials on the 2 workers; when the first epoch row appears, the node that trial runs on is
    killed (not drained) and a fresh node joins. Returns what the test needs to judge the outcome."""
    c, workers = cluster
    root = tmp_path_factory.mktemp("cluster-sweep")
    spec = write_spec(root / "multi.yaml", digits_dataset, name="multi", epochs=EPOCHS,
                      studies="norms: {norm: [bn, gn], batch_size: [64]}\nsmall: {norm: [bn], batch_size: [128]}")
    results = root / "results"
    env = private_ray_env(ray_tmp, **fake_trainer_env(step_seconds=STEP_SECONDS))
    with open(root / "stdout", "w") as out, open(root / "stderr", "w") as err:
        launch = subprocess.Popen([*GNSWEEP, "launch", spec, "--address", c.address, "--results", results,
                                   "--no-dashboard"], cwd=root, env=env, stdout=out, stderr=err)
        try:
            path, row = first_epoch_row(results / "multi" / "epochs", launch, root / "stderr")
            lost = next(n for n in workers if n.node_id == row["node"])
            before = epoch_rows(results / "multi", row["trial_key"])
            c.remove_node(lost, allow_graceful=False)
            spare = c.add_node(num_cpus=1)
            code = launch.wait(timeout=420)
        finally:
            if launch.poll() is None:
                launch.kill()
    return {"root": root, "results": results, "code": code, "stdout": (root / "stdout").read_text(),
            "stderr": (root / "stderr").read_text(), "lost": lost.node_id, "trial": row["trial_key"],
            "before": before, "workers": [n.node_id for n in workers], "spare": spare.node_id,
            "head": c.head_node.node_id}


@pytest.mark.slow
def test_trials_ran_on_both_workers_and_none_on_the_head(cluster_sweep):
    s = cluster_sweep
    assert s["code"] == 0, s["stderr"][-3000:]
    epochs = pd.read_parquet(s["results"] / "multi" / "epochs")
    assert sorted(epochs["trial_key"].unique()) == TRIALS and len(epochs) == len(TRIALS) * EPOCHS
    nodes = set(epochs["node"])
    assert set(s["workers"]) <= nodes <= {*s["workers"], s["spare"]}
    assert s["head"] not in nodes
    trials = pd.read_parquet(s["results"] / "multi" / "trials")
    assert set(trials["status"]) == {"completed"} and (trials["epochs"] == EPOCHS).all()


@pytest.mark.slow
def test_a_trial_on_a_lost_node_resumes_from_its_checkpoint_elsewhere(cluster_sweep):
    s = cluster_sweep
    assert s["code"] == 0, s["stderr"][-3000:]
    epochs_dir = s["results"] / "multi" / "epochs"
    rows = pd.read_parquet(epochs_dir).query("trial_key == @s['trial']").sort_values("epoch")
    assert rows["epoch"].tolist() == list(range(1, EPOCHS + 1))  # one row per epoch, no gap
    # rows recorded before the node was lost are kept as recorded (the trial's epochs are folded into one file once
    # it ends): those epochs were not trained again
    after = epoch_rows(s["results"] / "multi", s["trial"])
    assert s["before"] and {n: t for n, t in after.items() if n in s["before"]} == s["before"]
    done_before = len(s["before"])
    earlier, later = rows.iloc[:done_before], rows.iloc[done_before:]
    assert set(earlier["node"]) == {s["lost"]} and set(earlier["attempt"]) == {0}
    assert len(later) and s["lost"] not in set(later["node"]) and (later["attempt"] >= 1).all()
    trial = pd.read_parquet(s["results"] / "multi" / "trials").set_index("trial_key").loc[s["trial"]]
    assert trial["status"] == "completed" and trial["attempts"] >= 2


@pytest.mark.slow
def test_every_node_was_checked_for_shared_storage(cluster_sweep):
    assert "shared storage: checked 2 nodes" in cluster_sweep["stdout"]


@pytest.mark.slow
def test_status_reads_a_cluster_sweep(cluster_sweep):
    s = cluster_sweep
    run = gnsweep("status", "multi", "--results", s["results"], cwd=s["root"], timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.strip().splitlines()
             if not line.startswith("remaining: ") and "trials ended" not in line]
    assert len(lines) == 1 + len(TRIALS)
    for line in lines[1:]:
        _, status, epochs, latest, final, left = line.split()  # left: '-', nothing left of a finished trial
        assert (status, int(epochs)) == ("completed", EPOCHS) and 0 <= float(latest) <= 100 and 0 <= float(final) <= 100


@pytest.mark.slow
def test_nodes_that_cannot_see_the_storage_are_refused_by_name(cluster, tmp_path, digits_dataset):
    import ray

    from orchestrator.launch.cluster import ClusterError, check_shared_storage, node_name, trial_nodes, unseen_paths

    c, _ = cluster
    ray.init(address=c.address, logging_level="WARNING")
    try:
        deadline = time.monotonic() + 90  # the node killed by the sweep above stays "alive" until GCS's health check
        while len(nodes := trial_nodes()) != 2 and time.monotonic() < deadline:  # notices it (tens of seconds)
            time.sleep(1)
        names = sorted(node_name(n) for n in nodes)
        assert len(nodes) == 2
        gone = Path(tempfile.mkdtemp(dir=tmp_path))
        (gone / "marker").write_text("x")
        shutil.rmtree(gone)  # exists for nobody now: a directory only the driver's machine ever had
        blind = unseen_paths({"results": gone / "marker", "seen": digits_dataset / "dataset.json"}, nodes)
        assert list(blind) == ["results"] and sorted(blind["results"]) == names
        with pytest.raises(ClusterError) as refused:
            check_shared_storage(tmp_path, gone, echo=print)
        message = str(refused.value)
        assert "\n" not in message and f"cannot see the dataset {gone}" in message
        assert all(name in message for name in names) and "every node mounts" in message
        assert not list(tmp_path.glob(".storage-check-*"))  # the marker is cleaned up
        lines = []
        check_shared_storage(tmp_path, digits_dataset, echo=lines.append)
        assert lines == ["shared storage: checked 2 nodes"]
    finally:
        ray.shutdown()
