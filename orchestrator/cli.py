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

# Click's own help layout (rich_markup_mode=None): at 80 columns Rich's panels cut option names and URLs with an
# ellipsis; every option has a metavar that says what it takes.
app = typer.Typer(help="Group Normalization sweeps on Ray Tune.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
data_app = typer.Typer(help="Prepare or download datasets as TFRecord shards.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(data_app, name="data")

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One clear line on stderr and a non-zero exit; never a traceback for a user error."""
    typer.echo(f"gnsweep: {message}", err=True)
    raise typer.Exit(code)


def check_folders(*options: tuple) -> None:
    """Refuse a folder option that cannot be one before any work starts: each ``(value, option, write, uri)`` goes
    through ``trainer.storage.check_folder`` (None: not given)."""
    from trainer.storage import StorageError, check_folder

    for value, option, write, uri in options:
        if value is not None:
            try:
                check_folder(value, option, write=write, uri=uri)
            except StorageError as e:
                fail(str(e))


RESULTS_HELP = ("Root of the sweeps' outputs (a sweep goes to DIR/NAME/): a directory, or a pyarrow file-system URI "
                "such as s3://bucket/results (options as ?endpoint_override=host:port&scheme=http).")


@app.command(short_help="Validate a spec and run its trials (or --dry-run).")
def launch(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec (YAML)."),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT",
                                          help="Join this Ray cluster instead of a local one (auto too; "
                                               "ray://HOST:PORT with --dry-run)."),
    results: str = typer.Option("results", "--results", metavar="DIR|URI", help=RESULTS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and start nothing."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, metavar="N", help="Trials at once."),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Start the Ray dashboard (local Ray)."),
    dashboard_host: str = typer.Option("127.0.0.1", "--dashboard-host", metavar="HOST",
                                       help="Address the dashboard binds to; beyond loopback, Ray's token guards it."),
    data_dir: str = typer.Option("data", "--data-dir", metavar="DIR",
                                 help="Where prepared datasets are cached (a local folder)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the trials' own logs."),
    allow_open_network: bool = typer.Option(False, "--allow-open-network",
                                            help="Let a local launch's dashboard listen beyond loopback with "
                                                 "RAY_AUTH_MODE=disabled (anyone who reaches it can run code here)."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1, metavar="N",
                                       help="Dry run: the wall time on this many GPUs."),
    cpus: Optional[int] = typer.Option(None, "--cpus", min=1, metavar="N",
                                       help="Dry run: the wall time on this many CPUs."),
    device: Optional[str] = typer.Option(None, "--device", metavar="NAME",
                                         help="Estimate for this device: A100, H100, H200, T4, A10G, CPU, or a device "
                                              "gnsweep calibrate measured."),
) -> None:
    """Validate a sweep spec, print the plan, and run the trials not completed yet (longest first)."""
    from orchestrator.launch.lock import LockError
    from orchestrator.launch.launcher import LaunchError, LaunchOptions
    from orchestrator.launch.launcher import launch as run_launch
    from orchestrator.launch.network import NetworkError
    from orchestrator.spec.problems import SpecError
    from results.damage import DamagedResults
    from orchestrator.launch.address import AddressError
    from trainer.data import DataError

    check_folders((results, "--results", not dry_run, True), (data_dir, "--data-dir", False, False))
    opts = LaunchOptions(results=results, address=address, dry_run=dry_run, max_concurrent=max_concurrent,
                         dashboard=dashboard, dashboard_host=dashboard_host, data_dir=Path(data_dir), verbose=verbose,
                         allow_open_network=allow_open_network, gpus=gpus, cpus=cpus, device=device)
    try:
        code = run_launch(spec, opts, echo=typer.echo)
    except (SpecError, LaunchError, DataError, DamagedResults, NetworkError, LockError, AddressError) as e:
        fail(str(e).replace("\n", "\ngnsweep: "))
    raise typer.Exit(code)


@app.command(short_help="Time each trial shape of a spec on this machine.")
def calibrate(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec (YAML) whose trial shapes to time."),
    results: str = typer.Option("results", "--results", metavar="DIR|URI", help=RESULTS_HELP),
    data_dir: str = typer.Option("data", "--data-dir", metavar="DIR",
                                 help="Where prepared datasets are cached (a local folder)."),
    steps: int = typer.Option(40, "--steps", min=5, metavar="N",
                              help="Training steps timed per shape (after a warm-up)."),
) -> None:
    """Time each distinct trial shape of SPEC on this machine's device; estimates use the figures from then on."""
    from orchestrator.cost.calibrate import calibrate as run_calibrate
    from orchestrator.spec.problems import SpecError
    from orchestrator.spec.file import load_spec
    from trainer.data import DataError
    from trainer.storage import StorageError

    check_folders((results, "--results", True, True), (data_dir, "--data-dir", False, False))
    try:
        where, _ = run_calibrate(load_spec(spec, check_dataset=False), results=results, data_dir=Path(data_dir),
                                 steps=steps, echo=typer.echo)
    except (SpecError, DataError, StorageError, ValueError) as e:
        fail(str(e).replace("\n", "\ngnsweep: "))
    except OSError as e:
        fail(f"--results: cannot write the calibration table: {e.strerror or e}")
    typer.echo(f"calibration: {where} (pd.read_parquet)")


@app.command(short_help="One line per trial of a sweep (--watch: live).")
def status(
    name: str = typer.Argument(..., metavar="NAME", help="Sweep name."),
    results: str = typer.Option("results", "--results", metavar="DIR|URI", help=RESULTS_HELP),
    watch: bool = typer.Option(False, "--watch", help="Redraw a table in place until the sweep ends: epoch, latest "
                               "and best val error, images/s, time left per trial. Ends with status 1 when no launch "
                               "runs the sweep any more while trials are left."),
    interval: float = typer.Option(2.0, "--interval", min=0.05, metavar="SECONDS",
                                   help="Seconds between redraws (--watch)."),
) -> None:
    """One line per trial: status, epochs done, latest and final error, time left; then the counts and time left."""
    from orchestrator.watch.status import status_lines
    from orchestrator.watch.tally import TallyError
    from results.damage import DamagedResults
    from trainer.storage import StorageError, sweep_location

    check_folders((results, "--results", False, True))
    if watch:
        from orchestrator.watch.live import watch as watch_sweep

        try:
            gone = watch_sweep(sweep_location(results, name), interval=interval)
        except (TallyError, StorageError, DamagedResults) as e:
            fail(str(e))
        if gone:
            fail(gone, code=1)
        return
    try:
        for line in status_lines(sweep_location(results, name)):
            typer.echo(line)
    except (TallyError, StorageError, DamagedResults) as e:
        fail(str(e))


@app.command(short_help="Write a sweep's report: tables and figures.")
def report(
    name: str = typer.Argument(..., metavar="NAME", help="Sweep name."),
    results: str = typer.Option("results", "--results", metavar="DIR|URI", help=RESULTS_HELP),
    out: Optional[str] = typer.Option(None, "--out", metavar="DIR",
                                      help="Local directory for the report (default: the sweep's report/ folder; for "
                                           "results at a URI, ./results/NAME/report)."),
) -> None:
    """Write the paper's tables and figures for a sweep to DIR/NAME/report/ (report.md, report.html)."""
    from results.report import ReportError, write_report
    from results.damage import DamagedResults
    from trainer.storage import StorageError, sweep_location

    check_folders((results, "--results", False, True), (out, "--out", True, False))
    try:
        sweep = sweep_location(results, name)
        path = write_report(sweep, Path(out) if out is not None else None)
    except (ReportError, StorageError, DamagedResults) as e:
        fail(str(e))
    typer.echo(f"report: {path}")
    typer.echo(f"page: {path.with_name('report.html')}")
    runs = sweep / "tensorboard"
    if runs.is_dir():
        typer.echo(f"tensorboard runs: {runs} (view: tensorboard --logdir {runs})")


@data_app.command("prepare")
def data_prepare(
    source: str = typer.Argument(..., metavar="SOURCE", help="A Tiny ImageNet directory or zip, or 'digits'."),
    out: str = typer.Option(..., "--out", metavar="DIR|URI",
                            help="Directory to write shards and dataset.json into, or an object-store URI such as "
                                 "s3://bucket/datasets/tiny-imagenet-200 (options as for --results); the shards are "
                                 "prepared locally and uploaded, dataset.json last."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, metavar="N",
                                         help="Train shards (default: by size)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images instead of stopping."),
) -> None:
    """Write a dataset as TFRecord shards of the original JPEG bytes plus dataset.json."""
    from trainer import data

    check_folders((out, "--out", True, True))
    _exit_on_sigterm()
    try:
        info = data.prepare(source, out, shards=shards, skip_bad=skip_bad)
    except data.DataError as e:
        fail(str(e))
    typer.echo(f"prepared {info.name}: {info.counts['train']} train, {info.counts['val']} val images, "
               f"{info.num_classes} classes -> {out}")


@data_app.command("download")
def data_download(
    out: str = typer.Option(..., "--out", metavar="DIR", help="Directory to save tiny-imagenet-200.zip into."),
    url: str = typer.Option(None, "--url", metavar="URL", help="Mirror of the official archive."),
    timeout: float = typer.Option(3600, "--timeout", min=1, metavar="SECONDS",
                                  help="Give up after this many seconds in all."),
) -> None:
    """Download the official Tiny ImageNet-200 archive and check its md5."""
    from trainer import data
    from trainer.data.download import download

    check_folders((out, "--out", True, False))
    _exit_on_sigterm()
    try:
        path = download(Path(out), deadline_s=timeout, **({"url": url} if url else {}))
    except data.DataError as e:
        fail(str(e))
    typer.echo(f"downloaded {path}")


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (exit 143), so the data commands remove their scratch folders on the way out."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's, absl's and Ray's own log "
                                         "lines too (otherwise in ~/.cache/gnsweep/native-stderr-PID.log).")) -> None:
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
