"""``python -m bench [SECTION ...]``: run the named sections (all by default) and print one table per section."""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import warnings

SECTIONS = {
    "pipeline": ("bench.pipeline", "input pipeline against a per-file loop and against seed_cnn's consumption"),
    "overhead": ("bench.overhead", "a trial run by gnsweep (local Ray, pipeline, callbacks) against a bare fit"),
    "batch": ("bench.small_batch", "per-image throughput at batch 2 against batch 32"),
    "gn": ("bench.gn", "training step time of GN (and LN, IN) against BN"),
    "scheduling": ("bench.scheduling", "Ray Tune overhead of many short trials; a simulated GPU cluster"),
    "gpu": ("bench.gpu", "the GPU check: throughput grid, packed trials, input pipeline, a packed sweep (tiny on CPU)"),
    "results": ("bench.results", "the results store at 2,500 rows (--full: also 25,000), local and on an S3 server"),
}


def environment() -> str:
    import keras
    import ray
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = ", ".join(d.name for d in gpus) if gpus else "CPU only (no GPU visible to TensorFlow)"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return "\n".join([
        f"environment: {os.cpu_count()} CPUs (load average {load}), {_memory()}, {platform.platform()}",
        f"  Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Ray {ray.__version__}",
        f"  device: {device}",
    ])


def _memory() -> str:
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        return f"{kb / 2**20:.0f} GiB memory"
    except (OSError, StopIteration, ValueError):
        return "memory unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.strip().splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help="; ".join(f"{k}: {v[1]}" for k, v in SECTIONS.items()) + " (default: all but gpu)")
    parser.add_argument("--full", action="store_true", help="results: also a 25,000-row sweep (long on the S3 server)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    chosen = args.sections or [s for s in SECTIONS if s != "gpu"]  # the GPU check is make bench-gpu

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # this process must leave the GPU to bench.gpu's workers
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    from bench.harness import context

    print(environment(), flush=True)
    with context() as ctx:
        ctx.full = args.full
        print(f"  data: {', '.join(f'{d.label} ({len(d.jpeg_files)} train images)' for d in ctx.datasets)}"
              + ("" if ctx.sample else "; GNSWEEP_TINY_IMAGENET_SAMPLE unset, so no Tiny ImageNet figures"), flush=True)
        for name in chosen:
            t0 = time.perf_counter()
            module = importlib.import_module(SECTIONS[name][0])
            for table in module.run(ctx):
                print()
                print(table.render(), flush=True)
            print(f"  ({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s for: python -m bench {' '.join(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
