"""Trial overhead: a trial run by gnsweep (the full path) against a bare ``model.fit`` on in-memory arrays.

The full path is ``orchestrator.launch.launcher.launch`` on a temporary spec: local Ray, Ray Tune, a trial actor, the tf.data
pipeline over shards (no augmentation, as the demo trains digits and as the bare run trains: the same work on both
sides), the results callbacks, a checkpoint and a validation pass per epoch. The bare run is the same model (resnet8,
BN, digits at 16x16), the same batch, compiled by the same ``trainer.train.compile_model``, one ``model.fit`` call
per epoch on the decoded images as numpy arrays. Both count images/s as ``train_trial`` does (whole ``fit`` call of
one epoch); gnsweep's figures are read back from the sweep's Parquet, leaving out epoch 1 (tracing and cache fill).
Target: gnsweep >= 0.9x bare, at batch 32 and at batch 2.
"""
from __future__ import annotations

import time
from pathlib import Path

from bench.harness import Context, Table, compiled_model, interleaved, load_arrays, median, rate, ratio, trim, \
    verdict

TARGET = 0.9
EPOCHS = 4  # gnsweep's epochs 2..4 are the 3 measurements; epoch 1 is warm-up
BATCHES = (32, 2)
MODEL = "resnet8"


def _spec(path: Path, dataset: Path) -> Path:
    path.write_text(f"""name: bench-overhead
dataset: {dataset}
model: {MODEL}
train: {{epochs: {EPOCHS}, base_lr: 0.1, base_batch: 32, augment: false}}
studies:
  batch: {{norm: [bn], batch_size: [{', '.join(map(str, BATCHES))}]}}
seeds: [0]
resources: {{cpu: 2}}
retries: 0
""")
    return path


def _bare(batch: int, x, y, classes: int):
    """One epoch of a bare ``model.fit`` per call, timed around the whole call as ``train_trial`` times its epochs."""
    xs, ys = trim(x, y, batch)
    t0 = time.perf_counter()
    model = compiled_model(MODEL, "bn", batch, x.shape[1:], classes, steps=len(xs) // batch)
    model.fit(xs, ys, batch_size=batch, epochs=1, shuffle=True, verbose=0)  # epoch 1: warm-up, as in the trial
    setup = [time.perf_counter() - t0]

    def measure() -> float:
        t = time.perf_counter()
        model.fit(xs, ys, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        seconds = time.perf_counter() - t
        setup.append(seconds)
        return len(xs) / seconds

    return measure, setup


def _launch(ctx: Context) -> tuple[float, Path, list[str]]:
    import ray

    from orchestrator.launch.launcher import LaunchOptions, launch

    root = ctx.scratch / "overhead"
    root.mkdir()
    spec = _spec(root / "overhead.yaml", ctx.digits.prepared)
    lines: list[str] = []
    t0 = time.perf_counter()
    try:
        status = launch(spec, LaunchOptions(results=root / "results", dashboard=False, data_dir=root / "data",
                                            max_concurrent=1), echo=lines.append)
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError("the overhead sweep failed:\n" + "\n".join(lines[-20:]))
    return wall, root / "results" / "bench-overhead", lines


def run(ctx: Context) -> list[Table]:
    import pandas as pd

    x, y, classes = load_arrays(ctx.digits)
    bare = {b: _bare(b, x, y, classes) for b in BATCHES}
    before = interleaved({b: bare[b][0] for b in BATCHES}, 2)
    wall, sweep_dir, _ = _launch(ctx)
    after = interleaved({b: bare[b][0] for b in BATCHES}, 1)
    bare_ips = {b: median(before[b] + after[b]) for b in BATCHES}

    epochs = pd.read_parquet(sweep_dir / "epochs").sort_values(["trial_key", "epoch"])
    trials = pd.read_parquet(sweep_dir / "trials").set_index("trial_key")
    table = Table(f"trial overhead: {MODEL} BN on digits 16x16, {EPOCHS} epochs; gnsweep (launch -> Ray Tune -> "
                  f"train_trial) vs bare model.fit on numpy", ["batch", "measure", "gnsweep", "bare", "ratio",
                                                                 "target", "verdict"])
    bare_wall_total = 0.0
    for b in BATCHES:
        rows = epochs[epochs.batch_size == b]
        later = rows[rows.epoch > 1]
        ips = median(later["images_per_second"].tolist())
        images = len(trim(x, y, b)[0])
        gaps = pd.to_datetime(rows["recorded_at"]).diff().dt.total_seconds().dropna()
        wall_ips = median([images / d for d in gaps])
        table.add(b, "train images/s, epochs 2+ (fit only)", rate(ips), rate(bare_ips[b]), ratio(ips / bare_ips[b]),
                  f">= {TARGET:g}x", verdict(ips / bare_ips[b], TARGET))
        table.add(b, "images/s epoch to epoch (+val, checkpoint, report)", rate(wall_ips), rate(bare_ips[b]),
                  ratio(wall_ips / bare_ips[b]), "-", "-")
        table.add(b, "epoch 1 seconds (trace, cache fill)", f"{rows['epoch_seconds'].iloc[0]:.1f}",
                  f"{bare[b][1][0]:.1f}", ratio(bare[b][1][0] / rows["epoch_seconds"].iloc[0]), "-", "-")
        bare_wall_total += bare[b][1][0] + (EPOCHS - 1) * images / bare_ips[b]
        key = rows["trial_key"].iloc[0]
        t = trials.loc[key]
        if "started_at" in t and "ended_at" in t and pd.notna(t["started_at"]) and pd.notna(t["ended_at"]):
            trial_wall = (pd.Timestamp(t["ended_at"]) - pd.Timestamp(t["started_at"])).total_seconds()
            bare_trial = bare[b][1][0] + (EPOCHS - 1) * images / bare_ips[b]
            table.add(b, f"trial wall seconds, {EPOCHS} epochs (start to end)", f"{trial_wall:.1f}",
                      f"{bare_trial:.1f}", ratio(bare_trial / trial_wall), "-", "-")
    table.add("all", "launch wall seconds (Ray start to summary) vs bare", f"{wall:.1f}", f"{bare_wall_total:.1f}",
              ratio(bare_wall_total / wall), "-", "-")
    table.notes.append("ratio: higher is better for gnsweep (images/s gnsweep/bare; seconds bare/gnsweep); the bare "
                       "figures are the median of 2 epochs before and 1 after the launch")
    table.notes.append("the bare wall time is model build + compile + epoch 1 + the remaining epochs at the median "
                       "rate; it has no validation, checkpoints or Ray")
    return [table]
