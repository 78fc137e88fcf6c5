"""Scheduling: what Ray Tune and gnsweep's glue (``orchestrator.tune.run.run_trials``) cost per trial, and how full a
cluster's GPU slots stay.

(a) Local Ray, 2 concurrent 1-CPU trials whose trainable sleeps and reports a few fake epochs, so the real
    ``ResultsWriter`` (Parquet rows per epoch, trials table per status change) and ``ProgressPrinter`` run. Two sweeps
    of different sizes give the fixed cost per sweep and per trial (wall = fixed + trials/concurrency x (trial +
    per-trial)); the overhead of 30-second trials is extrapolated from those two numbers, not measured.
(b) A simulated cluster (``ray.cluster_utils.Cluster``: a head with no CPUs, workers with fake GPUs) running many
    short fractional-GPU trials through the same ``run_trials``: trials started per second and the time-averaged
    fraction of GPU slots busy.
(c), (d) in ``bench.cost``: longest first against grid order on a simulated cluster; estimate against measurement.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from bench.harness import Context, Table, rate, verdict

TARGET_OVERHEAD = 0.10  # for 30 s trials
TRIAL_SECONDS = 2.0
FAKE_EPOCHS = 3
SWEEP_SIZES = (4, 12)
CONCURRENCY = 2
EXTRAPOLATE_TO = 30.0
LONG_TRIALS = 4  # measured at EXTRAPOLATE_TO seconds each: 2 waves, 60 s ideal

CLUSTER_WORKERS = 3
GPUS_PER_WORKER = 4
CPUS_PER_WORKER = 4
GPU_PER_TRIAL = 0.25
CLUSTER_TRIALS = 120  # 2.5 waves of the 48 slots; each actor start costs ~2 CPU-seconds on this 2-core machine
CLUSTER_TRIAL_SECONDS = 3.0


def fake_trial(config: dict, seconds: float = TRIAL_SECONDS) -> None:
    """A trainable that sleeps ``seconds`` in ``FAKE_EPOCHS`` epochs and reports each as ``train_trial`` would."""
    import ray
    from ray import tune

    node = ray.get_runtime_context().get_node_id()
    started = time.time()
    for epoch in range(1, FAKE_EPOCHS + 1):
        time.sleep(seconds / FAKE_EPOCHS)
        tune.report({"epoch": epoch, "train_loss": 1.0, "train_err": 50.0, "val_loss": 1.0, "val_err": 50.0,
                     "val_err_top5": 10.0, "lr": 0.1, "epoch_seconds": seconds / FAKE_EPOCHS,
                     "images_per_second": 1.0, "node": node, "work_started": started, "work_ended": time.time()})


def _spec(path: Path, name: str, trials: int, cpu: float, gpu: float):
    from orchestrator.spec.file import load_spec

    path.write_text(f"""name: {name}
dataset: builtin:digits
model: resnet8
train: {{epochs: {FAKE_EPOCHS}, base_lr: 0.1, base_batch: 32}}
studies:
  fake: {{norm: [bn], batch_size: [32]}}
seeds: [{', '.join(str(s) for s in range(trials))}]
resources: {{cpu: {cpu}, gpu: {gpu}}}
retries: 0
max_trials: {max(trials, 1)}
""")
    return load_spec(path)


class _Timed:
    """A Tune callback wrapper that adds up the driver's seconds spent inside the wrapped callback."""

    def __new__(cls, inner):
        from ray import tune

        class Wrapper(tune.Callback):
            seconds = 0.0

            def _call(self, name, *args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return getattr(inner, name)(*args, **kwargs)
                finally:
                    Wrapper.seconds += time.perf_counter() - t0

            def on_trial_start(self, *a, **k):
                return self._call("on_trial_start", *a, **k)

            def on_trial_result(self, *a, **k):
                return self._call("on_trial_result", *a, **k)

            def on_trial_complete(self, *a, **k):
                return self._call("on_trial_complete", *a, **k)

            def on_trial_error(self, *a, **k):
                return self._call("on_trial_error", *a, **k)

        return Wrapper()


def _sweep(root: Path, name: str, trials: int, seconds: float, *, cpu: float, gpu: float = 0.0,
           max_concurrent: int | None = None) -> dict:
    """Run ``trials`` fake trials through ``run_trials`` with the real callbacks; wall time, callback time and each
    trial's work interval."""
    from ray import tune

    from orchestrator.spec.plan import plan_trials
    from orchestrator.tune.progress import ProgressPrinter
    from orchestrator.tune.run import run_trials
    from orchestrator.tune.results_writer import ResultsWriter
    from orchestrator.watch.tally import tally
    from results.records import SweepRecord

    spec = _spec(root / f"{name}.yaml", name, trials, cpu, gpu)
    planned = plan_trials(spec)
    sweep_dir = root / "results" / name
    inner = ResultsWriter(sweep_dir, spec.name, {t.key: t.studies for t in planned}, {})
    writer = _Timed(inner)
    record = SweepRecord(spec.name, spec.fingerprint(), tuple(t.key for t in planned))
    progress = ProgressPrinter(lambda: tally(record, *inner.tables(), {}).summary(), echo=lambda line: None)
    t0 = time.time()
    grid = run_trials(spec, planned, sweep_dir=sweep_dir, dataset_dir=root, callbacks=[writer, progress],
                      max_concurrent=max_concurrent, trainable=tune.with_parameters(fake_trial, seconds=seconds))
    t1 = time.time()
    work = []
    for result in grid:
        if result.error is not None:
            raise RuntimeError(f"{name}: a fake trial failed: {result.error}")
        work.append((result.metrics["work_started"], result.metrics["work_ended"]))
    return {"wall": t1 - t0, "t0": t0, "t1": t1, "work": work, "callback_seconds": type(writer).seconds}


def _local(ctx: Context) -> Table:
    import ray

    root = ctx.scratch / "scheduling-local"
    root.mkdir()
    t0 = time.perf_counter()
    ray.init(num_cpus=CONCURRENCY, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             configure_logging=True)
    ray_start = time.perf_counter() - t0
    try:
        runs = {n: _sweep(root, f"local-{n}", n, TRIAL_SECONDS, cpu=1.0) for n in SWEEP_SIZES}
        long = _sweep(root, "local-long", LONG_TRIALS, EXTRAPOLATE_TO, cpu=1.0)
    finally:
        ray.shutdown()
    table = Table(f"scheduling (a): local Ray, {CONCURRENCY} concurrent 1-CPU trials of {TRIAL_SECONDS:g} s "
                  f"({FAKE_EPOCHS} reported epochs each), run_trials + ResultsWriter + ProgressPrinter",
                  ["sweep", "wall s", "ideal s", "overhead", "callbacks s", "target", "verdict"])
    for n, r in runs.items():
        ideal = sum(e - s for s, e in r["work"]) / CONCURRENCY
        table.add(f"{n} trials", f"{r['wall']:.1f}", f"{ideal:.1f}", f"{100 * (r['wall'] / ideal - 1):.0f}%",
                  f"{r['callback_seconds']:.1f}", "-", "-")
    (n1, r1), (n2, r2) = runs.items()
    trial_s = median_work(r1["work"] + r2["work"])
    per_trial = (r2["wall"] - r1["wall"]) * CONCURRENCY / (n2 - n1) - trial_s  # extra seconds per trial per slot
    fixed = r1["wall"] - n1 / CONCURRENCY * (trial_s + per_trial)
    ideal = sum(e - s for s, e in long["work"]) / CONCURRENCY
    over = long["wall"] / ideal - 1
    table.add(f"{LONG_TRIALS} x {EXTRAPOLATE_TO:g} s trials (measured)", f"{long['wall']:.1f}", f"{ideal:.1f}",
              f"{100 * over:.1f}%", f"{long['callback_seconds']:.1f}", f"<= {100 * TARGET_OVERHEAD:g}%",
              verdict(over, TARGET_OVERHEAD, at_most=True))
    for n in (12, 100):
        ideal = n / CONCURRENCY * EXTRAPOLATE_TO
        over = (fixed + n / CONCURRENCY * per_trial) / ideal
        table.add(f"{n} x {EXTRAPOLATE_TO:g} s trials (extrapolated)", f"{ideal + ideal * over:.0f}",
                  f"{ideal:.0f}", f"{100 * over:.1f}%", "-", f"<= {100 * TARGET_OVERHEAD:g}%",
                  verdict(over, TARGET_OVERHEAD, at_most=True))
    table.notes.append(f"fit of wall = fixed + trials/{CONCURRENCY} x (trial + per-trial): fixed {fixed:.1f} s per "
                       f"sweep (Tuner set-up and tear-down), per-trial {per_trial:.2f} s of a slot (actor process "
                       f"start, Ray Tune bookkeeping, results writes); ray.init took {ray_start:.1f} s (not counted)")
    table.notes.append(f"the extrapolated rows come from those two numbers; the measured row is one sweep of "
                       f"{LONG_TRIALS} trials that each sleep {EXTRAPOLATE_TO:g} s")
    return table


def median_work(work: list[tuple[float, float]]) -> float:
    import statistics

    return statistics.median(e - s for s, e in work)


def _occupancy(work: list[tuple[float, float]], slots: int, start: float, end: float) -> float:
    """Time-averaged fraction of ``slots`` doing a trial's work between ``start`` and ``end``."""
    busy = sum(max(0.0, min(e, end) - max(s, start)) for s, e in work)
    return busy / (slots * (end - start))


def _cluster(ctx: Context) -> Table:
    import ray
    from ray.cluster_utils import Cluster

    root = ctx.scratch / "scheduling-cluster"
    root.mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(CLUSTER_WORKERS):
            cluster.add_node(num_cpus=CPUS_PER_WORKER, num_gpus=GPUS_PER_WORKER)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False, configure_logging=True)
        r = _sweep(root, "cluster", CLUSTER_TRIALS, CLUSTER_TRIAL_SECONDS, cpu=GPU_PER_TRIAL, gpu=GPU_PER_TRIAL)
    finally:
        ray.shutdown()
        cluster.shutdown()
    slots = int(CLUSTER_WORKERS * GPUS_PER_WORKER / GPU_PER_TRIAL)
    starts = sorted(s for s, _ in r["work"])
    first, last = starts[0], starts[-1]
    end = max(e for _, e in r["work"])
    table = Table(f"scheduling (b): simulated cluster, head with 0 CPUs + {CLUSTER_WORKERS} workers x "
                  f"{GPUS_PER_WORKER} fake GPUs ({slots} slots of {GPU_PER_TRIAL:g} GPU), {CLUSTER_TRIALS} trials "
                  f"of {CLUSTER_TRIAL_SECONDS:g} s", ["measure", "value"])
    table.add("sweep wall seconds (run_trials)", f"{r['wall']:.1f}")
    table.add("ideal seconds (waves x trial)", f"{-(-CLUSTER_TRIALS // slots) * CLUSTER_TRIAL_SECONDS:.1f}")
    table.add("trials started per second (first to last start)", rate((len(starts) - 1) / (last - first)))
    table.add("trials started per second (whole sweep)", rate(len(starts) / r["wall"]))
    table.add("seconds to the first trial's work", f"{first - r['t0']:.1f}")
    table.add("GPU slot occupancy, first start to last end", f"{100 * _occupancy(r['work'], slots, first, end):.0f}%")
    table.add("GPU slot occupancy, whole sweep", f"{100 * _occupancy(r['work'], slots, r['t0'], r['t1']):.0f}%")
    table.add("driver seconds in ResultsWriter", f"{r['callback_seconds']:.1f}")
    table.notes.append("occupancy: seconds of trial work (inside the trainable) / (slots x interval); every node is a "
                       f"process on this {os.cpu_count()}-CPU machine, so actor start-up competes for the same cores")
    return table


def run(ctx: Context) -> list[Table]:
    from bench import cost

    return [_local(ctx), _cluster(ctx), *cost.run(ctx)]
