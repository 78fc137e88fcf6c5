"""Where a dataset's images come from: a Tiny ImageNet folder or its official zip, or scikit-learn's digits.

Each source becomes a ``Source``: its classes (labels by ``LABEL_RULE``), its train and val entries and a reader
of one entry's bytes. Every path the dataset's own files name (wnids, annotation lines) must stay inside its folder.
"""
from __future__ import annotations

import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from trainer.data.manifest import DataError
from trainer.data.shapes import BUILTIN_DIGITS, DIGITS_SIZE
from trainer.data.trees import MiB, DirTree, Unreadable, ZipTree, inside

DIGITS_SOURCE = "sklearn.datasets.load_digits"
MAX_IMAGE_BYTES = 1 * MiB  # a Tiny ImageNet JPEG is about 2.5 KB
MAX_TEXT_BYTES = 16 * MiB  # words.txt, the largest, is 2.6 MB
_DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


class Entry(NamedTuple):
    name: str
    label: int
    key: str


@dataclass
class Source:
    name: str
    source: str
    classes: list[dict]
    train: list[Entry]
    val: list[Entry]
    read: Callable[[str], bytes]  # raises trees.Unreadable
    show: Callable[[str], str]
    flip: bool
    problem: Callable[[str], str | None] = lambda key: None  # what a file's size or header shows, before reading it


def canonical_source(source: str) -> str:
    """The identity recorded in dataset.json: DIGITS_SOURCE or the source's resolved path."""
    if source in ("digits", BUILTIN_DIGITS):
        return DIGITS_SOURCE
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or directory (give a Tiny ImageNet directory or zip, or 'digits')")
    return str(path.resolve())


def open_source(source: str, canonical: str, stack: ExitStack) -> Source:
    if canonical == DIGITS_SOURCE:
        return digits_source()
    path = Path(canonical)
    if path.is_dir():
        return tiny_source(DirTree(path), path.name, canonical)
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as e:
        raise DataError(f"{source}: not a readable zip archive ({e})") from None
    return tiny_source(ZipTree(zf, path), path.stem, canonical)


def tiny_source(tree: DirTree | ZipTree, name: str, canonical: str) -> Source:
    for rel in ("wnids.txt", "words.txt", "val/val_annotations.txt"):
        if not tree.is_file(rel):
            raise DataError(f"{tree.show(rel)}: missing (not a complete tiny-imagenet-200 tree)")
    wnids = []
    for i, line in enumerate(_text(tree, "wnids.txt").splitlines(), 1):
        w = line.strip()
        if w and (w in (".", "..") or "/" in w or "\0" in w):
            raise DataError(f"{tree.show('wnids.txt')} line {i}: '{w}' is not a plain folder name (it would point "
                            f"outside the dataset folder)")
        if w:
            wnids.append(w)
    if not wnids:
        raise DataError(f"{tree.show('wnids.txt')}: lists no classes")
    if len(set(wnids)) != len(wnids):
        raise DataError(f"{tree.show('wnids.txt')}: lists a wnid twice")
    wnids = sorted(wnids)
    label = {w: i for i, w in enumerate(wnids)}
    words = {}
    for line in _text(tree, "words.txt").splitlines():
        wnid, _, text = line.partition("\t")
        if wnid in label:
            words[wnid] = text.strip()
    classes = [{"wnid": w, "words": words.get(w, "")} for w in wnids]

    train, empty = [], []
    for w in wnids:
        files = tree.files(f"train/{w}/images")
        if not files:
            empty.append(tree.show(f"train/{w}/images"))
        train += [Entry(f.rpartition("/")[2], label[w], f) for f in files]
    if empty:
        raise DataError(f"no training images for {len(empty)} classes: {some(empty)}")

    ann = "val/val_annotations.txt"
    val, missing = [], []
    for i, line in enumerate(_text(tree, ann).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 2:
            raise DataError(f"{tree.show(ann)} line {i}: expected '<file>\\t<wnid>...'")
        file, wnid = fields[0], fields[1]
        if wnid not in label:
            raise DataError(f"{tree.show(ann)} line {i}: wnid {wnid} is not in wnids.txt")
        rel = inside(f"val/images/{file}")
        if rel is None:
            raise DataError(f"{tree.show(ann)} line {i}: '{file}' points outside the dataset folder")
        if not tree.is_file(rel):
            missing.append(tree.show(rel))
        val.append(Entry(file, label[wnid], rel))
    if missing:
        raise DataError(f"{len(missing)} validation images listed in {ann} are missing: {some(missing)}")
    if not val:
        raise DataError(f"{tree.show(ann)}: lists no images")
    val.sort(key=lambda e: e.name)
    return Source(name=name, source=canonical, classes=classes, train=train, val=val,
                  read=lambda rel: tree.read(rel, MAX_IMAGE_BYTES), show=tree.show, flip=True,
                  problem=lambda rel: tree.problem(rel, MAX_IMAGE_BYTES))


def digits_source() -> Source:
    """scikit-learn's 1,797 real 8x8 digits, upscaled to ``DIGITS_SIZE`` and encoded as 1-channel JPEGs, split 80/20."""
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = (digits.images.astype("float32") * (255.0 / 16.0))[..., None]
    big = tf.clip_by_value(tf.round(tf.image.resize(pixels, (DIGITS_SIZE, DIGITS_SIZE), method="bilinear")), 0, 255)
    big = tf.cast(big, tf.uint8)
    blobs = {f"digit_{i:04d}.jpg": tf.io.encode_jpeg(big[i], quality=95).numpy() for i in range(len(big))}
    entries = [Entry(f"digit_{i:04d}.jpg", int(y), f"digit_{i:04d}.jpg") for i, y in enumerate(digits.target)]
    train, val = train_test_split(entries, test_size=0.2, random_state=0, stratify=digits.target)
    classes = [{"wnid": f"digit{d}", "words": _DIGIT_WORDS[d]} for d in range(10)]
    return Source(name="digits", source=DIGITS_SOURCE, classes=classes, train=sorted(train), val=sorted(val),
                  read=blobs.__getitem__, show=lambda k: f"digits:{k}", flip=False)


def _text(tree: DirTree | ZipTree, rel: str) -> str:
    try:
        return tree.read(rel, MAX_TEXT_BYTES).decode("utf-8", errors="replace")
    except Unreadable as e:
        raise DataError(f"{tree.show(rel)}: cannot read ({e})") from None


def some(items: list[str], limit: int = 5) -> str:
    """The first few of ``items`` and how many more, for a one-line message."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
