"""One process of the GPU check (``bench.gpu``), configured as a trial is: its GPU fraction as a hard memory limit,
the model built under the trial's precision and compiled as ``train_trial`` compiles it. Prints one JSON line per
measurement (``RESULT {...}``), so whatever finished before a timeout is kept.

``python -m bench.gpu_worker JSON``: ``{"mode": "rates", "fraction": f, "rows": [{model, batch, norm, xla,
precision, size, images}, ...]}`` times training steps on in-memory batches; ``{"mode": "packed", ..., "barrier":
DIR, "peers": n, "seconds": s}`` waits until ``peers`` processes are ready, then trains for ``seconds`` (the packed
trials run side by side); ``{"mode": "consume", "dataset": DIR, "steps": n, ...}`` trains over the real input
pipeline.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path


def emit(**fields) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def build(model_name: str, norm: str, batch: int, size: int, precision: str, xla: bool, classes: int = 200):
    import keras

    from trainer import TrainSettings, TrialConfig
    from trainer.models import build_model, default_groups
    from trainer.precision import dtype_policy
    from trainer.train import compile_model

    groups = default_groups(model_name) if norm == "gn" else None
    trial = TrialConfig(model=model_name, norm=norm, batch_size=batch, groups=groups,
                        train=TrainSettings(epochs=1, precision=precision))
    keras.utils.set_random_seed(0)
    with dtype_policy(precision):
        model = build_model(model_name, norm=norm, num_classes=classes, input_shape=(size, size, 3), groups=groups)
    compile_model(model, trial, steps_per_epoch=1000)
    model.jit_compile = xla
    return model


def batches(batch: int, size: int, classes: int = 200):
    """One random batch repeated: the model's speed without an input pipeline in the way."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, size=batch).astype("int32")
    return tf.data.Dataset.from_tensors((x, y)).repeat()


def timed_rate(model, batch: int, size: int, steps: int) -> float:
    ds = batches(batch, size)
    spe = int(model.steps_per_execution or 1)
    model.fit(ds, steps_per_epoch=2 * spe, epochs=1, verbose=0)  # trace and compile
    steps = max(spe, math.ceil(steps / spe) * spe)
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - t0)


def peak_mb() -> float | None:
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def rates(job: dict, limit: int | None) -> None:
    import tensorflow as tf

    for row in job["rows"]:
        if time.time() > job["deadline"]:
            emit(row=row, skipped="out of time")
            continue
        try:
            import gc

            import keras

            keras.backend.clear_session()
            gc.collect()
            if tf.config.list_logical_devices("GPU"):
                tf.config.experimental.reset_memory_stats("GPU:0")
            model = build(row["model"], row["norm"], row["batch"], row["size"], row["precision"], row["xla"])
            rate = timed_rate(model, row["batch"], row["size"], row["images"] // row["batch"])
            emit(row=row, images_per_s=rate, peak_mb=peak_mb(), limit_mb=limit)
        except Exception as e:  # noqa: BLE001 - a row that fails is reported in the table, the others still run
            emit(row=row, error=f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:120] if str(e) else ''}")


def packed(job: dict, limit: int | None) -> None:
    model = build(job["model"], job["norm"], job["batch"], job["size"], job["precision"], job["xla"])
    ds = batches(job["batch"], job["size"])
    spe = int(model.steps_per_execution or 1)
    model.fit(ds, steps_per_epoch=2 * spe, epochs=1, verbose=0)
    barrier = Path(job["barrier"])
    (barrier / f"ready-{job['index']}").touch()
    while len(list(barrier.glob("ready-*"))) < job["peers"]:
        time.sleep(0.05)
    images, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < job["seconds"]:
        model.fit(ds, steps_per_epoch=spe * 4, epochs=1, verbose=0)
        images += spe * 4 * job["batch"]
    emit(images_per_s=images / (time.perf_counter() - t0), peak_mb=peak_mb(), limit_mb=limit)


def consume(job: dict, limit: int | None) -> None:
    from trainer.data.pipeline import InputPipeline

    pipe = InputPipeline(Path(job["dataset"]), cpus=job.get("cpus"))
    size = pipe.info.image_size[0]
    model = build(job["model"], "bn", job["batch"], size, job["precision"], job["xla"], pipe.info.num_classes)
    steps = min(job["steps"], pipe.steps_per_epoch(job["batch"]))
    model.fit(pipe.train(job["batch"], seed=0, epoch=0, augment=True), steps_per_epoch=8, epochs=1, verbose=0)
    ds = pipe.train(job["batch"], seed=0, epoch=1, augment=True)
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    emit(images_per_s=steps * job["batch"] / (time.perf_counter() - t0), steps=steps, limit_mb=limit)


def main() -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job = json.loads(sys.argv[1])
    from trainer.train import configure_tensorflow

    limit = configure_tensorflow(cpus=job.get("cpus"), gpu=job.get("fraction"))
    {"rates": rates, "packed": packed, "consume": consume}[job["mode"]](job, limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
