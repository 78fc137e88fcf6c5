"""The ``gnsweep`` command line. Exit status: 0 success, 1 sweep finished with failed trials, 2 invalid input.

Heavy imports (TensorFlow, Ray) happen inside the commands, so ``--help`` and spec errors answer at once.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Group Normalization sweeps on Ray Tune.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
data_app = typer.Typer(help="Prepare or download datasets as TFRecord shards.", no_args_is_help=True)
app.add_typer(data_app, name="data")

EXIT_FAILED_TRIALS = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One clear line on stderr and a non-zero exit; never a traceback for a user error."""
    typer.echo(f"gnsweep: {message}", err=True)
    raise typer.Exit(code)


@data_app.command("prepare")
def data_prepare(
    source: str = typer.Argument(..., help="A Tiny ImageNet directory or zip, or 'digits'."),
    out: Path = typer.Option(..., "--out", help="Directory to write shards and dataset.json into."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="Train shards (default: by size)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images instead of stopping."),
) -> None:
    """Write a dataset as TFRecord shards of the original JPEG bytes plus dataset.json."""
    from trainer import data

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
) -> None:
    """Download the official Tiny ImageNet-200 archive and check its md5."""
    from trainer import data

    try:
        path = data.download(out, **({"url": url} if url else {}))
    except data.DataError as e:
        fail(str(e))
    typer.echo(f"downloaded {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
