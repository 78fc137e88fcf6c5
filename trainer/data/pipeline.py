"""The tf.data input pipeline over a prepared dataset's TFRecord shards.

Shard files (this worker's subset) -> interleave -> batch -> parse and decode JPEGs to 3 channels -> unbatch ->
cache the decoded uint8 images in memory, once per ``InputPipeline`` -> per epoch: full shuffle, batch dropping the
remainder (BN normalizes over exactly ``batch_size``), augment, normalize with the train split's per-channel mean and
std from dataset.json, prefetch.

An epoch's order comes from ``shuffle(seed=...)`` of (seed, epoch) and its augmentation from stateless ops seeded by
(seed, epoch, step), so a resumed trial replays the same randomness. TensorFlow mixes its global seed into the shuffle
seed, so callers that set one must set it the same way on resume (``train_trial`` sets it from seed and epoch).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from trainer.data.manifest import DataError, DatasetInfo, load_info

AUTOTUNE = tf.data.AUTOTUNE
DECODE_BATCH = 256
INTERLEAVE_FILES = 4


class InputPipeline:
    """One worker's train and val datasets; the decoded images are read from the shards once and then cached."""

    def __init__(self, dataset_dir: Path, *, cpus: int | None = None, shard_index: int = 0, num_shards: int = 1):
        if not 0 <= shard_index < num_shards:
            raise ValueError(f"shard_index {shard_index} is not in [0, {num_shards})")
        self.dataset_dir = Path(dataset_dir)
        self.info: DatasetInfo = load_info(self.dataset_dir)
        train_shards = self.info.shards["train"]
        if num_shards > len(train_shards):
            raise DataError(f"{self.dataset_dir}: {num_shards} workers but only {len(train_shards)} train shards; "
                            f"worker {shard_index} would get none")
        self._train_examples = sum(s["examples"] for s in train_shards[shard_index::num_shards])
        self._options = tf.data.Options()
        self._options.deterministic = True
        if cpus:
            self._options.threading.private_threadpool_size = int(cpus)
            self._options.threading.max_intra_op_parallelism = 1
        mean, std = np.array(self.info.normalize["mean"]), np.array(self.info.normalize["std"])
        self._scale = tf.constant(np.broadcast_to(1 / std, (*self.info.image_size, 3)), tf.float32)
        self._offset = tf.constant(np.broadcast_to(-mean / std, (*self.info.image_size, 3)), tf.float32)
        files = tf.data.Dataset.from_tensor_slices([str(self.dataset_dir / s["file"]) for s in train_shards])
        self._train_cache = self._decoded(files.shard(num_shards, shard_index)).cache()
        val_files = [str(self.dataset_dir / s["file"]) for s in self.info.shards["val"]]
        self._val_cache = self._decoded(tf.data.Dataset.from_tensor_slices(val_files)).cache()

    def train_examples(self) -> int:
        """Training images this worker sees per epoch (its shards' examples)."""
        return self._train_examples

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch; the remainder of the shuffled examples is left out."""
        return self._train_examples // batch_size

    def train(self, batch_size: int, *, seed: int, epoch: int, augment: bool) -> tf.data.Dataset:
        """Exactly ``steps_per_epoch(batch_size)`` batches of (float32 NHWC images, int32 labels) of ``batch_size``."""
        if self.steps_per_epoch(batch_size) < 1:
            raise ValueError(f"batch {batch_size} is larger than the {self._train_examples} training images")
        epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
        # One more than the examples: the buffer meets the end of the input before the first batch, so the cache
        # is complete even when the caller stops after steps_per_epoch batches.
        ds = self._train_cache.shuffle(self._train_examples + 1, seed=epoch_seed, reshuffle_each_iteration=False)
        ds = ds.batch(batch_size, drop_remainder=True).enumerate()
        augment = augment and bool(self.info.augment["pad"] or self.info.augment["flip"])
        ds = ds.map(lambda step, batch: self._finish(batch, step, epoch_seed, augment), num_parallel_calls=AUTOTUNE)
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch(batch_size)))
        return ds.prefetch(AUTOTUNE).with_options(self._options)

    def val(self, batch_size: int = 256) -> tf.data.Dataset:
        """The whole val split in its stored order, unaugmented; the last batch may be smaller."""
        ds = self._val_cache.batch(batch_size).map(lambda x, y: (self._normalize(x), y), num_parallel_calls=AUTOTUNE)
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-self.info.counts["val"] // batch_size)))
        return ds.prefetch(AUTOTUNE).with_options(self._options)

    def _decoded(self, files: tf.data.Dataset) -> tf.data.Dataset:
        ds = files.interleave(tf.data.TFRecordDataset, cycle_length=INTERLEAVE_FILES, num_parallel_calls=AUTOTUNE,
                              deterministic=True)
        size = tuple(self.info.image_size)
        return ds.batch(DECODE_BATCH).map(lambda r: _parse_and_decode(r, size), num_parallel_calls=AUTOTUNE).unbatch()

    def _finish(self, batch, step: tf.Tensor, epoch_seed: int, augment: bool) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = batch
        if augment:
            seed = tf.stack([tf.constant(epoch_seed, tf.int64), step])
            images = _augment(images, seed, self.info.augment["pad"], self.info.augment["flip"])
        return self._normalize(images), labels

    def _normalize(self, images: tf.Tensor) -> tf.Tensor:
        """(pixel - mean) / std per channel, with (H, W, 3) constants: 3x faster than broadcasting over channels."""
        return tf.cast(images, tf.float32) * self._scale + self._offset


def _parse_and_decode(records: tf.Tensor, image_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    features = tf.io.parse_example(records, {"image": tf.io.FixedLenFeature([], tf.string),
                                             "label": tf.io.FixedLenFeature([], tf.int64)})
    images = tf.map_fn(lambda b: tf.io.decode_jpeg(b, channels=3), features["image"],
                       fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8), parallel_iterations=16)
    return tf.ensure_shape(images, [None, *image_size, 3]), tf.cast(features["label"], tf.int32)


def _augment(images: tf.Tensor, seed: tf.Tensor, pad: int, flip: bool) -> tf.Tensor:
    """Per-image random crop of the zero-padded image and, if ``flip``, random horizontal flip, as two gathers."""
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    u = tf.random.stateless_uniform([3, n], seed=seed)
    dy = tf.cast(u[0] * (2 * pad + 1), tf.int32)[:, None]
    dx = tf.cast(u[1] * (2 * pad + 1), tf.int32)[:, None]
    cols = tf.range(w)[None, :]
    if flip:
        cols = tf.where((u[2] < 0.5)[:, None], w - 1 - cols, cols)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = tf.gather(padded, dy + tf.range(h)[None, :], axis=1, batch_dims=1)
    return tf.gather(rows, dx + cols, axis=2, batch_dims=1)
