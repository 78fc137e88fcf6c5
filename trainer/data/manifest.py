"""The manifest of a prepared dataset, ``dataset.json``: what it holds, and the checks that it says the truth.

``load_info`` checks the file on its own (types, counts, finite statistics, shard names) and is cheap enough for
every reader; ``verify`` reads each shard once and checks it against the manifest (size, sha256, examples, labels
against ``num_classes``, a decoded image against ``image_size``) without importing TensorFlow, so a launch refuses
an edited or damaged dataset before Ray starts instead of failing inside a trial.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from trainer.storage import Location, StorageError, is_remote

FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
LABEL_RULE = "label = index of wnid in sorted(wnids)"
SPLITS = ("train", "val")


class DataError(Exception):
    """Bad input data or a bad dataset directory; the message is one line naming the file or field."""


@dataclass
class DatasetInfo:
    """The contents of ``dataset.json``. ``normalize`` holds the per-channel mean and std of the train split's
    decoded RGB pixels (0-255 scale); the input pipeline feeds the model ``(pixel - mean) / std``."""

    name: str
    image_size: tuple[int, int]
    num_classes: int
    classes: list[dict]
    counts: dict
    shards: dict
    label_rule: str
    augment: dict
    normalize: dict
    source: str
    format_version: int = FORMAT_VERSION


_TYPES = {"name": str, "image_size": list, "num_classes": int, "classes": list, "counts": dict, "shards": dict,
          "label_rule": str, "augment": dict, "normalize": dict, "source": str, "format_version": int}


def shard_file(split: str, index: int, total: int) -> str:
    """The name of a split's ``index``-th of ``total`` shards; the manifest must list exactly these, in order."""
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


def load_info(dataset_dir: str | Path | Location) -> DatasetInfo:
    """Read and validate ``dataset_dir/dataset.json`` (a local directory, or a dataset in object storage given as a
    URI or ``Location``); DataError naming the file and field on any problem."""
    return parse_info(*read_info(dataset_dir))


def read_info(dataset_dir: str | Path | Location) -> tuple[bytes, str]:
    """The bytes of ``dataset_dir/dataset.json`` and the file's name for messages; DataError when it cannot be read."""
    if isinstance(dataset_dir, Location) or is_remote(dataset_dir):
        try:
            where = Location.of(dataset_dir) / INFO_FILE
        except StorageError as e:
            raise DataError(str(e)) from None
        shown = where.shown
    else:
        where = Path(dataset_dir) / INFO_FILE
        shown = str(where)
    try:
        return where.read_bytes(), shown
    except FileNotFoundError:
        raise DataError(f"{shown}: missing (not a prepared dataset; run 'gnsweep data prepare')") from None
    except OSError as e:
        raise DataError(f"{shown}: cannot read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def parse_info(blob: bytes, path: str) -> DatasetInfo:
    """Validate the bytes of a dataset.json named ``path`` in messages."""
    try:
        raw = json.loads(blob.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object")
    for key, typ in _TYPES.items():
        if not isinstance(raw.get(key), typ) or isinstance(raw.get(key), bool) != (typ is bool):
            raise DataError(f"{path}: field '{key}' is missing or not a {typ.__name__}")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise DataError(f"{path}: unknown field '{unknown[0]}'")
    if raw["format_version"] != FORMAT_VERSION:
        raise DataError(f"{path}: format_version {raw['format_version']} is not {FORMAT_VERSION}; prepare it again")
    if len(raw["image_size"]) != 2 or not all(_is_int(v) and v > 0 for v in raw["image_size"]):
        raise DataError(f"{path}: field 'image_size' must be [height, width]")
    if raw["num_classes"] < 1 or len(raw["classes"]) != raw["num_classes"] or not all(
            isinstance(c, dict) and isinstance(c.get("wnid"), str) for c in raw["classes"]):
        raise DataError(f"{path}: field 'classes' must list num_classes objects with a 'wnid'")
    _check_shard_lists(path, raw)
    for key in ("mean", "std"):
        v = raw["normalize"].get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)):
            raise DataError(f"{path}: field 'normalize.{key}' must be 3 numbers")
        low = 0 if key == "mean" else 1e-6
        if not all(math.isfinite(x) and low <= x <= 255 for x in v):
            raise DataError(f"{path}: field 'normalize.{key}' must be finite pixel values in [{low:g}, 255]")
    if not _is_int(raw["augment"].get("pad")) or raw["augment"]["pad"] < 0 \
            or not isinstance(raw["augment"].get("flip"), bool):
        raise DataError(f"{path}: field 'augment' needs pad (int >= 0) and flip (bool)")
    raw["image_size"] = tuple(raw["image_size"])
    return DatasetInfo(**raw)


def _check_shard_lists(path: str, raw: dict) -> None:
    if sorted(raw["shards"]) != sorted(SPLITS):
        raise DataError(f"{path}: field 'shards' must hold exactly the lists 'train' and 'val'")
    for split in SPLITS:
        shards = raw["shards"][split]
        if not isinstance(shards, list) or not shards:
            raise DataError(f"{path}: field 'shards.{split}' must be a non-empty list")
        for i, s in enumerate(shards):
            if not (isinstance(s, dict) and isinstance(s.get("file"), str) and _is_int(s.get("examples"))
                    and _is_int(s.get("bytes")) and isinstance(s.get("sha256"), str)):
                raise DataError(f"{path}: field 'shards.{split}' entries need file, examples, bytes, sha256")
            if Path(s["file"]).name != s["file"]:
                raise DataError(f"{path}: shard file '{s['file']}' must be a plain file name")
            if s["file"] != shard_file(split, i, len(shards)):
                raise DataError(f"{path}: field 'shards.{split}' entry {i + 1} is '{s['file']}', expected "
                                f"'{shard_file(split, i, len(shards))}' (the list does not match the shards written)")
            if s["examples"] < 1:
                raise DataError(f"{path}: field 'shards.{split}' entry '{s['file']}' must hold at least one example")
        if raw["counts"].get(split) != sum(s["examples"] for s in shards):
            raise DataError(f"{path}: field 'counts.{split}' does not match the shards' examples")


def verify(dataset_dir: str | Path, info: DatasetInfo) -> None:
    """Check every shard against dataset.json in one read of each (about 1 s per 250 MB, no TensorFlow): present,
    the recorded size and sha256, the recorded number of examples, labels in [0, num_classes) with every class in
    train, and a decoded image of ``image_size``."""
    from trainer.data.tfrecord import scan_shard

    dataset_dir = Path(dataset_dir)
    info_path = dataset_dir / INFO_FILE
    labels: dict[str, set[int]] = {}
    first_image = None
    for split in SPLITS:
        labels[split] = set()
        for s in info.shards[split]:
            path = dataset_dir / s["file"]
            if not path.is_file():
                raise DataError(f"{path}: shard missing")
            if path.stat().st_size != s["bytes"]:
                raise DataError(f"{path}: shard does not match the sha256 in {INFO_FILE} (changed since prepared)")
            scan = scan_shard(path)
            if scan.sha256 != s["sha256"]:
                raise DataError(f"{path}: shard does not match the sha256 in {INFO_FILE} (changed since prepared)")
            if scan.problem:
                raise DataError(f"{path}: not a shard gnsweep wrote ({scan.problem}); prepare the dataset again")
            if scan.examples != s["examples"]:
                raise DataError(f"{info_path}: field 'shards.{split}' says {s['file']} holds {s['examples']} "
                                f"examples; it holds {scan.examples}")
            labels[split] |= scan.labels
            first_image = first_image or scan.first_image
    for split in SPLITS:
        outside = sorted(x for x in labels[split] if not 0 <= x < info.num_classes)
        if outside:
            raise DataError(f"{info_path}: field 'num_classes' is {info.num_classes} but the {split} shards hold "
                            f"label {outside[-1]}")
    if len(labels["train"]) != info.num_classes:
        raise DataError(f"{info_path}: field 'num_classes' is {info.num_classes} but the train shards hold "
                        f"{len(labels['train'])} classes")
    size = _decoded_size(first_image)
    if size != tuple(info.image_size):
        raise DataError(f"{info_path}: field 'image_size' is {list(info.image_size)} but the images are "
                        f"{list(size) if size else 'not decodable'}")


def _decoded_size(blob: bytes | None) -> tuple[int, int] | None:
    """(height, width) of a fully decoded JPEG, None when it does not decode."""
    from PIL import Image, UnidentifiedImageError

    if blob is None:
        return None
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
            return image.height, image.width
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
