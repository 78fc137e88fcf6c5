"""Writing a source as TFRecord shards: a seeded permutation of its examples, checked JPEGs only, and the train
split's pixel statistics, giving the ``DatasetInfo`` that ``dataset.json`` records."""
from __future__ import annotations

from pathlib import Path

from trainer.data.manifest import LABEL_RULE, DataError, DatasetInfo, shard_file
from trainer.data.progress import Progress
from trainer.data.sources import Entry, Source, some
from trainer.storage import file_digest
from trainer.data.tfrecord import example
from trainer.data.trees import Unreadable

MAX_SHARDS = {"train": 16, "val": 4}
MIN_SHARD_EXAMPLES = 250
_JPEG_MAGIC = b"\xff\xd8\xff"


def default_shards(examples: int, cap: int) -> int:
    """The largest power of two up to ``cap`` that leaves at least MIN_SHARD_EXAMPLES per shard (at least 1)."""
    n = 1
    while n * 2 <= cap and examples // (n * 2) >= MIN_SHARD_EXAMPLES:
        n *= 2
    return n


def write_shards(src: Source, tmp: Path, num_shards: dict, *, skip_bad: bool, seed: int,
                 progress: bool) -> DatasetInfo:
    """Write ``src``'s splits into ``tmp``; DataError (one line) for bad images unless ``skip_bad``. Images whose
    size or zip header shows they cannot be read are refused before any image is decoded (or TensorFlow imported);
    the others only once every image was decoded."""
    import numpy as np

    if not skip_bad:
        early = [f"{src.show(e.key)} (unreadable: {why})" for e in src.train + src.val if (why := src.problem(e.key))]
        if early:
            raise _unreadable(early)

    rng = np.random.default_rng(seed)
    stats = PixelStats()
    bad: list[str] = []
    labels: set[int] = set()
    shards: dict[str, list[dict]] = {}
    for split in ("train", "val"):
        entries = getattr(src, split)
        order = rng.permutation(len(entries))
        shards[split] = []
        with Progress(split, len(entries), progress) as bar:
            for i, chunk in enumerate(np.array_split(order, num_shards[split])):
                file = shard_file(split, i, num_shards[split])
                written = write_shard(tmp / file, [entries[j] for j in chunk], src,
                                      stats if split == "train" else None, bad, bar,
                                      labels if split == "train" else set())
                shards[split].append({"file": file, "examples": written, "bytes": (tmp / file).stat().st_size,
                                      "sha256": file_digest(tmp / file, "sha256")})
    if bad and not skip_bad:
        raise _unreadable(bad)
    for split in ("train", "val"):
        empty = [s["file"] for s in shards[split] if s["examples"] == 0]
        if empty:
            raise DataError(f"shard {empty[0]} would be empty after skipping bad images; use fewer shards")
    lost = [c["wnid"] for i, c in enumerate(src.classes) if i not in labels]
    if lost:
        raise DataError(f"no readable training images left for {len(lost)} classes: {some(lost)}")
    counts = {split: sum(s["examples"] for s in shards[split]) for split in shards}
    if bad:
        counts["skipped"] = len(bad)
    h, w = stats.size
    return DatasetInfo(name=src.name, image_size=(h, w), num_classes=len(src.classes), classes=src.classes,
                       counts=counts, shards=shards, label_rule=LABEL_RULE,
                       augment={"pad": h // 8, "flip": src.flip}, normalize=stats.normalize(), source=src.source)


def _unreadable(bad: list[str]) -> DataError:
    return DataError(f"{len(bad)} unreadable images: {some(bad)} (use --skip-bad to leave them out)")


def write_shard(path: Path, entries: list[Entry], src: Source, stats: PixelStats | None, bad: list[str],
                bar: Progress, labels: set[int]) -> int:
    """Write one shard of checked JPEGs; bad images go to ``bad`` as "<file> (<why>)". Returns examples written."""
    import tensorflow as tf

    written = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for e in entries:
            bar.advance()
            try:
                blob = src.read(e.key)
            except Unreadable as err:
                bad.append(f"{src.show(e.key)} (unreadable: {err})")
                continue
            problem = _jpeg_problem(blob, stats)
            if problem:
                bad.append(f"{src.show(e.key)} ({problem})")
                continue
            writer.write(example(blob, e.label, e.name))
            labels.add(e.label)
            written += 1
    return written


def _jpeg_problem(blob: bytes, stats: PixelStats | None) -> str | None:
    import tensorflow as tf

    if not blob.startswith(_JPEG_MAGIC):
        return "not a JPEG"
    try:
        image = tf.io.decode_jpeg(blob, channels=3).numpy()
    except tf.errors.OpError:
        return "corrupt or truncated JPEG"
    if stats is not None:
        return stats.add(image)
    return None


class PixelStats:
    """Per-channel pixel sums over the train split; the first image fixes the size every other must have."""

    def __init__(self):
        self.size: tuple[int, int] | None = None
        self.n = 0
        self.sum = [0, 0, 0]
        self.sq = [0, 0, 0]

    def add(self, image) -> str | None:
        h, w = image.shape[:2]
        if self.size is None:
            self.size = (h, w)
        elif (h, w) != self.size:
            return f"{h}x{w} pixels, expected {self.size[0]}x{self.size[1]}"
        flat = image.reshape(-1, 3).astype("int64")
        s, q = flat.sum(0), (flat * flat).sum(0)
        self.sum = [a + int(b) for a, b in zip(self.sum, s)]
        self.sq = [a + int(b) for a, b in zip(self.sq, q)]
        self.n += h * w
        return None

    def normalize(self) -> dict:
        if self.size is None:
            raise DataError("no readable training images")
        mean = [s / self.n for s in self.sum]
        std = [max((q / self.n - m * m) ** 0.5, 1.0) for q, m in zip(self.sq, mean)]
        return {"mean": [round(m, 4) for m in mean], "std": [round(s, 4) for s in std]}

