"""Preparing a dataset: a spec's ``dataset`` value checked, resolved to a prepared directory, and prepared on demand
(Tiny ImageNet directory or official zip, or the built-in digits) as TFRecord shards plus ``dataset.json``.

TensorFlow is imported only inside the functions that need it.
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from trainer.data import scratch
from trainer.data.manifest import INFO_FILE, DataError, DatasetInfo, load_info
from trainer.data.shapes import BUILTIN_DIGITS
from trainer.data.shards import MAX_SHARDS, default_shards, write_shards
from trainer.data.sources import canonical_source, open_source


def check_dataset(spec_dataset: str) -> str | None:
    """A problem with a sweep spec's ``dataset`` value, or None; prepares nothing and never imports TensorFlow."""
    if spec_dataset == BUILTIN_DIGITS:
        return None
    path = Path(spec_dataset).expanduser()
    if not path.exists():
        return f"{spec_dataset} does not exist (give a prepared dataset, a Tiny ImageNet directory or zip, " \
               f"or builtin:digits)"
    if path.is_dir():
        if (path / INFO_FILE).is_file():
            try:
                load_info(path)
            except DataError as e:
                return str(e)
            return None
        if (path / "wnids.txt").is_file() and (path / "train").is_dir():
            return None
        return f"{spec_dataset} is neither a prepared dataset ({INFO_FILE}) nor a Tiny ImageNet directory " \
               f"(wnids.txt, train/)"
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        return None
    return f"{spec_dataset} is not a directory or a .zip archive"


def prepared_dir(spec_dataset: str, data_dir: str | Path) -> Path:
    """Where a sweep spec's ``dataset`` is prepared, or would be: a prepared dir is itself; builtin:digits is
    ``data_dir/digits``; a raw Tiny ImageNet dir or zip is ``data_dir/<its name>-shards``. Prepares nothing."""
    if spec_dataset == BUILTIN_DIGITS:
        return Path(data_dir) / "digits"
    path = Path(spec_dataset).expanduser()
    if (path / INFO_FILE).is_file():
        return path
    return Path(data_dir) / f"{path.stem if path.is_file() else path.name}-shards"


def resolve_dataset(spec_dataset: str, data_dir: str | Path) -> Path:
    """The prepared directory for a sweep spec's ``dataset`` (``prepared_dir``): builtin:digits and raw Tiny ImageNet
    dirs or zips are prepared there on demand (once; later calls reuse them)."""
    problem = check_dataset(spec_dataset)
    if problem:
        raise DataError(problem)
    path = Path(spec_dataset).expanduser()
    out = prepared_dir(spec_dataset, data_dir)
    if out != path:
        prepare("digits" if spec_dataset == BUILTIN_DIGITS else str(path), out)
    return out


def prepare(source: str, out: str | Path, *, shards: int | None = None, skip_bad: bool = False, seed: int = 0,
            progress: bool = True) -> DatasetInfo:
    """Write ``source`` ("digits", a Tiny ImageNet directory or its zip) as shards plus dataset.json into ``out``.

    Examples go to shards in a permutation seeded by ``seed``. Every image must decode as JPEG; with ``skip_bad``
    bad ones are skipped and counted in ``counts["skipped"]``. The work happens in a scratch directory next to
    ``out`` that is renamed at the end, so an interrupted run leaves nothing (a killed one leaves a scratch folder
    that the next run removes). If ``out`` already holds a dataset prepared from the same source, its info is
    returned and nothing is written.
    """
    out = Path(out)
    canonical = canonical_source(source)
    existing = _existing(out, canonical)
    if existing is not None:
        return existing
    with ExitStack() as stack:
        src = open_source(source, canonical, stack)
        num_shards = {"train": shards or default_shards(len(src.train), MAX_SHARDS["train"]),
                      "val": min(default_shards(len(src.val), MAX_SHARDS["val"]), shards or MAX_SHARDS["val"])}
        for split, n in num_shards.items():
            if n > len(getattr(src, split)):
                raise DataError(f"--shards {n} is more than the {len(getattr(src, split))} {split} images")
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch.remove_stale(out.parent, out.name)
        tmp = scratch.make(out.parent, out.name)
        try:
            info = write_shards(src, tmp, num_shards, skip_bad=skip_bad, seed=seed, progress=progress)
            (tmp / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
            return _publish(tmp, out, canonical, info)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _existing(out: Path, canonical: str) -> DatasetInfo | None:
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    if not any(out.iterdir()):
        return None
    if (out / INFO_FILE).is_file():
        info = load_info(out)
        if info.source == canonical:
            return info
        raise DataError(f"{out}: already holds a dataset prepared from {info.source}; choose another --out")
    raise DataError(f"{out}: exists and is not empty; choose another --out")


def _publish(tmp: Path, out: Path, canonical: str, info: DatasetInfo) -> DatasetInfo:
    existing = _existing(out, canonical)
    if existing is not None:
        return existing
    if out.exists():
        out.rmdir()
    scratch.release(tmp)
    os.rename(tmp, out)
    return info
