"""GPU packing on a real Ray cluster with fake GPUs: small-batch trials share a GPU (``by_batch_size`` asks for a
quarter), batch-32 trials get a whole one, and a device is never given more than one GPU in all.

The trainable is a small real function run through ``run_trials`` and the ``ResultsWriter``: it records what Ray
gave it (``CUDA_VISIBLE_DEVICES``, ``ray.get_gpu_ids()``, its node, the trial's resources) and when it ran, and
reports two fake epochs. Ray only counts the fake GPUs; nothing here touches a real one.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from results.records import EPOCH_METRICS
from tests.support.local_ray import private_ray_tmp

HOLD_SECONDS = 4.0
SPEC = {
    "name": "packing", "dataset": "builtin:digits", "model": "resnet8",
    "train": {"epochs": 2, "base_lr": 0.1, "base_batch": 32},
    "studies": {"small": {"norm": ["bn", "gn"], "batch_size": [2, 4]},
                "large": {"norm": ["bn", "gn"], "batch_size": [32]}},
    "seeds": [0, 1], "defaults": {"groups": 8},
    "resources": {"cpu": 0.5, "gpu": 1, "by_batch_size": {2: {"gpu": 0.25}, 4: {"gpu": 0.25}}},
    "retries": 0,
}


def recording_trial(config: dict) -> None:
    """Stands in for ``run_trial``: records its device assignment and run interval, reports two fake epochs."""
    import ray
    from ray import tune

    start = time.time()
    node = ray.get_runtime_context().get_node_id()
    record = {"key": config["trial"]["key"], "batch_size": config["trial"]["config"]["batch_size"], "node": node,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "gpu_ids": [str(i) for i in ray.get_gpu_ids()],
              "allow_growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
              "resources": tune.get_context().get_trial_resources().required_resources}
    for epoch in (1, 2):
        time.sleep(HOLD_SECONDS / 2)
        tune.report({**{k: 1.0 for k in EPOCH_METRICS}, "epoch": epoch, "node": node})
    record.update(start=start, end=time.time())
    Path(config["checkpoint_root"], f"{record['key']}.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Two nodes with 4 CPUs and 3 fake GPUs each (and a 0-CPU head): room for all 12 trials of ``SPEC`` at once."""
    import ray
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    from orchestrator.launch.launcher import LaunchOptions, start_ray
    from orchestrator.spec.plan import plan_trials
    from orchestrator.spec.validation import parse_spec
    from orchestrator.tune.run import run_trials
    from orchestrator.tune.results_writer import ResultsWriter

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    sweep_dir = tmp_path_factory.mktemp("packing") / "packing"
    (sweep_dir / "checkpoints").mkdir(parents=True)
    spec = parse_spec(SPEC)
    trials = plan_trials(spec)
    with private_ray_tmp():  # keeps this cluster out of /tmp/ray/ray_current_cluster
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            nodes = [cluster.add_node(num_cpus=4, num_gpus=3) for _ in range(2)]
            cluster.wait_for_nodes()
            start_ray(LaunchOptions(address=cluster.address, dashboard=False), echo=print)
            writer = ResultsWriter(sweep_dir, spec.name, {t.key: t.studies for t in trials}, {})
            run_trials(spec, trials, sweep_dir=sweep_dir, dataset_dir=Path("/unused"), callbacks=[writer],
                       trainable=recording_trial)
        finally:
            ray.shutdown()
            cluster.shutdown()
    records = [json.loads(p.read_text()) for p in (sweep_dir / "checkpoints").glob("*.json")]
    return spec, trials, sweep_dir, records, {n.node_id for n in nodes}


def device_timelines(records: list[dict]) -> dict[tuple, list[tuple[float, float, str]]]:
    """Per (node, GPU id): (time, +fraction at start / -fraction at end, trial key) events in time order."""
    events: dict[tuple, list] = {}
    for r in records:
        fraction = r["resources"]["GPU"] / len(r["gpu_ids"])
        for gpu in r["gpu_ids"]:
            events.setdefault((r["node"], gpu), []).extend([(r["start"], fraction, r["key"]),
                                                            (r["end"], -fraction, r["key"])])
    return {device: sorted(ev, key=lambda e: (e[0], e[1])) for device, ev in events.items()}  # ends before starts


def peaks(events: list[tuple[float, float, str]]) -> tuple[float, int]:
    """The largest sum of GPU fractions and the most trials at once on one device."""
    total, running, most, most_trials = 0.0, 0, 0.0, 0
    for _, delta, _ in events:
        total += delta
        running += 1 if delta > 0 else -1
        most, most_trials = max(most, total), max(most_trials, running)
    return most, most_trials


@pytest.mark.slow
def test_every_trial_ran_and_was_recorded(packed):
    spec, trials, sweep_dir, records, _ = packed
    assert sorted(r["key"] for r in records) == sorted(t.key for t in trials) and len(trials) == 12
    status = pd.read_parquet(sweep_dir / "trials")
    assert len(status) == 12 and set(status["status"]) == {"completed"}
    assert len(pd.read_parquet(sweep_dir / "epochs")) == 12 * 2


@pytest.mark.slow
def test_trials_get_the_resources_the_spec_gives_their_batch_size(packed):
    spec, _, _, records, nodes = packed
    for r in records:
        want = spec.resources_for(r["batch_size"])
        assert r["resources"] == {"CPU": want["cpu"], "GPU": want["gpu"]}, r["key"]
        assert r["node"] in nodes  # never the 0-CPU head
        assert len(r["gpu_ids"]) == 1 and r["cuda_visible_devices"] == r["gpu_ids"][0], r


@pytest.mark.slow
def test_small_batches_share_a_gpu_and_no_gpu_is_oversubscribed(packed):
    _, _, _, records, _ = packed
    small = [r for r in records if r["batch_size"] in (2, 4)]
    shared = 0
    for device, events in device_timelines(records).items():
        most, _ = peaks(events)
        assert most <= 1 + 1e-9, f"{device}: GPU fractions add up to {most}"
        _, most_small = peaks([e for e in events if e[2] in {r["key"] for r in small}])
        assert most_small <= 4
        shared = max(shared, most_small)
    assert shared >= 2, "no two small-batch trials ever ran on one GPU at the same time"


@pytest.mark.slow
def test_a_large_batch_trial_has_its_gpu_to_itself(packed):
    _, _, _, records, _ = packed
    timelines = device_timelines(records)
    for r in (r for r in records if r["batch_size"] == 32):
        others = [e for e in timelines[(r["node"], r["gpu_ids"][0])] if e[2] != r["key"] and e[1] > 0]
        overlapping = [e[2] for e in others if r["start"] < e[0] < r["end"]]
        assert not overlapping, f"{r['key']} shared its GPU with {overlapping}"


@pytest.mark.slow
def test_trials_let_tensorflow_grow_gpu_memory(packed):
    """Fractional trials share a device's memory: TensorFlow must not grab it all. The worker env says so (checked
    inside every trial); ``configure_tensorflow`` also sets memory growth per GPU, checked where a GPU exists."""
    from orchestrator.tune.run import WORKER_ENV

    assert WORKER_ENV["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert {r["allow_growth"] for r in packed[3]} == {"true"}


@pytest.mark.skipif(not Path("/dev/nvidia0").exists(), reason="no GPU on this machine")
def test_configure_tensorflow_sets_memory_growth_on_real_gpus():
    code = ("import tensorflow as tf\n"
            "from trainer.train import configure_tensorflow\n"
            "configure_tensorflow(cpus=1)\n"
            "gpus = tf.config.list_physical_devices('GPU')\n"
            "print(len(gpus), all(tf.config.experimental.get_memory_growth(g) for g in gpus))\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    count, growth = run.stdout.split()[-2:]
    assert int(count) > 0 and growth == "True"
