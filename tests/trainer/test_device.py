"""A trial's GPU share as a hard memory limit, and what happens when a trial needs more: the limit arithmetic, the
device's memory as nvidia-smi reports it, and a real ResourceExhaustedError through ``train_trial`` (CPU)."""
import numpy as np
import pytest

from trainer import TrainSettings, TrialConfig, train_trial
from trainer.device import CONTEXT_RESERVE_MB, DeviceMemoryError, earlier_oom, memory_limit_mb, \
    visible_gpu_memory_mb
from trainer.peak_memory import estimated_peak_bytes

SMI = "0, GPU-aaa, 81559\n1, GPU-bbb, 81559\n2, GPU-ccc, 40960\n"


def test_limit_is_the_fraction_of_the_device_less_the_cuda_context():
    assert memory_limit_mb(0.25, 81559) == int(0.25 * 81559) - CONTEXT_RESERVE_MB
    assert memory_limit_mb(1, 16384, reserve_mb=0) == 16384
    # four quarter-GPU trials fit on the device together, CUDA contexts included
    assert 4 * (memory_limit_mb(0.25, 16384) + CONTEXT_RESERVE_MB) <= 16384
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            memory_limit_mb(bad, 16384)
    with pytest.raises(ValueError, match="larger fraction"):
        memory_limit_mb(0.01, 16384)


def test_device_memory_is_that_of_the_gpus_ray_made_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert visible_gpu_memory_mb(lambda: SMI) == 81559
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-ccc,0")
    assert visible_gpu_memory_mb(lambda: SMI) == 40960  # the smallest of those visible
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpu_memory_mb(lambda: SMI) == 40960

    def missing():
        raise FileNotFoundError("nvidia-smi")

    assert visible_gpu_memory_mb(missing) is None


def test_estimate_grows_with_batch_and_shrinks_under_mixed_precision():
    f32 = [estimated_peak_bytes("resnet50", b, 64) for b in (2, 8, 32)]
    assert f32 == sorted(f32) and f32[2] > 4 * f32[0]
    assert estimated_peak_bytes("resnet50", 32, 64, "mixed_bfloat16") < 0.8 * f32[2]
    assert 4e9 < f32[2] < 16e9  # ResNet-50 at 64x64, batch 32: a few GB, as the formula documents
    with pytest.raises(ValueError, match="precision"):
        estimated_peak_bytes("resnet50", 2, 64, "float8")


def huge_model(*args, **kwargs):
    """A tiny classifier with one layer that asks for 4 TiB, as a too-large model asks a full GPU."""
    import keras
    import tensorflow as tf

    class Greedy(keras.layers.Layer):
        def call(self, x):
            n = tf.cast(tf.reduce_max(tf.abs(x)) * 0 + 1, tf.int64) * 2**38  # data-dependent: never constant-folded
            return x + tf.reduce_sum(tf.zeros(tf.reshape(n, (1,))))

    inputs = keras.Input(kwargs["input_shape"])
    x = keras.layers.GlobalAveragePooling2D()(Greedy()(inputs))
    return keras.Model(inputs, keras.layers.Dense(kwargs["num_classes"])(x))


def test_out_of_memory_fails_in_one_line_and_is_not_retried_with_the_same_limit(digits_dataset, tmp_path,
                                                                                 monkeypatch):
    import trainer.train

    built = []
    monkeypatch.setattr(trainer.train, "build_model", lambda *a, **k: built.append(1) or huge_model(*a, **k))
    trial = TrialConfig(model="resnet8", norm="bn", batch_size=32,
                        train=TrainSettings(epochs=1, base_batch=32, augment=False))
    with pytest.raises(DeviceMemoryError) as first:
        train_trial(trial, digits_dataset, tmp_path / "ckpt", cpus=1)
    line = str(first.value)
    need = estimated_peak_bytes("resnet8", 32, 16, num_classes=10) / 2**20
    assert line == f"trial bn-b32-s0 ran out of memory with no device memory limit (estimated need {need:,.0f} MB)"
    assert "\n" not in line and first.value.__cause__ is None
    assert earlier_oom(tmp_path / "ckpt", None) == line

    with pytest.raises(DeviceMemoryError, match="not retried under the same limit") as again:
        train_trial(trial, digits_dataset, tmp_path / "ckpt", cpus=1)
    assert str(again.value).startswith(line) and len(built) == 1  # refused before building anything


def test_a_retry_under_a_larger_limit_is_allowed(tmp_path):
    from trainer.device import record_oom

    record_oom(tmp_path, 4000, "trial x ran out")
    assert earlier_oom(tmp_path, 4000) == "trial x ran out" and earlier_oom(tmp_path, 3000) == "trial x ran out"
    assert earlier_oom(tmp_path, 8000) is None
    assert earlier_oom(tmp_path / "other", 4000) is None
    assert np.isfinite(memory_limit_mb(0.5, 8000))


@pytest.mark.skipif(not __import__("pathlib").Path("/dev/nvidia0").exists(), reason="no GPU on this machine")
def test_a_gpu_trial_gets_its_fraction_as_a_hard_limit_on_real_gpus():
    import subprocess
    import sys

    code = ("import tensorflow as tf\n"
            "from trainer.train import configure_tensorflow\n"
            "from trainer.device import memory_limit_mb, visible_gpu_memory_mb\n"
            "limit = configure_tensorflow(cpus=1, gpu=0.25)\n"
            "gpu = tf.config.list_physical_devices('GPU')[0]\n"
            "(conf,) = tf.config.get_logical_device_configuration(gpu)\n"
            "tf.zeros((1024, 1024)).numpy()\n"
            "print(limit, conf.memory_limit, memory_limit_mb(0.25, visible_gpu_memory_mb()))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    limit, configured, expected = (int(v) for v in run.stdout.split()[-3:])
    assert limit == configured == expected > 0
