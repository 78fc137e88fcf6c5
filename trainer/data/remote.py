"""A prepared dataset in object storage (``s3://``, ``gs://``, ... through ``trainer.storage.Location``): checking that
the shards its dataset.json lists are there, and publishing a locally prepared dataset to it.

An upload writes the shards first and dataset.json last, so a killed upload leaves shards without a manifest: not a
dataset for anyone (every reader starts from dataset.json), and replaced by the next upload to the same place.
"""
from __future__ import annotations

import re
from pathlib import Path

from trainer.data.manifest import INFO_FILE, SPLITS, DataError, DatasetInfo, load_info
from trainer.storage import Location

SHARD_NAME = re.compile(r"^(?:train|val)-\d{5}-of-\d{5}\.tfrecord$")
CHUNK = 8 << 20


def shard_sizes(where: Location) -> dict[str, int]:
    """Name -> size of the files directly under ``where`` (one listing)."""
    import pyarrow.fs as pafs

    infos = where.fs.get_file_info(pafs.FileSelector(where.path, allow_not_found=True))
    return {i.base_name: i.size for i in infos if i.type == pafs.FileType.File}


def check_shards(where: Location, info: DatasetInfo) -> None:
    """Every shard that ``info`` lists is in ``where`` with its recorded size (their sha256 is checked where a node
    copies them, ``trainer.data.cache``); one listing, no shard read. DataError naming the first missing shard."""
    try:
        sizes = shard_sizes(where)
    except OSError as e:
        raise DataError(f"{where.shown}: cannot list the shards ({_first_line(e)})") from None
    for split in SPLITS:
        for s in info.shards[split]:
            if s["file"] not in sizes:
                raise DataError(f"{(where / s['file']).shown}: shard missing (listed in {INFO_FILE})")
            if sizes[s["file"]] != s["bytes"]:
                raise DataError(f"{(where / s['file']).shown}: {sizes[s['file']]} bytes, {INFO_FILE} says {s['bytes']} "
                                f"(changed since prepared; prepare it again)")


def existing(where: Location, canonical: str) -> DatasetInfo | None:
    """The dataset already at ``where`` if it was prepared from ``canonical`` (nothing to do), None if ``where`` holds
    nothing but leftovers of a killed upload; DataError if it holds anything else, or its bucket is not there (said
    before anything is prepared, not after)."""
    import pyarrow.fs as pafs

    bucket = where.path.split("/", 1)[0]
    try:
        if where.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise DataError(f"--out {where.shown}: no bucket {bucket} (or these credentials cannot see it)")
        if (where / INFO_FILE).exists():
            info = load_info(where)
            if info.source == canonical:
                return info
            raise DataError(f"{where.shown}: already holds a dataset prepared from {info.source}; choose another --out")
        names = shard_sizes(where)
        folders = where.folders()
    except OSError as e:
        raise DataError(f"--out {where.shown}: cannot read ({_first_line(e)})") from None
    others = sorted(n for n in names if not SHARD_NAME.match(n)) + [f.name + "/" for f in folders]
    if others:
        raise DataError(f"{where.shown}: exists and holds other files ({others[0]}); choose another --out")
    return None


def upload(local_dir: Path, where: Location, info: DatasetInfo) -> None:
    """Publish the prepared dataset in ``local_dir`` to ``where``: leftover shards of a killed upload removed, each
    shard uploaded and its size checked, then dataset.json, last."""
    listed = {s["file"] for split in SPLITS for s in info.shards[split]}
    try:
        for name in shard_sizes(where):
            if SHARD_NAME.match(name) and name not in listed:
                where.fs.delete_file((where / name).path)
        for name in sorted(listed):
            with open(local_dir / name, "rb") as src, where.fs.open_output_stream((where / name).path) as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
        check_shards(where, info)
        (where / INFO_FILE).write_bytes((local_dir / INFO_FILE).read_bytes())
    except OSError as e:
        raise DataError(f"--out {where.shown}: cannot write ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
