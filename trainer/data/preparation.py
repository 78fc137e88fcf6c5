"""Preparing a dataset: a spec's ``dataset`` value checked, resolved to a prepared directory, and prepared on demand
(Tiny ImageNet directory or official zip, or the built-in digits) as TFRecord shards plus ``dataset.json``, into a
local directory or object storage (a URI: prepared locally, then uploaded by ``trainer.data.remote``).

TensorFlow is imported only inside the functions that need it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from trainer.data import remote, scratch
from trainer.data.manifest import INFO_FILE, DataError, DatasetInfo, load_info, verify
from trainer.data.shapes import BUILTIN_DIGITS
from trainer.data.shards import MAX_SHARDS, default_shards, write_shards
from trainer.data.sources import canonical_source, open_source
from trainer.storage import Location, StorageError, is_remote

STAGING = "gnsweep-prepare"  # the scratch folder, in the system's temp dir, where a dataset for a URI is prepared


def check_dataset(spec_dataset: str) -> str | None:
    """A problem with a sweep spec's ``dataset`` value, or None; prepares nothing and never imports TensorFlow."""
    if spec_dataset == BUILTIN_DIGITS:
        return None
    if is_remote(spec_dataset):
        try:
            load_info(spec_dataset)
        except DataError as e:
            return str(e)
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
    """Where a sweep spec's local ``dataset`` is prepared, or would be: a prepared dir is itself; builtin:digits is
    ``data_dir/digits``; a raw Tiny ImageNet dir or zip is ``data_dir/<its name>-shards``. Prepares nothing. (A
    dataset in object storage is prepared where it is; each node copies it, ``trainer.data.cache``.)"""
    if spec_dataset == BUILTIN_DIGITS:
        return Path(data_dir) / "digits"
    path = Path(spec_dataset).expanduser()
    if (path / INFO_FILE).is_file():
        return path
    return Path(data_dir) / f"{path.stem if path.is_file() else path.name}-shards"


def resolve_dataset(spec_dataset: str, data_dir: str | Path) -> Path | Location:
    """The prepared directory for a sweep spec's ``dataset`` (``prepared_dir``): builtin:digits and raw Tiny ImageNet
    dirs or zips are prepared there on demand (once; later calls reuse them). A dataset in object storage is a
    Location, used as it is (each node copies it, ``trainer.data.cache``)."""
    problem = check_dataset(spec_dataset)
    if problem:
        raise DataError(problem)
    if is_remote(spec_dataset):
        return Location.of(spec_dataset)
    path = Path(spec_dataset).expanduser()
    out = prepared_dir(spec_dataset, data_dir)
    if out != path:
        prepare("digits" if spec_dataset == BUILTIN_DIGITS else str(path), out)
    return out


def check_prepared(dataset: Path | Location) -> DatasetInfo:
    """A resolved dataset checked before anything runs: a local one shard by shard (``verify``), one in object
    storage by its dataset.json and a listing of its shards (each node checks their sha256 when it copies them)."""
    info = load_info(dataset)
    if isinstance(dataset, Location):
        remote.check_shards(dataset, info)
    else:
        verify(dataset, info)
    return info


def prepare(source: str, out: str | Path, *, shards: int | None = None, skip_bad: bool = False, seed: int = 0,
            progress: bool = True) -> DatasetInfo:
    """Write ``source`` ("digits", a Tiny ImageNet directory or its zip) as shards plus dataset.json into ``out``, a
    local directory or an object-storage URI.

    Examples go to shards in a permutation seeded by ``seed``. Every image must decode as JPEG; with ``skip_bad``
    bad ones are skipped and counted in ``counts["skipped"]``. The work happens in a scratch directory next to
    ``out`` that is renamed at the end, so an interrupted run leaves nothing (a killed one leaves a scratch folder
    that the next run removes). For a URI the scratch directory is in the system's temp dir and its content is
    uploaded, dataset.json last. If ``out`` already holds a dataset prepared from the same source, its info is
    returned and nothing is written.
    """
    if is_remote(out):
        return _prepare_remote(source, out, shards=shards, skip_bad=skip_bad, seed=seed, progress=progress)
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


def _prepare_remote(source: str, out: str, **options) -> DatasetInfo:
    try:
        where = Location.of(out)
    except StorageError as e:
        raise DataError(f"--out {e}") from None
    done = remote.existing(where, canonical_source(source))
    if done is not None:
        return done
    parent = Path(tempfile.gettempdir())
    scratch.remove_stale(parent, STAGING)
    tmp = scratch.make(parent, STAGING)
    try:
        info = prepare(source, tmp / "dataset", **options)
        remote.upload(tmp / "dataset", where, info)
        return info
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
