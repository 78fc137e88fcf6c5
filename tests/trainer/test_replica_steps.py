"""Why a multi-replica trial runs one step per call: Keras' multi-step loop (steps_per_execution > 1) under
MirroredStrategy fails in the installed Keras (keras-team/keras#19246). Checked on 2 logical CPUs in a fresh
process; when Keras fixes it this test fails, saying to let ``steps_per_execution`` use several steps for replicas."""
import subprocess
import sys

import pytest

from trainer.train import steps_per_execution

SCRIPT = r"""
from trainer.train import configure_tensorflow
configure_tensorflow(cpus=2, replicas=2)
import numpy as np, tensorflow as tf, keras
from trainer.models import build_model
from trainer.train import _strategy
strategy = _strategy(2)
for spe in (1, 4):
    with strategy.scope():
        m = build_model("seed_cnn", norm="bn", num_classes=10, input_shape=(16, 16, 3))  # the lightest model
        m.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=spe)
    x = np.random.rand(64, 16, 16, 3).astype("float32"); y = np.random.randint(0, 10, 64).astype("int32")
    try:
        m.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat(), epochs=1, steps_per_epoch=8, verbose=0)
        print("SPE", spe, "ok", flush=True)
    except Exception as e:
        print("SPE", spe, "fails", type(e).__name__, flush=True)
"""


def test_replicas_run_one_step_per_call():
    assert steps_per_execution(2, replicas=8) == 1 and steps_per_execution(2) == 32


@pytest.mark.slow
def test_keras_multi_step_loop_still_fails_under_mirrored_strategy():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("SPE")]
    assert lines[0] == "SPE 1 ok", run.stdout + run.stderr[-2000:]
    assert lines[1].startswith("SPE 4 fails"), ("Keras now runs several steps per call under MirroredStrategy: let "
                                                "trainer.train.steps_per_execution use them for replicas > 1")
