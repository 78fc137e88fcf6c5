"""Per-replica batches on CPU: a trial with ``replicas: 2`` mirrors over two logical CPU devices, ``batch_size`` is
per replica, the lr follows the global batch, and BN normalizes each replica's half of the batch on its own.

TensorFlow's logical devices must be set before it initializes, so everything runs in one fresh subprocess."""
import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import numpy as np

from trainer import TrainSettings, TrialConfig, train_trial
from trainer.train import _strategy, configure_tensorflow

dataset, checkpoints = sys.argv[1], sys.argv[2]
configure_tensorflow(cpus=2, replicas=2)  # what train_trial does first; later calls are no-ops
import tensorflow as tf
from normalization import make_norm

strategy = _strategy(2)
# BN under the strategy, in training mode: replica 0 gets 4 images of 0s, replica 1 four of 10s.
with strategy.scope():
    bn = make_norm("bn", 3)
    bn.build((None, 4, 4, 3))
x = np.concatenate([np.zeros((4, 4, 4, 3)), np.full((4, 4, 4, 3), 10.0)]).astype("float32")
batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(8))
per_replica = strategy.run(lambda b: (bn(b, training=True), tf.reduce_mean(b)), args=(next(iter(batches)),))
outputs = [strategy.experimental_local_results(t) for t in per_replica]

reports = []
trial = TrialConfig(model="resnet8", norm="bn", batch_size=24, replicas=2,
                    train=TrainSettings(epochs=1, base_lr=0.1, base_batch=96, augment=False))
outcome = train_trial(trial, dataset, checkpoints, reports.append, cpus=2)
print("RESULT " + json.dumps({
    "devices": [d.name for d in tf.config.list_logical_devices("CPU")],
    "replicas": strategy.num_replicas_in_sync,
    "strategy": type(strategy).__name__,
    "bn_inputs_mean": [float(m) for m in outputs[1]],
    "bn_outputs": [np.asarray(o).tolist() for o in outputs[0]],
    "status": outcome.status,
    "reports": [m.to_dict() for m in reports],
}))
"""


@pytest.fixture(scope="module")
def replicated(tmp_path_factory, digits_dataset):
    tmp = tmp_path_factory.mktemp("replicas")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(digits_dataset), str(tmp / "checkpoints")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_two_replicas_mirror_over_two_logical_cpus(replicated):
    assert len(replicated["devices"]) == 2
    assert replicated["strategy"] == "MirroredStrategy" and replicated["replicas"] == 2


@pytest.mark.slow
def test_batch_is_per_replica_and_lr_follows_the_global_batch(replicated):
    assert replicated["status"] == "completed"
    (epoch,) = replicated["reports"]
    assert epoch["lr"] == pytest.approx(0.1 * 24 * 2 / 96)
    # 1,437 training images in full global batches of 48: 29 steps, 1,392 images (batches of 24 would be 59 x 24)
    images = epoch["images_per_second"] * epoch["epoch_seconds"]
    assert images == pytest.approx(29 * 48)


@pytest.mark.slow
def test_bn_normalizes_each_replica_on_its_own(replicated):
    assert replicated["bn_inputs_mean"] == [0.0, 10.0]  # each replica got its own half of the global batch
    for out in replicated["bn_outputs"]:
        # per-replica statistics: a constant half normalizes to 0; global ones (mean 5, std 5) would give -1 and +1
        assert max(abs(v) for v in _flat(out)) < 1e-3


def _flat(nested):
    return [v for item in nested for v in (_flat(item) if isinstance(item, list) else [item])]
