"""Training one trial with the paper's protocol (section 4.1), from a fresh model or from its last checkpoint.

A library function: no Ray here. The caller passes a ``report`` callback that receives each epoch's metrics after
that epoch is checkpointed; on resume the checkpointed epochs are reported again first, so a caller that lost a
report (a crash between checkpoint and report) gets it back, and de-duplicates by epoch.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable


from trainer import checkpoints
from trainer.config import EpochMetrics, TrialConfig, TrialOutcome, final_error
from trainer.models import build_model

Report = Callable[[EpochMetrics], None]


def configure_tensorflow(cpus: int | None = None, replicas: int = 1, gpu: float | None = None) -> int | None:
    """Cap TensorFlow's thread pools to the trial's CPU share and give each GPU the trial's hard memory limit, its
    ``gpu`` fraction of the device (``trainer.device.configure_gpus``; None: memory growth, as a library call). Without
    GPUs, ``replicas`` > 1 splits the CPU into that many logical devices so ``_strategy`` can mirror over them.
    Returns the memory limit in MB, or None. Must run before TensorFlow executes its first op; later calls are
    no-ops."""
    import tensorflow as tf

    from trainer.device import configure_gpus

    limit = None
    try:
        limit = configure_gpus(gpu)
        if replicas > 1 and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        if cpus:
            tf.config.threading.set_intra_op_parallelism_threads(int(cpus))
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(cpus))))
    except RuntimeError:
        pass
    return limit


def lr_at(trial: TrialConfig, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: base lr scaled linearly with the global batch, divided by 10 at 30%,
    60% and 90% of the epochs."""
    return trial.lr / 10 ** sum(epoch >= e for e in trial.train.decay_epochs())


def lr_schedule(trial: TrialConfig, steps_per_epoch: int):
    """``lr_at`` as a per-step Keras schedule, so the decay survives a resume through the optimizer's step count."""
    import keras

    boundaries = [e * steps_per_epoch for e in trial.train.decay_epochs()]
    if not boundaries:
        return trial.lr
    values = [lr_at(trial, 0) / 10**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def steps_per_execution(batch_size: int, replicas: int = 1) -> int:
    """Several small steps per compiled call so small batches do not pay a host round-trip each step; one under a
    multi-replica strategy, where Keras 3.15's multi-step loop fails ("You must feed a value for placeholder
    tensor", keras-team/keras#19246)."""
    return 1 if replicas > 1 else max(1, 64 // batch_size)


XLA_CPU_MAX_BATCH = 4
XLA_CPU_MODELS = ("seed_cnn", "resnet8", "resnet20")


def use_xla(model: str, batch_size: int, replicas: int = 1) -> bool:
    """XLA on GPUs. On CPU only for the light models on one replica at batches of 4 images or fewer, where per-op
    overhead dominates a step. Measured side by side on the 2-core machine (XLA against oneDNN): batch 2 seed_cnn
    (64x64) 1.41x, resnet8 (32x32) 1.75x, resnet20 (32x32) 1.54x; but resnet18 (64x64) 0.94x at batch 2, and seed_cnn
    at batch 32 0.61x (their large convolutions are faster in oneDNN)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    return model in XLA_CPU_MODELS and replicas == 1 and batch_size <= XLA_CPU_MAX_BATCH


def compile_model(model, trial: TrialConfig, steps_per_epoch: int, optimizer=None) -> None:
    """SGD with momentum (Nesterov, as the authors' reproduction code), cross-entropy, top-1 and top-5 accuracy;
    loss scaling under mixed_float16. A resumed model passes its restored ``optimizer`` so the momentum, the loss
    scale and the step count carry on."""
    import keras

    from trainer.precision import scaled_optimizer

    optimizer = optimizer or keras.optimizers.SGD(lr_schedule(trial, steps_per_epoch), momentum=trial.train.momentum,
                                                  nesterov=True)
    model.compile(
        optimizer=scaled_optimizer(optimizer, trial.train.precision), auto_scale_loss=False,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce"),
                 keras.metrics.SparseCategoricalAccuracy(name="acc"),
                 keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5")],
        steps_per_execution=steps_per_execution(trial.batch_size, trial.replicas),
        jit_compile=use_xla(trial.model, trial.batch_size, trial.replicas),
    )
    # The optimizer's variables (momentum, loss scale) made now, not in the first training step: tf.function traces
    # a step that creates variables twice. Measured on resnet50 (GN, 32x32): 30k graph ops traced, 14.5 CPU-s to the
    # first step; built here, 14k and 9.2 s.
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _strategy(replicas: int):
    """Per-replica BN, as on the paper's 8 GPUs: Keras BN under a strategy normalizes over each replica's batch."""
    import tensorflow as tf

    if replicas == 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus if len(gpus) >= replicas else tf.config.list_logical_devices("CPU")
    if len(devices) < replicas:
        raise RuntimeError(f"trial needs {replicas} replicas but only {len(devices)} devices are visible")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:replicas]])


def train_trial(trial: TrialConfig, dataset_dir: str | Path, checkpoint_dir: str | Path,
                report: Report | None = None, *, cpus: int | None = None, gpu: float | None = None,
                shard_index: int = 0, num_shards: int = 1) -> TrialOutcome:
    """Train ``trial`` to completion (or divergence), resuming from ``checkpoint_dir`` (a local directory or a
    ``trainer.storage`` URI) if it holds a checkpoint.

    Each trial builds a fresh model; ``trial.batch_size`` is the per-replica batch BN normalizes over; the number of
    epochs is the same for every batch size. ``gpu`` is the trial's fraction of each of its GPUs (as Ray gave it):
    the process gets that share of the device's memory as a hard limit (None, a library call: memory grows). A
    trial that runs out of it raises ``DeviceMemoryError``, one line naming the trial, its limit and its estimated
    need, recorded beside the checkpoints so that a retry under the same limit fails at once instead of training
    into the same wall.
    """
    from trainer.device import DeviceMemoryError, earlier_oom, is_out_of_memory, oom_message, record_oom
    from trainer.peak_memory import estimated_peak_bytes
    from trainer.data.pipeline import InputPipeline

    limit = configure_tensorflow(cpus, trial.replicas, gpu)
    if (earlier := earlier_oom(checkpoint_dir, limit)) is not None:
        raise DeviceMemoryError(f"{earlier} (not retried under the same limit)")
    pipeline = InputPipeline(Path(dataset_dir), cpus=cpus, shard_index=shard_index, num_shards=num_shards)
    try:
        return _train(trial, pipeline, checkpoint_dir, report or (lambda m: None))
    except Exception as e:  # noqa: BLE001 - only running out of device memory is translated; the rest re-raised
        if not is_out_of_memory(e):
            raise
        info = pipeline.info
        need = estimated_peak_bytes(trial.model, trial.batch_size, tuple(info.image_size), trial.train.precision,
                                    info.num_classes)
        message = oom_message(trial.key, limit, need)
        record_oom(checkpoint_dir, limit, message)
        raise DeviceMemoryError(message) from None


def epoch_seed(seed: int, epoch: int) -> int:
    """The global seed of one epoch: distinct per (seed, epoch), within NumPy's range (below 2**32) for every seed a
    spec allows, and unchanged for the seeds that were in range before."""
    return (seed * 100_003 + epoch) % 2**32


def _train(trial: TrialConfig, pipeline, checkpoint_dir, report: Report) -> TrialOutcome:
    import keras

    from trainer.precision import dtype_policy
    from trainer.xla import fit_falling_back

    global_batch = trial.batch_size * trial.replicas
    steps = pipeline.steps_per_epoch(global_batch)
    if steps < 1:
        raise ValueError(f"batch {global_batch} is larger than the {pipeline.train_examples()} training images")
    strategy = _strategy(trial.replicas)
    with strategy.scope():
        ckpt = checkpoints.load(checkpoint_dir)
        if ckpt is None:
            keras.utils.set_random_seed(trial.seed)
            info = pipeline.info
            with dtype_policy(trial.train.precision):
                model = build_model(trial.model, norm=trial.norm, num_classes=info.num_classes,
                                    input_shape=(*info.image_size, 3), groups=trial.groups,
                                    channels_per_group=trial.channels_per_group,
                                    weight_decay=trial.train.weight_decay)
            compile_model(model, trial, steps)
            start, history = 0, []
        else:
            model, start, history = ckpt.model, ckpt.epoch, list(ckpt.history)
            compile_model(model, trial, steps, optimizer=model.optimizer)
    for m in history:
        report(m)
    val_ds = pipeline.val()
    for epoch in range(start, trial.train.epochs):
        keras.utils.set_random_seed(epoch_seed(trial.seed, epoch))
        lr = lr_at(trial, epoch)
        train_ds = pipeline.train(global_batch, seed=trial.seed, epoch=epoch, augment=trial.train.augment)
        t0 = time.perf_counter()
        logs = fit_falling_back(model, lambda: model.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch,
                                                         steps_per_epoch=steps, shuffle=False, verbose=0),
                                trial.key).history
        seconds = time.perf_counter() - t0
        val = model.evaluate(val_ds, verbose=0, return_dict=True)
        metrics = EpochMetrics(
            epoch=epoch + 1, train_loss=float(logs["ce"][-1]), train_err=100.0 * (1 - float(logs["acc"][-1])),
            val_loss=float(val["ce"]), val_err=100.0 * (1 - float(val["acc"])),
            val_err_top5=100.0 * (1 - float(val["top5"])), lr=lr, epoch_seconds=seconds,
            images_per_second=steps * global_batch / seconds)
        if not all(math.isfinite(v) for v in (float(logs["loss"][-1]), metrics.train_loss, metrics.val_loss)):
            history.append(metrics)
            report(metrics)
            return TrialOutcome("diverged", epoch + 1, tuple(history), final_error([m.val_err for m in history]))
        history.append(metrics)
        checkpoints.save(checkpoint_dir, model, epoch + 1, history)
        report(metrics)
    return TrialOutcome("completed", len(history), tuple(history), final_error([m.val_err for m in history]))
