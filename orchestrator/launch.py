"""``gnsweep launch``: validate, plan, resume, run on Ray, summarise. The results store decides what is left to run."""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from orchestrator.plan import PlannedTrial, format_plan, plan_trials
from trainer.storage import Location, StorageError

FINISHED = ("completed", "diverged")
SWEEP_FILE = "sweep.json"


class LaunchError(Exception):
    """A user-facing problem found before any trial starts (one line per problem)."""


@dataclass
class LaunchOptions:
    results: str | Path = "results"  # a local directory or a trainer.storage URI
    address: str | None = None
    dry_run: bool = False
    max_concurrent: int | None = None
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    data_dir: Path = Path("data")
    verbose: bool = False


def check_fingerprint(sweep_dir: Location, spec, trials: list[PlannedTrial]) -> None:
    """Refuse to mix results of different training settings under one sweep name; record the plan's keys."""
    path = sweep_dir / SWEEP_FILE
    fingerprint = spec.fingerprint()
    keys = [t.key for t in trials]
    if path.exists():
        recorded = json.loads(path.read_text())
        old = recorded.get("fingerprint", {})
        changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if changed:
            diffs = "; ".join(f"{k}: {old.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed)
            raise LaunchError(f"{path}: sweep {spec.name!r} was run with other settings ({diffs}); "
                              f"give the spec a new name or use another --results directory")
        keys = list(dict.fromkeys(recorded.get("trials", []) + keys))
    try:
        path.write_text(json.dumps({"name": spec.name, "fingerprint": fingerprint, "trials": keys}, indent=2))
    except OSError as e:
        raise LaunchError(f"--results: cannot write {path}: {str(e).splitlines()[0]}") from None


def pending_trials(sweep_dir: Location, trials: list[PlannedTrial]) -> tuple[list[PlannedTrial], dict[str, dict]]:
    """Trials not finished in earlier launches, and the earlier trials-table rows (for attempts and times)."""
    from results import store

    prior = {r["trial_key"]: r for r in store.read_trials(sweep_dir).to_dict("records")}
    pending = [t for t in trials if prior.get(t.key, {}).get("status") not in FINISHED]
    return pending, prior


def start_ray(opts: LaunchOptions, echo: Callable[[str], None]) -> None:
    import ray

    from orchestrator.tuning import WORKER_ENV

    # Inside a Ray job whose runtime env already sets these, setting them again would be a merge conflict.
    env_vars = {k: v for k, v in WORKER_ENV.items() if k not in os.environ}
    kwargs = dict(runtime_env={"env_vars": env_vars} if env_vars else None, log_to_driver=opts.verbose,
                  logging_level="WARNING", configure_logging=True)
    # Join only a cluster the user named (--address, or RAY_ADDRESS as set inside a Ray job); never the "latest
    # cluster" Ray remembers in /tmp/ray/ray_current_cluster, which may be long gone (ray.init would wait on it forever).
    address = opts.address or os.environ.get("RAY_ADDRESS")
    if address:
        ctx = ray.init(address=address, **kwargs)
    else:
        if opts.dashboard and opts.dashboard_host not in ("127.0.0.1", "localhost"):
            echo(f"warning: the Ray dashboard on {opts.dashboard_host} has no access control of its own; anyone who "
                 f"can reach that address can submit jobs")
        ctx = ray.init(address="local", include_dashboard=opts.dashboard, dashboard_host=opts.dashboard_host, **kwargs)
    if ctx.dashboard_url:
        echo(f"Ray dashboard: http://{ctx.dashboard_url}")


STORAGE_CHECK_SECONDS = 120
SHARED_STORAGE_HINT = "must be on storage every node mounts at the same path (NFS, EFS, Filestore, a Kubernetes volume)"


def missing_paths(paths: list[str]) -> list[str]:
    """The ``paths`` this process cannot see; runs as a Ray task pinned to each node by ``check_shared_storage``."""
    return [p for p in paths if not os.path.exists(p)]


def trial_nodes() -> list[dict]:
    """Alive nodes that can run a trial (some CPU or GPU); a 0-CPU head runs none."""
    import ray

    return [n for n in ray.nodes()
            if n.get("Alive") and (n["Resources"].get("CPU", 0) > 0 or n["Resources"].get("GPU", 0) > 0)]


def node_name(node: dict) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


def unseen_paths(paths: dict[str, Path], nodes: list[dict], timeout: float = STORAGE_CHECK_SECONDS) -> dict[str, list]:
    """For each of ``paths`` (label -> absolute path) that some of ``nodes`` cannot see, those nodes' names. A node
    whose check fails or does not answer within ``timeout`` seconds counts as seeing nothing."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check = ray.remote(num_cpus=0, max_retries=0)(missing_paths)
    wanted = {str(p): label for label, p in paths.items()}
    refs = {check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(list(wanted)): n for n in nodes}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    blind: dict[str, list] = {}
    for ref, node in refs.items():
        try:
            missing = ray.get(ref) if ref in ready else list(wanted)
        except ray.exceptions.RayError:
            missing = list(wanted)
        for p in missing:
            blind.setdefault(wanted[p], []).append(node_name(node))
    return blind


def check_shared_storage(sweep_dir: Location | Path, dataset_dir: Path, echo: Callable[[str], None]) -> None:
    """On a cluster of several nodes, refuse to start unless every node that can run a trial sees the sweep directory
    (a retried trial resumes from its checkpoint on whichever node it lands) and the dataset at the same paths. Ray
    Tune would not notice: trials would fail one by one, or a lost node's trial would restart from scratch. Results
    on an object store (a URI) are shared by nature; only the dataset is checked then."""
    import ray

    from trainer.data import INFO_FILE

    if sum(1 for n in ray.nodes() if n.get("Alive")) < 2:
        return
    nodes = trial_nodes()
    sweep_dir = Location.of(sweep_dir)
    paths = {"dataset": dataset_dir / INFO_FILE}
    marker = sweep_dir.as_path() / f".storage-check-{uuid.uuid4().hex}" if sweep_dir.local else None
    if marker:
        marker.write_text("written by the gnsweep driver; every node must see it\n")
        paths["results"] = marker
    try:
        blind = unseen_paths(paths, nodes)
    finally:
        if marker:
            marker.unlink(missing_ok=True)
    problems = []
    if "results" in blind:
        problems.append(f"shared storage: {len(blind['results'])} of {len(nodes)} nodes cannot see the results "
                        f"directory {sweep_dir} ({', '.join(blind['results'])}); results and checkpoints (--results) "
                        f"{SHARED_STORAGE_HINT}")
    if "dataset" in blind:
        problems.append(f"shared storage: {len(blind['dataset'])} of {len(nodes)} nodes cannot see the dataset "
                        f"{dataset_dir} ({', '.join(blind['dataset'])}); it {SHARED_STORAGE_HINT}")
    if problems:
        raise LaunchError("\n".join(problems))
    echo(f"shared storage: checked {len(nodes)} nodes")


def cluster_problems(spec) -> list[str]:
    import ray

    from orchestrator.spec import spec_problems_for_cluster

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return spec_problems_for_cluster(spec, nodes)


def summary(sweep_dir: Location, keys: list[str]) -> tuple[str, list[str]]:
    """A table of the sweep's trials and the keys of those that failed."""
    from results import store

    trials = store.read_trials(sweep_dir).set_index("trial_key")
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'final val err %':>16}  error"]
    failed = []
    for key in keys:
        if key not in trials.index:
            lines.append(f"{key:<24} {'pending':<10} {0:>6} {'-':>16}")
            continue
        r = trials.loc[key]
        err = "-" if r["final_val_err"] is None or r["final_val_err"] != r["final_val_err"] else f"{r['final_val_err']:.2f}"
        error = r["error"] if isinstance(r["error"], str) else ""  # a null string reads back as NaN
        lines.append(f"{key:<24} {r['status']:<10} {int(r['epochs']):>6} {err:>16}  {error}")
        if r["status"] == "failed":
            failed.append(key)
    return "\n".join(lines), failed


def launch(spec_path: str | Path, opts: LaunchOptions, echo: Callable[[str], None] = print) -> int:
    """Run a sweep; returns the exit status (0 ok, 1 failed trials). Raises SpecError / LaunchError / DataError
    for bad input before anything starts."""
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path)
    trials = plan_trials(spec)
    echo(format_plan(spec, trials))
    if opts.dry_run:
        return 0
    from trainer import data

    try:
        sweep_dir = Location.of(opts.results) / spec.name
    except StorageError as e:
        raise LaunchError(f"--results {e}") from None
    dataset_dir = data.resolve_dataset(spec.dataset, Path(opts.data_dir).resolve()).resolve()
    data.verify(dataset_dir, data.load_info(dataset_dir))
    check_fingerprint(sweep_dir, spec, trials)
    pending, prior = pending_trials(sweep_dir, trials)
    keys = [t.key for t in trials]
    if not pending:
        echo(f"all {len(trials)} trials are finished; nothing to run")
    else:
        echo(f"running {len(pending)} of {len(trials)} trials ({len(trials) - len(pending)} already finished)")
        start_ray(opts, echo)
        problems = cluster_problems(spec)
        if problems:
            raise LaunchError("\n".join(problems))
        check_shared_storage(sweep_dir, dataset_dir, echo)
        from orchestrator.progress import ProgressPrinter
        from orchestrator.metrics import SweepGauges
        from orchestrator.tuning import run_trials
        from results.callback import ResultsWriter

        writer = ResultsWriter(sweep_dir, spec.name, {t.key: t.studies for t in trials}, prior)
        progress = ProgressPrinter(len(trials), spec.train.epochs, done_before=len(trials) - len(pending), echo=echo)
        gauges = SweepGauges(spec.name, len(pending))
        try:
            run_trials(spec, pending, sweep_dir=sweep_dir, dataset_dir=dataset_dir,
                       callbacks=[writer, progress, gauges], max_concurrent=opts.max_concurrent)
        except Exception:
            if writer.failure is None:
                raise
            # Tune stops the sweep when a results file cannot be written; what was written before stays readable
            raise LaunchError(f"{writer.failure}; the results written before it are intact: make room (or make it "
                              f"writable) and launch again to go on") from None
    table, failed = summary(sweep_dir, keys)
    echo(table)
    echo(f"results: {sweep_dir} (pd.read_parquet('{sweep_dir / 'epochs'}'))")
    if failed:
        echo(f"{len(failed)} trial(s) failed: {', '.join(failed)}")
        return 1
    return 0
