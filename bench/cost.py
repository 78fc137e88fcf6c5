"""Scheduling, continued: longest first against Ray Tune's grid order on a simulated GPU cluster, and the accuracy
of a calibrated estimate against a real sweep on this machine.

(c) ``sweeps/paper.yaml``'s plan (23 runs) on a ``ray.cluster_utils.Cluster`` with fake GPUs, through the real
    ``run_trials``, each trial sleeping its estimated duration (the FLOP-based A100 estimate) scaled so the
    8-slot lower bound is ``LOWER_BOUND_8`` seconds; longest first against plan order, on 8 and 32 slots. The
    makespan is from the first trial's start to the last one's end; the lower bound is max(longest, total / slots).
    Beside it, the same schedule replayed without overheads (``orchestrator.cost.schedule.simulate``).
(d) A real digits sweep (resnet8, a few trials): ``gnsweep calibrate``, then ``gnsweep launch`` (one trial at a
    time, as calibrated), estimated (the launch's plan.json) against measured (the trials table) per trial and in
    all.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.harness import Context, Table, verdict

REPO = Path(__file__).resolve().parents[1]
LOWER_BOUND_8 = 90.0  # seconds: long enough that a trial actor's start-up (a few seconds here) is a small share
SLOTS = ((2, 4), (4, 8))  # (workers, fake GPUs each): 8 and 32 slots
TARGET_MAKESPAN = 1.15
TARGET_TRIAL, TARGET_TOTAL = 0.25, 0.20
DIGITS_SPEC = """name: accuracy
dataset: {dataset}
model: resnet8
train: {{epochs: 3, base_lr: 0.1, base_batch: 32, augment: false}}
studies:
  a: {{norm: [bn, gn], batch_size: [32]}}
  b: {{norm: [gn], batch_size: [4]}}
seeds: [0]
defaults: {{groups: 8}}
resources: {{cpu: 1}}
retries: 0
"""


def sleeping_trial(config: dict, seconds: dict) -> None:
    """A trainable that sleeps its trial's scaled duration and reports once, with when its work ran."""
    from ray import tune

    started = time.time()
    time.sleep(seconds[config["trial"]["key"]])
    tune.report({"work_started": started, "work_ended": time.time()})


def paper_plan():
    from orchestrator.cost.costs import estimates
    from trainer.data.shapes import TINY_IMAGENET
    from orchestrator.spec.plan import plan_trials
    from orchestrator.spec.validation import parse_spec

    data = yaml.safe_load((REPO / "sweeps" / "paper.yaml").read_text())
    data["resources"] = {"cpu": 1, "gpu": 1}  # logical CPUs: one GPU per slot is what is measured
    spec = parse_spec(data, check_dataset=False)
    trials = plan_trials(spec)
    _, ests, _ = estimates(spec, trials, TINY_IMAGENET, "A100", "/nonexistent")
    runs = [t for t in trials if t.runs]
    return spec, runs, {t.key: ests[t.key].total_seconds for t in runs}


def _run_on_cluster(root: Path, spec, ordered, seconds: dict, workers: int, gpus: int) -> dict:
    import ray
    from ray import tune
    from ray.cluster_utils import Cluster

    from orchestrator.tune.run import run_trials

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    out = {}
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=gpus, num_gpus=gpus)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False, configure_logging=True)
        for name, trials in ordered.items():
            t0 = time.time()
            grid = run_trials(spec, trials, sweep_dir=root / f"{name}-{workers * gpus}", dataset_dir=root,
                              callbacks=[], trainable=tune.with_parameters(sleeping_trial, seconds=seconds))
            wall = time.time() - t0
            work = {r.config["trial"]["key"]: (r.metrics["work_started"], r.metrics["work_ended"]) for r in grid}
            out[name] = {"wall": wall, "work": work}
    finally:
        ray.shutdown()
        cluster.shutdown()
    return out


def _makespan(ctx: Context) -> Table:
    from orchestrator.cost.schedule import Job, longest_first, lower_bound, makespan, simulate

    spec, runs, hours = paper_plan()
    longest = longest_first(runs, lambda t: hours[t.key])
    scale = None
    table = Table(f"scheduling (c): sweeps/paper.yaml's {len(runs)} runs on a simulated cluster (fake GPUs), trials "
                  f"sleeping their estimated durations (A100, rough) scaled to an 8-slot lower bound of "
                  f"{LOWER_BOUND_8:g} s", ["slots", "order", "makespan s", "lower bound s", "ratio",
                                            "verdict", "replayed ratio", "verdict", "run_trials wall s",
                                            "target"])
    for workers, gpus in SLOTS:
        slots = workers * gpus
        jobs = [Job(t.key, hours[t.key], 1, 1) for t in runs]
        if scale is None:
            scale = LOWER_BOUND_8 / lower_bound(jobs, slots)
        seconds = {k: v * scale for k, v in hours.items()}
        jobs = [Job(t.key, seconds[t.key], 1, 1) for t in runs]
        bound = lower_bound(jobs, slots)
        nodes = [{"CPU": gpus, "GPU": gpus}] * workers
        measured = _run_on_cluster(ctx.scratch / "cost-cluster", spec, {"longest first": longest,
                                                                       "plan order": runs}, seconds, workers, gpus)
        for name, order in (("longest first", longest), ("plan order", runs)):
            m = measured[name]
            span = max(e for _, e in m["work"].values()) - min(s for s, _ in m["work"].values())
            replay = makespan(simulate([Job(t.key, seconds[t.key], 1, 1) for t in order], nodes))
            table.add(str(slots), name, f"{span:.1f}", f"{bound:.1f}", f"{span / bound:.2f}",
                      verdict(span / bound, TARGET_MAKESPAN, at_most=True), f"{replay / bound:.2f}",
                      verdict(replay / bound, TARGET_MAKESPAN, at_most=True), f"{m['wall']:.1f}",
                      f"<= {TARGET_MAKESPAN}")
        first = sorted(measured["longest first"]["work"], key=lambda k: measured["longest first"]["work"][k][0])
        top = {t.key for t in longest[:slots]}
        table.notes.append(f"{slots} slots, longest first: {len(top & set(first[:slots]))} of the {min(slots, len(runs))} "
                           f"longest trials were among the first {min(slots, len(runs))} to start")
    table.notes.append("makespan: first trial's start to last trial's end, as the trials measured it; replayed: "
                       "the same order through orchestrator.cost.schedule.simulate, without the seconds each trial's fresh "
                       f"actor takes to start; every fake node is a process on this {os.cpu_count()}-CPU machine, "
                       "where those seconds (several per trial when 8 start at once) are a large share of trials "
                       "scaled to tens of seconds, and a negligible one of trials that last hours")
    return table


def gnsweep(*args, cwd: Path) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "orchestrator.cli", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if run.returncode:
        raise RuntimeError(f"gnsweep {' '.join(map(str, args))} failed:\n{run.stderr[-3000:]}")
    return run


def _accuracy(ctx: Context) -> Table:
    import pandas as pd

    root = ctx.scratch / "cost-accuracy"
    root.mkdir()
    spec = root / "accuracy.yaml"
    spec.write_text(DIGITS_SPEC.format(dataset=ctx.digits.prepared))
    t0 = time.perf_counter()
    gnsweep("calibrate", spec, "--results", root / "results", cwd=root)
    calibrate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gnsweep("launch", spec, "--results", root / "results", "--no-dashboard", "--max-concurrent", "1", cwd=root)
    launch_s = time.perf_counter() - t0
    plan = json.loads((root / "results" / "accuracy" / "plan.json").read_text())["trials"]
    trials = pd.read_parquet(root / "results" / "accuracy" / "trials").set_index("trial_key")
    table = Table("scheduling (d): estimate against a real digits sweep (resnet8, 3 epochs, one trial at a time, "
                  "1 CPU each), calibrated by gnsweep calibrate", ["trial", "estimated s", "measured s", "error",
                                                                  "target", "verdict"])
    est_total = meas_total = 0.0
    for key, entry in plan.items():
        if "train_seconds" not in entry:
            continue
        est = entry["startup_seconds"] + entry["epochs"] * (entry["train_seconds"] + entry["other_seconds"])
        meas = (trials.loc[key, "ended_at"] - trials.loc[key, "started_at"]).total_seconds()
        est_total += est
        meas_total += meas
        err = est / meas - 1
        table.add(key, f"{est:.1f}", f"{meas:.1f}", f"{100 * err:+.0f}%", f"+-{100 * TARGET_TRIAL:g}%",
                  verdict(abs(err), TARGET_TRIAL, at_most=True))
    first = trials["started_at"].min()
    span = (trials["ended_at"].max() - first).total_seconds()
    err = est_total / span - 1
    table.add("in all (first start to last end)", f"{est_total:.1f}", f"{span:.1f}", f"{100 * err:+.0f}%",
              f"+-{100 * TARGET_TOTAL:g}%", verdict(abs(err), TARGET_TOTAL, at_most=True))
    table.notes.append(f"measured: the trials table's started_at to ended_at (driver side: actor start, TensorFlow "
                       f"import, build, compile, epochs, checkpoints); gnsweep calibrate took {calibrate_s:.0f} s, "
                       f"the launch {launch_s:.0f} s (with ray.init)")
    return table


def run(ctx: Context) -> list[Table]:
    return [_makespan(ctx), _accuracy(ctx)]
