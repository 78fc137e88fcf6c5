"""The GPU check's tools: worker processes with a timeout, nvidia-smi sampling, the generated Tiny ImageNet-shaped
dataset, the input pipeline timed alone, and the packed sweep run through ``gnsweep launch``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU; this (the orchestrating) process then keeps off it, leaving it to workers."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass  # already initialized (memory growth is on for this process: see bench/__main__.py)
    return bool(gpus)


def run_worker(jobs: dict | list[dict], timeout: float, barrier: bool = False) -> list[dict]:
    """Run ``bench.gpu_worker`` once per job, all at once; their ``RESULT`` lines (one job: all of them; several:
    each one's first). A worker past ``timeout`` seconds is killed; what it printed before counts."""
    many = isinstance(jobs, list)
    jobs = jobs if many else [jobs]
    with tempfile.TemporaryDirectory(prefix="gnsweep-barrier-") as tmp:
        procs = []
        for job in jobs:
            job = {**job, "barrier": tmp} if barrier else job
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
            procs.append(subprocess.Popen([sys.executable, "-m", "bench.gpu_worker", json.dumps(job)], cwd=ROOT,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        end = time.time() + timeout
        outputs = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=max(1.0, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            if p.returncode and not out.strip():
                tail = err.strip().splitlines()[-1:] if err.strip() else ["no output"]
                print(f"  worker failed: {tail[0][:200]}", file=sys.stderr)
            outputs.append([json.loads(ln[7:]) for ln in out.splitlines() if ln.startswith("RESULT ")])
    if many:
        return [o[0] for o in outputs if o]
    return outputs[0]


class _Sampler:
    mean: float | None = None


@contextmanager
def gpu_utilisation(interval: float = 0.5):
    """Mean GPU utilisation (%) reported by nvidia-smi while the block runs; ``mean`` stays None without it."""
    sampler, samples, stop = _Sampler(), [], threading.Event()

    def poll():
        while not stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout.split()
                samples.append(max(float(v) for v in out))
            except (OSError, subprocess.SubprocessError, ValueError):
                return
            stop.wait(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield sampler
    finally:
        stop.set()
        thread.join(timeout=15)
        sampler.mean = sum(samples) / len(samples) if samples else None


def synthetic_tiny_imagenet(out: Path, classes: int, per_class: int, val_per_class: int = 50) -> Path:
    """A raw Tiny ImageNet-shaped tree (``classes`` x ``per_class`` 64x64 JPEGs, smooth random images of about the
    real files' size) prepared into shards by ``trainer.data.preparation.prepare``, the project's shard writer."""
    import numpy as np
    import tensorflow as tf

    from trainer.data import prepare

    raw = out.with_name(out.name + "-raw")
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(64):
        small = rng.integers(0, 256, size=(8, 8, 3)).astype("float32")
        img = tf.image.resize(small[None], (64, 64), method="bicubic")[0] + rng.normal(0, 8, (64, 64, 3))
        blobs.append(tf.io.encode_jpeg(tf.cast(tf.clip_by_value(img, 0, 255), tf.uint8), quality=90).numpy())
    wnids = [f"n{i:08d}" for i in range(classes)]
    (raw / "val" / "images").mkdir(parents=True)
    (raw / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (raw / "words.txt").write_text("".join(f"{w}\tclass {i}\n" for i, w in enumerate(wnids)))
    annotations = []
    for c, w in enumerate(wnids):
        folder = raw / "train" / w / "images"
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / f"{w}_{i}.JPEG").write_bytes(blobs[(c * 7 + i) % len(blobs)])
        for i in range(min(val_per_class, per_class)):
            name = f"val_{c * val_per_class + i}.JPEG"
            (raw / "val" / "images" / name).write_bytes(blobs[(c + i) % len(blobs)])
            annotations.append(f"{name}\t{w}\t0\t0\t63\t63\n")
    (raw / "val" / "val_annotations.txt").write_text("".join(annotations))
    prepare(str(raw), out, progress=False)
    import shutil

    shutil.rmtree(raw, ignore_errors=True)
    return out


def pipeline_epoch(prepared: Path, batch: int, cpus: int | None = None) -> float:
    """Images/s of one first (cold: read, decode, cache, augment) epoch of ``InputPipeline.train``, no model."""
    import tensorflow as tf

    from trainer.data.pipeline import InputPipeline

    pipe = InputPipeline(prepared, cpus=cpus)
    t0 = time.perf_counter()
    n = int(pipe.train(batch, seed=0, epoch=0, augment=True).reduce(
        tf.constant(0), lambda k, b: k + tf.shape(b[0])[0]))
    return n / (time.perf_counter() - t0)


SWEEP_SPEC = """name: bench-gpu-sweep
dataset: builtin:digits
model: resnet8
train: {{epochs: 2, base_lr: 0.1, base_batch: 32, augment: false}}
studies:
  packed: {{norm: [bn, gn], batch_size: [2]}}
seeds: [0, {last}]
defaults: {{groups: 8}}
resources: {{cpu: 2, gpu: {fraction}}}
retries: 0
"""


def sweep_row(scratch: Path, gpu: bool, n: int, deadline: float) -> list[str]:
    """``gnsweep launch`` of ``n`` packed resnet8 batch-2 trials, 2 epochs on digits; on CPU only ``--dry-run``.
    Returns the table cells after "sweep"."""
    spec = scratch / "bench-gpu-sweep.yaml"
    spec.write_text(SWEEP_SPEC.format(last=max(1, n // 2 - 1), fraction=0.2))
    cmd = [sys.executable, "-m", "orchestrator.cli", "launch", str(spec), "--results", str(scratch / "results"),
           "--data-dir", str(scratch / "data"), "--no-dashboard"]
    cells = ["resnet8", "2", "bn+gn", "on" if gpu else "-", "float32"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not gpu or deadline - time.time() < 60:
        from orchestrator.launch.launcher import LaunchOptions, launch

        plan: list[str] = []
        rc = launch(spec, LaunchOptions(results=scratch / "results", dry_run=True), echo=plan.append)
        ok = rc == 0 and f"{n} trials" in plan[0]
        why = "GPU only" if not gpu else "out of time"
        return cells + [f"skipped ({why}; --dry-run {'ok' if ok else 'FAILED'})", "-", "-", "-", "-"]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True,
                         timeout=max(30, deadline - time.time()))
    wall = time.perf_counter() - t0
    import pandas as pd

    from results.schema import TrialStatus

    try:
        trials = pd.read_parquet(scratch / "results" / "bench-gpu-sweep" / "trials")
        epochs = pd.read_parquet(scratch / "results" / "bench-gpu-sweep" / "epochs")
        done = int((trials["status"] == TrialStatus.COMPLETED).sum())
        images = float(epochs.groupby("epoch")["images_per_second"].sum().mean())
    except (OSError, KeyError, ValueError):
        done, images = 0, 0.0
    state = f"{done}/{len(trials) if done else n} completed in {wall:.0f} s (exit {run.returncode})"
    return cells + [f"{images:,.0f}" if images else "-", state, "-", "-", "PASS" if done == n else "MISS"]
