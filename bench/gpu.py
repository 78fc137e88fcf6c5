"""The GPU check (``python -m bench gpu``, ``make bench-gpu``, ``bench/gpu_check.sh``): one table, under 8 minutes
on one GPU.

- training images/s of resnet18 and resnet50 at 64x64, batches 32, 8 and 2, BN and GN, XLA on and off, float32
  against mixed_bfloat16 (a budgeted selection; GNSWEEP_BENCH_GPU_FULL=1 runs the whole 48-row grid), each with its
  measured peak memory beside ``trainer.peak_memory``'s estimate;
- the aggregate images/s of 4 packed batch-2 trials on one GPU (4 processes, each with its memory limit) against
  one alone; target >= 3x;
- one epoch of a generated Tiny ImageNet-shaped dataset (100,000 train images written by
  ``trainer.data.preparation.prepare``) through the input pipeline alone, against what resnet18 consumes at batch
  32; target >= 2x; GPU utilisation from nvidia-smi while resnet18 trains over the pipeline;
- a 2-epoch sweep of 4 packed trials through ``gnsweep launch``.

Each GPU measurement runs in its own process configured as a trial is (``bench.gpu_worker``). On a machine without a
GPU the same code runs at tiny sizes (resnet8 at 16x16 on 128 images; a 300-image set through the pipeline, consumed
in float32) and the GPU-only rows say skipped, so the check cannot rot unnoticed (tests/bench/test_gpu_bench.py).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from bench.gpu_probe import gpu_utilisation, has_gpu, run_worker, synthetic_tiny_imagenet, sweep_row
from bench.harness import Context, Table, rate, ratio, verdict

BUDGET_S = 440  # the whole check within 8 minutes, with a margin for start-up
RESERVED_S = {"rates": 250, "packed": 160, "pipeline": 60}  # seconds kept back, at each phase's end, for the rest
PACKED, PACKED_FRACTION, RATES_FRACTION = 4, 0.125, 0.4
TARGETS = {"packed": 3.0, "bf16": 1.5, "pipeline": 2.0}


def rate_rows(gpu: bool) -> list[dict]:
    """The throughput rows: on a GPU the budgeted selection (or the full grid), on CPU four tiny ones."""
    if not gpu:
        return [dict(model="resnet8", batch=8, norm="gn", xla=False, precision=p, size=16, images=128)
                for p in ("float32", "mixed_bfloat16")]
    full = os.environ.get("GNSWEEP_BENCH_GPU_FULL") == "1"
    rows = []
    for model in ("resnet50", "resnet18"):
        for batch in (32, 8, 2):
            for norm in ("bn", "gn"):
                for xla in (True, False):
                    for precision in ("float32", "mixed_bfloat16"):
                        core = batch == 32 and (norm == "bn" or xla) or (xla and precision == "mixed_bfloat16")
                        if full or core and (model == "resnet50" or norm == "bn"):
                            rows.append(dict(model=model, batch=batch, norm=norm, xla=xla, precision=precision,
                                             size=64, images=4096 if batch > 2 else 1024))
    return sorted(rows, key=_priority)


FIRST = [("resnet50", 32, "bn", True, "float32"), ("resnet50", 32, "bn", True, "mixed_bfloat16"),
         ("resnet18", 32, "bn", True, "mixed_bfloat16"), ("resnet50", 32, "gn", True, "mixed_bfloat16"),
         ("resnet50", 2, "bn", True, "mixed_bfloat16"), ("resnet50", 2, "gn", True, "mixed_bfloat16"),
         ("resnet50", 32, "bn", False, "float32")]


def _priority(row: dict) -> int:
    """The rows the targets and the main comparisons need come first: rows past the time budget are skipped."""
    key = (row["model"], row["batch"], row["norm"], row["xla"], row["precision"])
    return FIRST.index(key) if key in FIRST else len(FIRST)


def run(ctx: Context) -> list[Table]:
    from trainer.peak_memory import estimated_peak_bytes

    started = time.time()
    deadline = started + BUDGET_S
    gpu = has_gpu()
    table = Table(f"GPU check ({'GPU' if gpu else 'CPU only: tiny sizes, GPU-only rows skipped'}): training "
                  f"images/s", ["measure", "model", "batch", "norm", "xla", "precision", "img/s", "peak/est MB",
                                "ratio", "target", "verdict"])
    rows = rate_rows(gpu)
    got = run_worker({"mode": "rates", "fraction": RATES_FRACTION if gpu else None, "rows": rows,
                      "deadline": deadline - (RESERVED_S["rates"] + 30 if gpu else 0)},
                     timeout=max(30, deadline - time.time() - RESERVED_S["rates"]))
    measured = {}
    for r in got:
        row = r["row"]
        key = (row["model"], row["batch"], row["norm"], row["xla"], row["precision"])
        est = estimated_peak_bytes(row["model"], row["batch"], row["size"], row["precision"]) / 2**20
        value = r.get("images_per_s")
        measured[key] = value
        mem = f"{r['peak_mb']:,.0f}/{est:,.0f}" if r.get("peak_mb") else f"-/{est:,.0f}"
        table.add("train", row["model"], row["batch"], row["norm"], "on" if row["xla"] else "off",
                  row["precision"], rate(value) if value else r.get("error") or r.get("skipped"), mem, "-", "-", "-")
    for key in [(m, 32, "bn", True, "mixed_bfloat16") for m in ("resnet50",)]:
        f32, bf16 = measured.get(key[:4] + ("float32",)), measured.get(key)
        if f32 and bf16:
            table.add("bf16 vs f32", key[0], 32, "bn", "on", "bf16/f32", rate(bf16), "-", ratio(bf16 / f32),
                      f">= {TARGETS['bf16']:g}x", verdict(bf16 / f32, TARGETS["bf16"]))
        elif gpu:
            table.add("bf16 vs f32", key[0], 32, "bn", "on", "bf16/f32", "not measured", "-", "-", "-", "-")
    if not gpu:
        table.add("bf16 vs f32", "resnet50", 32, "bn", "on", "bf16/f32", "skipped (GPU only)", "-", "-", "-", "-")

    _packed(table, gpu, deadline)
    _pipeline(table, gpu, ctx.scratch, deadline, measured)
    table.add("sweep", *sweep_row(ctx.scratch, gpu, PACKED, deadline))
    table.notes += [
        "peak/est: TensorFlow's measured peak device memory against trainer.peak_memory's estimate (MB)",
        f"packed: {PACKED} processes at gpu {PACKED_FRACTION:g} each (hard memory limits), resnet18 at batch 2, "
        f"XLA, mixed_bfloat16; ratio = their summed images/s over one process alone",
        f"whole check: {time.time() - started:.0f} s (budget {BUDGET_S} s)"]
    return [table]


def _packed(table: Table, gpu: bool, deadline: float) -> None:
    if not gpu:
        table.add("packed x4", "resnet18", 2, "bn", "on", "bf16", "skipped (GPU only)", "-", "-", "-", "-")
        return
    job = dict(mode="packed", model="resnet18", norm="bn", batch=2, size=64, precision="mixed_bfloat16", xla=True,
               fraction=PACKED_FRACTION, seconds=10, cpus=2)
    alone = run_worker({**job, "peers": 1, "index": 0}, timeout=max(30, deadline - time.time() - 210), barrier=True)
    together = run_worker([{**job, "peers": PACKED, "index": i} for i in range(PACKED)],
                          timeout=max(30, deadline - time.time() - RESERVED_S["packed"]), barrier=True)
    if alone and len(together) == PACKED:
        one, total = alone[0]["images_per_s"], sum(r["images_per_s"] for r in together)
        peak = max(r["peak_mb"] or 0 for r in together)
        table.add("packed x4", "resnet18", 2, "bn", "on", "bf16", f"{rate(total)} vs {rate(one)}",
                  f"{peak:,.0f}/lim {together[0]['limit_mb']:,}", ratio(total / one), f">= {TARGETS['packed']:g}x",
                  verdict(total / one, TARGETS["packed"]))
    else:
        table.add("packed x4", "resnet18", 2, "bn", "on", "bf16", "not measured (error or out of time)", "-", "-",
                  "-", "-")


def _pipeline(table: Table, gpu: bool, scratch: Path, deadline: float, measured: dict) -> None:
    from bench.gpu_probe import pipeline_epoch
    from trainer.config import PRECISION_SUFFIX

    classes, per_class = (200, 500) if gpu else (10, 30)
    t0 = time.perf_counter()
    prepared = synthetic_tiny_imagenet(scratch / "tiny-synthetic", classes, per_class)
    made = time.perf_counter() - t0
    delivered = pipeline_epoch(prepared, batch=32)
    model = "resnet18" if gpu else "resnet8"
    # float32 on CPU: a CPU without bfloat16 units emulates it (12 img/s against 98 here, 38 CPU-s against 12); the
    # rates rows run mixed_bfloat16 on CPU too, so that path cannot rot either
    precision = "mixed_bfloat16" if gpu else "float32"
    shown = PRECISION_SUFFIX[precision] or precision  # bf16, as the trial keys say; float32 in full
    job = dict(mode="consume", dataset=str(prepared), model=model, batch=32, precision=precision,
               xla=gpu, steps=1000 if gpu else 4, fraction=RATES_FRACTION if gpu else None)
    with gpu_utilisation() as util:
        got = run_worker(job, timeout=max(30, deadline - time.time() - RESERVED_S["pipeline"]))
    consumed = got[0]["images_per_s"] if got else None
    label = f"{classes * per_class:,} imgs"
    table.add("pipeline", "-", 32, label, "-", "-", rate(delivered), f"made in {made:.0f} s", "-", "-", "-")
    if consumed:
        table.add("consumed", model, 32, "bn", "on" if gpu else "off", shown, rate(consumed),
                  f"GPU util {util.mean:.0f}%" if util.mean is not None else "no nvidia-smi",
                  ratio(delivered / consumed), f">= {TARGETS['pipeline']:g}x" if gpu else "-",
                  verdict(delivered / consumed, TARGETS["pipeline"]) if gpu else "-")
    else:
        table.add("consumed", model, 32, "bn", "-", shown, "not measured", "-", "-", "-", "-")
