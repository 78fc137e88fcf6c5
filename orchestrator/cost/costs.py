"""A sweep's cost before and while it runs: the dry run's estimate per trial with totals in device-hours and wall
time on a cluster; the launch's longest-first order; the sweep's ``plan.json`` (estimates, resources and shared
runs), from which ``sweep_remaining`` tells the time left. Nothing here imports TensorFlow; Ray only to ask a
connected cluster for its nodes."""
from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrator.cost import devices
from orchestrator.cost.calibration import read_calibration
from orchestrator.cost.estimate import Estimator, TrialEstimate, data_shape, fmt_seconds
from orchestrator.cost.remaining import remaining
from orchestrator.cost.schedule import Job, capacity_bound, longest_first, makespan, simulate, slots
from results.shared_runs import PLAN_FILE, read_plan
from trainer.storage import Location, StorageError


def wants_gpu(spec) -> bool:
    return any(spec.resources_for(b)["gpu"] > 0 for b in spec.batch_sizes())


def pick_cluster(gpus: int | None, cpus: int | None, address: str | None) -> devices.ClusterShape:
    if gpus or cpus:
        return devices.what_if(gpus, cpus)
    if address:
        import ray

        ray.init(address=address, logging_level="WARNING", log_to_driver=False, configure_logging=True)
        try:
            return devices.connected_cluster()
        finally:
            ray.shutdown()
    return devices.this_machine()


def on_cpus(spec, cluster: devices.ClusterShape, gpus: int | None, cpus: int | None) -> bool:
    """Whether the estimate is for CPUs: the trials ask for none, or the user asked about CPUs only."""
    return not wants_gpu(spec) or bool(cpus and not gpus)


def pick_device(spec, cluster: devices.ClusterShape, asked: str | None, cpu: bool = False) -> tuple[str, str]:
    """The device the estimate is for, and why that one."""
    if asked:
        return asked, "asked with --device"
    if cpu or not wants_gpu(spec):
        return devices.cpu_name(), "the trials run on CPUs; this machine's CPU"
    if cluster.gpu_kind:
        return cluster.gpu_kind, "the cluster's GPUs"
    local = devices.local_gpus()
    if local:
        return local[0], "this machine's GPU"
    return devices.DEFAULT_GPU, f"assumed: no GPU here to tell which; --device {'/'.join(devices.ASSUMED)} to choose"


def _shape_name(config) -> str:
    return f"{config.model}/{config.norm}/b{config.batch_size}/r{config.replicas}/{getattr(config, 'precision', None)}"


def estimates(spec, trials, shape, device: str, results, sweep_dir=None) -> tuple[Estimator, dict, str]:
    """Whole-trial estimates of the trials that run, with what is recorded under ``sweep_dir`` taken into account."""
    est = Estimator(shape, device, read_calibration(results, device))
    runs = [t for t in trials if t.runs]
    out = {t.key: est.estimate(t.config, spec.trial_resources(t.config.batch_size)["CPU"]) for t in runs}
    basis = ""
    if sweep_dir is not None and (sweep_dir / "epochs").exists():
        from results import store

        done = store.read_trials(sweep_dir)
        statuses = dict(zip(done["trial_key"], done["status"]))
        out, basis = remaining(out, {t.key: _shape_name(t.config) for t in runs}, store.read_epochs(sweep_dir),
                               statuses)
    return est, out, basis


def _hours(spec, trials, ests: dict[str, TrialEstimate], gpu: bool) -> float:
    return sum(ests[t.key].total_seconds * spec.trial_resources(t.config.batch_size)["GPU" if gpu else "CPU"]
               for t in trials if t.key in ests) / 3600


def wall_lines(spec, trials, ests: dict[str, TrialEstimate], cluster: devices.ClusterShape,
               max_concurrent: int | None, unit: str, cpu: bool = False) -> list[str]:
    """The wall time on ``cluster`` longest first against plan order, the lower bound, the longest trials' share
    (``cpu``: the trials' GPU requests are left out, as for trials run on CPUs)."""
    jobs = []
    for t in trials:
        if t.key in ests and ests[t.key].total_seconds > 0:
            r = spec.trial_resources(t.config.batch_size)
            jobs.append(Job(t.key, ests[t.key].total_seconds, r["CPU"], 0.0 if cpu else r["GPU"]))
    if not jobs:
        return ["wall time: nothing left to run"]
    n = slots(jobs, list(cluster.nodes), max_concurrent)
    if not n or not any(devices_fit(j, cluster) for j in jobs):
        need = jobs[0]
        return [f"wall time on {cluster.description}: cannot run there (a trial needs {need.cpu:g} CPU and "
                f"{need.gpu:g} GPU); ask with --gpus N or --cpus N"]
    lpt = makespan(simulate(longest_first(jobs, lambda j: j.seconds), list(cluster.nodes), max_concurrent))
    grid = makespan(simulate(jobs, list(cluster.nodes), max_concurrent))
    bound, which = capacity_bound(jobs, list(cluster.nodes), max_concurrent)
    longest = max(j.seconds for j in jobs)
    total = sum(j.seconds for j in jobs)
    top = longest_first(jobs, lambda j: j.seconds)
    median = sorted(j.seconds for j in jobs)[len(jobs) // 2]
    top = [j for j in top if j.seconds >= 1.5 * median][:6] or top[:1]
    share = sum(j.seconds for j in top) / total
    return [
        f"wall time on {cluster.description}: {fmt_seconds(lpt)} longest first (in plan order: {fmt_seconds(grid)}); "
        f"lower bound {fmt_seconds(bound)} (set by the {which}; longest trial {fmt_seconds(longest)})",
        f"longest trials: {', '.join(f'{j.key} {fmt_seconds(j.seconds)}' for j in top)}: "
        f"{100 * share:.0f}% of the {unit}; the longest alone is {100 * longest / lpt:.0f}% of the wall time",
    ]


def devices_fit(job: Job, cluster: devices.ClusterShape) -> bool:
    return any(n.get("CPU", 0) + 1e-9 >= job.cpu and n.get("GPU", 0) + 1e-9 >= job.gpu for n in cluster.nodes)


def extra_seed(spec, est: Estimator, gpu: bool) -> tuple[int, float]:
    """The runs one more seed in every study adds, and their device-hours (GPU-hours, or CPU-core-hours when not
    ``gpu``): seeds cost alike, so this is the plan of one new seed."""
    from orchestrator.spec.plan import plan_trials

    new = max([*spec.seeds, *(seed for s in spec.studies.values() for seed in s.seeds or ())]) + 1
    one = spec.model_copy(update={"seeds": [new], "studies": {n: s.model_copy(update={"seeds": None})
                                                              for n, s in spec.studies.items()}})
    runs = [t for t in plan_trials(one) if t.runs]
    ests = {t.key: est.estimate(t.config, spec.trial_resources(t.config.batch_size)["CPU"]) for t in runs}
    return len(runs), _hours(spec, runs, ests, gpu)


def _fmt_hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.3g}"


def dry_run_lines(spec, trials, *, results, data_dir, address=None, gpus=None, cpus=None, device=None,
                  max_concurrent=None) -> list[str]:
    """The plan with each trial's estimated time per epoch and in all, then the totals."""
    from orchestrator.spec.plan import format_plan
    from trainer.data import check_dataset

    shape = data_shape(spec.dataset, data_dir)
    cluster = pick_cluster(gpus, cpus, address)
    cpu = on_cpus(spec, cluster, gpus, cpus)
    name, why = pick_device(spec, cluster, device, cpu)
    try:
        sweep_dir = Location.of(results) / spec.name
    except StorageError:
        sweep_dir = None
    est, ests, basis = estimates(spec, trials, shape, name, results, sweep_dir)
    cost = {t.key: (f"{fmt_seconds(ests[t.key].epoch_seconds):>9} {fmt_seconds(ests[t.key].total_seconds):>9}  "
                    if t.key in ests else f"{'-':>9} {'-':>9}  ") for t in trials}
    lines = format_plan(spec, trials, cost, f"{'per epoch':>9} {'in all':>9}  ").splitlines()
    unit = "CPU-core-hours" if cpu else f"{name} GPU-hours"
    hours = _hours(spec, trials, ests, not cpu)
    runs = sum(t.runs for t in trials)
    extra_runs, extra_hours = extra_seed(spec, est, not cpu)
    lines += [
        f"data: {shape.source}",
        f"device: {est.describe()} ({why})",
        *([f"measured so far: {basis}"] if basis else []),
        f"total: {runs} runs, {_fmt_hours(hours)} {unit}"
        + (f" ({len(trials) - runs} trials share another's run)" if runs < len(trials) else ""),
        f"seeds: {_seed_counts(spec)}; one more seed in every study adds {extra_runs} runs, "
        f"{_fmt_hours(extra_hours)} {unit}",
        *wall_lines(spec, trials, ests, cluster, max_concurrent, unit, cpu),
    ]
    if problem := check_dataset(spec.dataset):
        lines.append(f"note: dataset: {problem}; a launch needs it")
    return lines


def _seed_counts(spec) -> str:
    """``3 per configuration``, or ``1 per configuration (3 in norms, 3 in groups)`` where studies set their own."""
    own = [f"{len(s.seeds)} in {n}" for n, s in spec.studies.items() if s.seeds is not None]
    return f"{len(spec.seeds)} per configuration" + (f" ({', '.join(own)})" if own else "")


def order_and_record(sweep_dir: Location, spec, trials, pending, dataset_dir, *, results, device=None,
                     max_concurrent=None) -> tuple[list, str]:
    """The pending trials that run, longest estimated remainder first, and a line saying so; writes the sweep's
    plan.json (every trial's estimate, resources and shared run) for ``gnsweep status`` and the report."""
    cluster = devices.connected_cluster()
    name, _ = pick_device(spec, cluster, device)
    est, ests, _ = estimates(spec, trials, data_shape(str(dataset_dir)), name, results, sweep_dir)
    record_plan(sweep_dir, spec, trials, ests, name, est, cluster)
    runs = longest_first([t for t in pending if t.runs], lambda t: ests[t.key].total_seconds)
    total = sum(ests[t.key].total_seconds for t in runs)
    sources = sorted({ests[t.key].source for t in runs})
    line = (f"estimate: {len(runs)} runs, {fmt_seconds(total)} of trial time on {name} ({', '.join(sources)}); "
            f"started longest first" if runs else "estimate: nothing to run")
    return runs, line


def record_plan(sweep_dir: Location, spec, trials, ests: dict[str, TrialEstimate], device: str, est: Estimator,
                cluster: devices.ClusterShape) -> None:
    """``plan.json``: the launch's estimate of every trial and who shares whose run, merged over launches, and the
    validation set's size (the report's intervals include its sampling error)."""
    from orchestrator.spec.dedup import why_same

    by_key = {t.key: t for t in trials}
    old = read_plan(sweep_dir).get("trials", {})
    entries = {}
    for t in trials:
        r = spec.trial_resources(t.config.batch_size)
        entry = {"config": t.config.to_dict(), "studies": list(t.studies), "same_as": t.same_as,
                 "why": why_same(t.config, by_key[t.same_as].config) if t.same_as else None,
                 "cpu": r["CPU"], "gpu": r["GPU"], "shape": _shape_name(t.config)}
        if t.key in ests:
            e = ests[t.key]
            entry.update(train_seconds=e.train_seconds, other_seconds=e.other_seconds,
                         startup_seconds=e.startup_seconds, epochs=t.config.train.epochs, source=e.source)
        entries[t.key] = entry
    plan = {"name": spec.name, "device": device, "estimate": est.describe(), "nodes": list(cluster.nodes),
            "val_images": est.shape.val, "trials": {**old, **entries}}
    (sweep_dir / PLAN_FILE).write_text(json.dumps(plan, indent=1, default=str))


@dataclass(frozen=True)
class SweepRemaining:
    """What is left of a launched sweep: trial time per run, in all, and as wall time on the launch's cluster."""

    seconds: dict[str, float]  # run key -> its trial time left
    trial_seconds: float
    wall_seconds: float
    line: str  # "remaining: ..., from <what the figures rest on>"


def sweep_remaining(plan: dict, epochs, statuses: dict[str, str]) -> SweepRemaining | None:
    """The time left from plan.json's estimates (``plan``) and the measured epochs of the runs (``statuses``: the
    runs' trials-table statuses); None for a sweep launched before estimates were recorded."""
    entries = {k: v for k, v in plan.get("trials", {}).items() if not v.get("same_as") and "train_seconds" in v}
    if not entries:
        return None
    ests = {k: TrialEstimate(k, v["train_seconds"], v["other_seconds"], v["startup_seconds"], v["epochs"],
                             v["source"]) for k, v in entries.items()}
    left, basis = remaining(ests, {k: v["shape"] for k, v in entries.items()}, epochs, statuses)
    jobs = [Job(k, e.total_seconds, entries[k]["cpu"], entries[k]["gpu"]) for k, e in left.items()
            if e.total_seconds > 0]
    nodes = plan.get("nodes") or [{"CPU": 1.0, "GPU": 0.0}]
    wall = makespan(simulate(longest_first(jobs, lambda j: j.seconds), nodes)) if jobs else 0.0
    total = sum(j.seconds for j in jobs)
    line = (f"remaining: {fmt_seconds(total)} of trial time, about {fmt_seconds(wall)} of wall time on the launch's "
            f"cluster ({plan.get('device', '?')}); from {basis}")
    return SweepRemaining({k: e.total_seconds for k, e in left.items()}, total, wall, line)
