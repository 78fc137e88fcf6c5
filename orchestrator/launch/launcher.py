"""``gnsweep launch``: validate, plan, resume, run on Ray, summarise. The results store decides what is left to run."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from orchestrator.launch.cluster import ClusterError, check_shared_storage, cluster_problems
from orchestrator.spec.plan import PlannedTrial, format_plan, plan_trials, study_kinds
from trainer.storage import Location, StorageError



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
    allow_open_network: bool = False  # a local launch may listen beyond loopback without Ray's token
    gpus: int | None = None  # dry run: estimate the wall time on this many GPUs ("what if")
    cpus: int | None = None  # dry run: ... on this many CPUs
    device: str | None = None  # estimate for this device (A100, H100, H200, T4, A10G, CPU or a calibrated name)


def refusal(sweep_dir: Location, spec, images: dict[str, int] | None = None):
    """What a launch of ``spec`` would refuse in ``sweep_dir`` before writing anything, read only (the dry run asks
    too): a damaged results file (raises DamagedResults), or settings, or a dataset of other sizes (``images``, by
    split), than the sweep was run with (raises LaunchError). Returns the sweep's record, None for a new sweep."""
    from results import store

    store.check_sweep(sweep_dir)
    recorded = store.read_sweep(sweep_dir)
    images = dict(images or {})
    if recorded is not None:
        # a sweep launched before image counts were recorded has none: nothing to compare them with
        old = {**recorded.fingerprint, **{f"images.{k}": v for k, v in recorded.images.items() if k in images}}
        new = {**spec.fingerprint(), **{f"images.{k}": v for k, v in images.items() if k in recorded.images}}
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            diffs = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise LaunchError(f"{sweep_dir / store.SWEEP_FILE}: sweep {spec.name!r} was run with other settings "
                              f"({diffs}); give the spec a new name or use another --results directory")
    return recorded


def check_fingerprint(sweep_dir: Location, spec, trials: list[PlannedTrial], images: dict[str, int] | None = None
                      ) -> None:
    """Refuse to mix results of different training settings, or of datasets of other sizes, under one sweep name;
    record the plan (its keys and its studies' kinds) and the dataset's image counts by split (``images``, which
    the report's intervals need). Reads every results file first, so a damaged one is named before anything is
    written and before Ray starts."""
    from results import store
    from results.records import SweepRecord

    recorded = refusal(sweep_dir, spec, images)
    keys, kinds, images = [t.key for t in trials], study_kinds(spec), dict(images or {})
    if recorded is not None:
        keys = list(dict.fromkeys([*recorded.trials, *keys]))
        kinds = {**recorded.studies, **kinds}
        images = images or dict(recorded.images)
    try:
        store.write_sweep(sweep_dir, SweepRecord(spec.name, spec.fingerprint(), tuple(keys), kinds, images))
    except store.StoreError as e:
        raise LaunchError(f"--results: {e}") from None


def fold_old_layout(sweep_dir: Location, echo: Callable[[str], None]) -> None:
    """Fold the epoch rows of sweeps written one file per row into one file per trial (``results.folding``), before
    anything runs: reading them back stays fast, and the results writer finds one file per trial."""
    from results import store

    try:
        folded = store.fold_sweep(sweep_dir)
    except store.StoreError as e:
        raise LaunchError(f"--results: {e}") from None
    if folded:
        echo(f"folded the epoch rows of {len(folded)} trial(s) into one file per trial ({sweep_dir / store.EPOCHS})")


def pending_trials(sweep_dir: Location, trials: list[PlannedTrial]) -> tuple[list[PlannedTrial], dict]:
    """Trials not finished in earlier launches, and the earlier trials-table rows (``TrialRow`` by key, for attempts
    and times)."""
    from results import store
    from results.schema import FINISHED

    prior = store.read_trial_rows(sweep_dir)
    pending = [t for t in trials if t.key not in prior or prior[t.key].status not in FINISHED]
    return pending, prior


def record_shared(sweep_dir: Location, trials: list[PlannedTrial], prior: dict) -> None:
    """The trials rows and TensorBoard runs of the trials that share a run recorded before this launch (a finished
    run's shared trials get theirs here; this launch's runs write their shared trials' rows as they go)."""
    from results import store
    from orchestrator.tune.results_writer import record_shared_runs, shared_trials

    try:
        record_shared_runs(sweep_dir, prior, shared_trials(trials))
    except store.StoreError as e:
        raise LaunchError(f"--results: {e}") from None


def token_auth_enabled() -> bool:
    """Whether the Ray this driver is connected to checks tokens (Ray's own answer, else what RAY_AUTH_MODE says)."""
    from orchestrator.launch import network

    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        return bool(is_token_auth_enabled())
    except (ImportError, AttributeError):
        return network.token_auth_on()


def start_ray(opts: LaunchOptions, echo: Callable[[str], None]) -> None:
    import ray

    from orchestrator.launch import network
    from orchestrator.launch.address import connect, named_address
    from orchestrator.tune.run import WORKER_ENV

    # Inside a Ray job whose runtime env already sets these, setting them again would be a merge conflict.
    env_vars = {k: v for k, v in WORKER_ENV.items() if k not in os.environ}
    kwargs = dict(runtime_env={"env_vars": env_vars} if env_vars else None, log_to_driver=opts.verbose,
                  logging_level="WARNING", configure_logging=True)
    # Join only a cluster the user named (--address, or RAY_ADDRESS as set inside a Ray job); never the "latest
    # cluster" Ray remembers in /tmp/ray/ray_current_cluster, which may be long gone (ray.init would wait on it forever).
    named = named_address(opts.address)
    if named:
        ctx = connect(*named, **kwargs)
    else:
        network.bind_to_loopback()
        ctx = ray.init(address="local", include_dashboard=opts.dashboard, dashboard_host=opts.dashboard_host, **kwargs)
        network.check_node_address(ctx.address_info["node_ip_address"], opts.allow_open_network, echo)
    if ctx.dashboard_url:
        for line in network.dashboard_lines(f"http://{ctx.dashboard_url}", token_auth_enabled()):
            echo(line)


@dataclass
class SweepRun:
    """One launch of one sweep: the spec and its planned trials, where results go, the prepared data (a directory,
    or a Location in object storage that each node copies), the options, where lines are printed, the
    Ctrl-C/SIGTERM catcher and the function that trains each trial."""

    spec: object
    trials: list[PlannedTrial]
    sweep_dir: Location
    dataset_dir: Path | Location
    opts: LaunchOptions
    echo: Callable[[str], None]
    catcher: object
    trainer: object  # orchestrator.tune.run.TrainerChoice

    @property
    def runs(self) -> list[PlannedTrial]:
        """The trials that run; the others share one of these runs (orchestrator.spec.dedup)."""
        return [t for t in self.trials if t.runs]


def _run_on_ray(run: SweepRun, pending: list[PlannedTrial], prior: dict) -> None:
    """Check the cluster, order the pending runs longest first, and run them with the results writer."""
    spec, trials, sweep_dir, dataset_dir, opts, echo, catcher = (
        run.spec, run.trials, run.sweep_dir, run.dataset_dir, run.opts, run.echo, run.catcher)
    problems = cluster_problems(spec)
    if problems:
        raise LaunchError("\n".join(problems))
    try:
        check_shared_storage(sweep_dir, dataset_dir, echo)
    except ClusterError as e:
        raise LaunchError(str(e)) from None
    from orchestrator.cost.costs import order_and_record
    from orchestrator.tune.metrics import SweepGauges
    from orchestrator.tune.progress import ProgressPrinter
    from orchestrator.tune.results_writer import ResultsWriter, shared_trials
    from orchestrator.tune.run import run_trials
    from orchestrator.tune.stop import StopOnSignal
    from orchestrator.watch.tally import tally
    from results import store

    from results.store import StoreError

    try:
        pending, line = order_and_record(sweep_dir, spec, trials, pending, dataset_dir, results=opts.results,
                                         device=opts.device)
    except StoreError as e:
        raise LaunchError(f"--results: {e}") from None
    echo(line)
    writer = ResultsWriter(sweep_dir, spec.name, {t.key: t.studies for t in trials}, prior, shared_trials(trials),
                           prior_epochs=store.read_epochs(sweep_dir))
    record, plan = store.read_sweep(sweep_dir), store.read_plan(sweep_dir)
    progress = ProgressPrinter(lambda: tally(record, *writer.tables(), plan).summary(), echo=echo)
    gauges = SweepGauges(spec.name, len(pending))
    try:
        with catcher.deferred():  # a signal stops Tune's loop at its next step (orchestrator.tune.stop says why)
            run_trials(spec, pending, sweep_dir=sweep_dir, dataset_dir=dataset_dir,
                       callbacks=[StopOnSignal(catcher.check), writer, progress, gauges],
                       max_concurrent=opts.max_concurrent, trainer=run.trainer)
    except Exception:
        if catcher.interrupted is not None:
            stopped = writer.record_interrupted()
            echo(f"{len(stopped)} running trial(s) recorded as interrupted: {', '.join(stopped) or '-'}")
            raise
        if writer.failure is None:
            raise
        # Tune stops the sweep when a results file cannot be written; what was written before stays readable
        raise LaunchError(f"{writer.failure}; the results written before it are intact: make room (or make it "
                          f"writable) and launch again to go on") from None


def summary(sweep_dir: Location, keys: list[str]) -> tuple[str, list[str]]:
    """A table of the sweep's trials and the keys of those that failed (the planned ``keys``; what the results
    files say is escaped for the terminal)."""
    from results import store
    from results.schema import TrialStatus
    from results.terminal import terminal_text

    trials = store.read_trial_rows(sweep_dir)
    lines = [f"{'trial':<24} {'status':<10} {'epochs':>6} {'final val err %':>16}  error"]
    failed = []
    for key in keys:
        r = trials.get(key)
        if r is None:
            lines.append(f"{key:<24} {TrialStatus.PENDING:<10} {0:>6} {'-':>16}")
            continue
        err = "-" if r.final_val_err is None or math.isnan(r.final_val_err) else f"{r.final_val_err:.2f}"
        lines.append(f"{key:<24} {terminal_text(r.status):<10} {r.epochs:>6} {err:>16}  "
                     f"{terminal_text(r.error or '')}")
        if r.status == TrialStatus.FAILED:
            failed.append(key)
    return "\n".join(lines), failed


def launch(spec_path: str | Path, opts: LaunchOptions, echo: Callable[[str], None] = print) -> int:
    """Run a sweep; returns the exit status (0 ok, 1 failed trials, 130/143 stopped by SIGINT/SIGTERM). Raises
    SpecError / LaunchError / DataError / NetworkError / LockError for bad input before anything starts."""
    from orchestrator.launch import interrupts

    with interrupts.catch() as catcher:
        try:
            return _launch(spec_path, opts, echo, catcher)
        except Exception as e:
            stop = e if isinstance(e, interrupts.Interrupted) else catcher.interrupted
            if stop is None:
                raise
            echo(f"interrupted ({stop}): the sweep stopped; run `gnsweep launch {spec_path}` again to resume it")
            return stop.exit_code


def _launch(spec_path, opts: LaunchOptions, echo: Callable[[str], None], catcher) -> int:
    from results.terminal import terminal_text
    from orchestrator.launch.lock import lock_sweep
    from orchestrator.launch.network import check_exposure, check_local_token
    from orchestrator.spec.file import load_spec
    from orchestrator.spec.validation import check_batches
    from orchestrator.launch.address import check_address, named_address

    spec = load_spec(spec_path, check_dataset=not opts.dry_run)
    if opts.device is not None:
        from orchestrator.cost.costs import device_problem

        if problem := device_problem(opts.device, opts.results):
            raise LaunchError(f"--device {terminal_text(opts.device)}: {problem}")
    named = named_address(opts.address)
    address = check_address(*named, client_ok=opts.dry_run) if named else None
    if not named:
        check_exposure(opts.dashboard, opts.dashboard_host, opts.allow_open_network, echo)
        check_local_token()
    trials = plan_trials(spec)
    from orchestrator.cost.packing import memory_warnings

    warnings = [f"warning: {spec_path}: {w}" for w in memory_warnings(spec)]
    from orchestrator.cost.estimate import data_shape

    shape = data_shape(spec.dataset, opts.data_dir)
    if shape.known:  # batches past the training set refused before the dataset is prepared (the digits are known)
        check_batches(spec, shape.train, spec.dataset, str(spec_path))
    if opts.dry_run:
        from orchestrator.cost.costs import dry_run_lines

        try:  # what the launch would refuse, the dry run refuses too
            refusal(Location.of(opts.results) / spec.name, spec,
                    {"train": shape.train, "val": shape.val} if shape.known else None)
        except StorageError as e:
            raise LaunchError(f"--results {e}") from None
        for line in dry_run_lines(spec, trials, results=opts.results, data_dir=opts.data_dir, address=address,
                                  gpus=opts.gpus, cpus=opts.cpus, device=opts.device,
                                  max_concurrent=opts.max_concurrent):
            echo(line)
        for line in warnings:
            echo(line)
        return 0
    echo(format_plan(spec, trials))
    for line in warnings:
        echo(line)
    from trainer import data

    try:
        sweep_dir = Location.of(opts.results) / spec.name
    except StorageError as e:
        raise LaunchError(f"--results {e}") from None
    dataset_dir = data.resolve_dataset(spec.dataset, Path(opts.data_dir).resolve())
    dataset_dir = dataset_dir.resolve() if isinstance(dataset_dir, Path) else dataset_dir
    info = data.check_prepared(dataset_dir)
    check_batches(spec, info.counts["train"], spec.dataset, str(spec_path))  # the data as prepared now
    from orchestrator.tune.run import TrainerChoice

    try:
        trainer = TrainerChoice.from_env()
    except ValueError as e:
        raise LaunchError(str(e)) from None
    claim = lock_sweep(sweep_dir, spec.name, warn=lambda line: echo(line))
    try:
        return _run(SweepRun(spec, trials, sweep_dir, dataset_dir, opts, echo, catcher, trainer))
    finally:
        claim.release()


def _run(run: SweepRun) -> int:
    spec, trials, runs, sweep_dir, opts, echo = run.spec, run.trials, run.runs, run.sweep_dir, run.opts, run.echo
    from trainer import data

    counts = data.load_info(run.dataset_dir).counts
    check_fingerprint(sweep_dir, spec, trials, {k: int(v) for k, v in counts.items() if k in ("train", "val") and v})
    fold_old_layout(sweep_dir, echo)
    pending, prior = pending_trials(sweep_dir, runs)
    record_shared(sweep_dir, trials, prior)
    if not pending:
        echo(f"all {len(runs)} trials are finished; nothing to run")
    else:
        echo(f"running {len(pending)} of {len(runs)} trials ({len(runs) - len(pending)} already finished)")
        import ray

        try:
            start_ray(opts, echo)
            run.catcher.install()  # ray.init replaced the SIGTERM handler
            _run_on_ray(run, pending, prior)
        finally:
            ray.shutdown()
    table, failed = summary(sweep_dir, [t.key for t in runs])
    echo(table)
    for t in trials:
        if t.same_as:
            echo(f"{t.key} shares the run of {t.same_as} (the same computation)")
    echo(f"results: {sweep_dir} (pd.read_parquet('{sweep_dir / 'epochs'}'))")
    if failed:
        echo(f"{len(failed)} trial(s) failed: {', '.join(failed)}")
        return 1
    return 0
