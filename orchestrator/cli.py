"""The ``gnsweep`` command line. Exit status: 0 success, 1 sweep finished with failed trials, 2 invalid input.

Heavy imports (TensorFlow, Ray) happen inside the commands, so ``--help`` and spec errors answer at once.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Group Normalization sweeps on Ray Tune.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
data_app = typer.Typer(help="Prepare or download datasets as TFRecord shards.", no_args_is_help=True)
app.add_typer(data_app, name="data")

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One clear line on stderr and a non-zero exit; never a traceback for a user error."""
    typer.echo(f"gnsweep: {message}", err=True)
    raise typer.Exit(code)

RESULTS_HELP = ("Root of the sweeps' outputs (a sweep goes to DIR/<name>/): a directory, or a pyarrow file-system URI "
                "such as s3://bucket/results (options as ?endpoint_override=host:port&scheme=http).")


@app.command()
def launch(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML)."),
    address: Optional[str] = typer.Option(None, "--address", help="Join this Ray cluster instead of a local one."),
    results: str = typer.Option("results", "--results", help=RESULTS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and start nothing."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, help="Trials at once."),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Start the Ray dashboard (local Ray)."),
    dashboard_host: str = typer.Option("127.0.0.1", "--dashboard-host",
                                       help="Address the dashboard binds to; beyond loopback, Ray's token guards it."),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Where prepared datasets are cached."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the trials' own logs."),
    allow_open_network: bool = typer.Option(False, "--allow-open-network",
                                            help="Let a local launch's dashboard listen beyond loopback with "
                                                 "RAY_AUTH_MODE=disabled (anyone who reaches it can run code here)."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1, help="Dry run: the wall time on this many GPUs."),
    cpus: Optional[int] = typer.Option(None, "--cpus", min=1, help="Dry run: the wall time on this many CPUs."),
    device: Optional[str] = typer.Option(None, "--device", help="Estimate for this device: A100, H100, H200, T4, "
                                         "A10G, CPU, or a device name gnsweep calibrate measured."),
) -> None:
    """Validate a sweep spec, print the plan, and run the trials not completed yet (longest first)."""
    from orchestrator.launch.lock import LockError
    from orchestrator.launch.launcher import LaunchError, LaunchOptions
    from orchestrator.launch.launcher import launch as run_launch
    from orchestrator.launch.network import NetworkError
    from orchestrator.spec.problems import SpecError
    from results.store import DamagedResults
    from trainer.data import DataError

    opts = LaunchOptions(results=results, address=address, dry_run=dry_run, max_concurrent=max_concurrent,
                         dashboard=dashboard, dashboard_host=dashboard_host, data_dir=data_dir, verbose=verbose,
                         allow_open_network=allow_open_network, gpus=gpus, cpus=cpus, device=device)
    try:
        code = run_launch(spec, opts, echo=typer.echo)
    except (SpecError, LaunchError, DataError, DamagedResults, NetworkError, LockError) as e:
        fail(str(e).replace("\n", "\ngnsweep: "))
    raise typer.Exit(code)


@app.command()
def calibrate(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML) whose trial shapes to time."),
    results: str = typer.Option("results", "--results", help=RESULTS_HELP),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Where prepared datasets are cached."),
    steps: int = typer.Option(40, "--steps", min=5, help="Training steps timed per shape (after a warm-up)."),
) -> None:
    """Time each distinct trial shape of SPEC on this machine's device; estimates use the figures from then on."""
    from orchestrator.cost.calibrate import calibrate as run_calibrate
    from orchestrator.spec.problems import SpecError
    from orchestrator.spec.file import load_spec
    from trainer.data import DataError
    from trainer.storage import StorageError

    try:
        where, _ = run_calibrate(load_spec(spec, check_dataset=False), results=results, data_dir=data_dir,
                                 steps=steps, echo=typer.echo)
    except (SpecError, DataError, StorageError, ValueError) as e:
        fail(str(e).replace("\n", "\ngnsweep: "))
    except OSError as e:
        fail(f"--results: cannot write the calibration table: {e.strerror or e}")
    typer.echo(f"calibration: {where} (pd.read_parquet)")


@app.command()
def status(
    name: str = typer.Argument(..., help="Sweep name."),
    results: str = typer.Option("results", "--results", help=RESULTS_HELP),
    watch: bool = typer.Option(False, "--watch", help="Redraw a table in place until the sweep ends: epoch, latest "
                               "and best val error, images/s, time left per trial."),
    interval: float = typer.Option(2.0, "--interval", min=0.05, help="Seconds between redraws (--watch)."),
) -> None:
    """One line per trial: status, epochs done, latest and final error, time left; then the counts and time left."""
    from orchestrator.watch.status import status_lines
    from orchestrator.watch.tally import TallyError
    from results.store import DamagedResults
    from trainer.storage import StorageError, sweep_location

    if watch:
        from orchestrator.watch.live import watch as watch_sweep

        try:
            watch_sweep(sweep_location(results, name), interval=interval)
        except (TallyError, StorageError, DamagedResults) as e:
            fail(str(e))
        return
    try:
        for line in status_lines(sweep_location(results, name)):
            typer.echo(line)
    except (TallyError, StorageError, DamagedResults) as e:
        fail(str(e))


@app.command()
def report(
    name: str = typer.Argument(..., help="Sweep name."),
    results: str = typer.Option("results", "--results", help=RESULTS_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Local directory for the report (default: the sweep's "
                                       "report/ folder; for results at a URI, ./results/NAME/report)."),
) -> None:
    """Write the paper's tables and figures for a sweep to DIR/NAME/report/ (report.md, report.html)."""
    from results.report import ReportError, write_report
    from results.store import DamagedResults
    from trainer.storage import StorageError, sweep_location

    try:
        sweep = sweep_location(results, name)
        path = write_report(sweep, out)
    except (ReportError, StorageError, DamagedResults) as e:
        fail(str(e))
    typer.echo(f"report: {path}")
    typer.echo(f"page: {path.with_name('report.html')}")
    runs = sweep / "tensorboard"
    if runs.is_dir():
        typer.echo(f"tensorboard runs: {runs} (view: tensorboard --logdir {runs})")


@data_app.command("prepare")
def data_prepare(
    source: str = typer.Argument(..., help="A Tiny ImageNet directory or zip, or 'digits'."),
    out: str = typer.Option(..., "--out", help="Directory to write shards and dataset.json into, or an object-store "
                            "URI such as s3://bucket/datasets/tiny-imagenet-200 (options as for --results); the "
                            "shards are prepared locally and uploaded, dataset.json last."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="Train shards (default: by size)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images instead of stopping."),
) -> None:
    """Write a dataset as TFRecord shards of the original JPEG bytes plus dataset.json."""
    from trainer import data

    _exit_on_sigterm()
    try:
        info = data.prepare(source, out, shards=shards, skip_bad=skip_bad)
    except data.DataError as e:
        fail(str(e))
    typer.echo(f"prepared {info.name}: {info.counts['train']} train, {info.counts['val']} val images, "
               f"{info.num_classes} classes -> {out}")


@data_app.command("download")
def data_download(
    out: Path = typer.Option(..., "--out", help="Directory to save tiny-imagenet-200.zip into."),
    url: str = typer.Option(None, "--url", help="Mirror of the official archive."),
    timeout: float = typer.Option(3600, "--timeout", min=1, help="Give up after this many seconds in all."),
) -> None:
    """Download the official Tiny ImageNet-200 archive and check its md5."""
    from trainer import data
    from trainer.data.download import download

    _exit_on_sigterm()
    try:
        path = download(out, deadline_s=timeout, **({"url": url} if url else {}))
    except data.DataError as e:
        fail(str(e))
    typer.echo(f"downloaded {path}")


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (exit 143), so the data commands remove their scratch folders on the way out."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's, absl's and Ray's own log "
                                         "lines too (otherwise in ~/.cache/gnsweep/native-stderr.log).")) -> None:
    """Group Normalization sweeps on Ray Tune."""


def main() -> None:
    # The driver runs TensorFlow only to prepare data; its C++ start-up chatter (oneDNN, CUDA probing) is noise here.
    if "--verbose" not in sys.argv[1:]:
        from orchestrator.launch.quiet import quiet

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        quiet()
    app()


if __name__ == "__main__":
    sys.exit(main())
