import shutil
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from trainer.data import DataError, load_info
from trainer.data.pipeline import InputPipeline, _augment


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_train_gives_exactly_steps_full_batches(digits_dataset):
    p = InputPipeline(digits_dataset, cpus=1)
    assert p.train_examples() == 1437 and p.steps_per_epoch(64) == 22
    ds = p.train(64, seed=0, epoch=0, augment=True)
    assert ds.element_spec[0].shape == (64, 16, 16, 3) and ds.element_spec[1].shape == (64,)
    assert ds.options().threading.private_threadpool_size == 1 and ds.cardinality() == 22
    got = batches(ds)
    assert len(got) == 22
    assert all(x.shape == (64, 16, 16, 3) and x.dtype == np.float32 and y.dtype == np.int32 for x, y in got)
    assert set(np.concatenate([y for _, y in got])) == set(range(10))
    with pytest.raises(ValueError, match="larger than the 1437"):
        p.train(2000, seed=0, epoch=0, augment=False)


def test_normalized_with_the_train_statistics(digits_dataset):
    x = np.concatenate([x for x, _ in batches(InputPipeline(digits_dataset).train(256, seed=0, epoch=0,
                                                                                   augment=False))])
    assert abs(x.mean()) < 0.05 and 0.95 < x.std() < 1.05


def test_randomness_depends_only_on_seed_and_epoch(digits_dataset):
    p = InputPipeline(digits_dataset)
    a = batches(p.train(32, seed=1, epoch=3, augment=True))
    b = batches(InputPipeline(digits_dataset).train(32, seed=1, epoch=3, augment=True))
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    next_epoch = batches(p.train(32, seed=1, epoch=4, augment=True))
    other_seed = batches(p.train(32, seed=2, epoch=3, augment=True))
    assert not np.array_equal(a[0][1], next_epoch[0][1]) and not np.array_equal(a[0][1], other_seed[0][1])


def test_augmentation_changes_images_not_order_or_shape(digits_dataset):
    p = InputPipeline(digits_dataset)
    plain = batches(p.train(32, seed=0, epoch=0, augment=False))
    aug = batches(p.train(32, seed=0, epoch=0, augment=True))
    assert len(plain) == len(aug)
    assert all(np.array_equal(yp, ya) and xp.shape == xa.shape for (xp, yp), (xa, ya) in zip(plain, aug))
    changed = np.mean([not np.array_equal(xp[i], xa[i]) for (xp, _), (xa, _) in zip(plain, aug) for i in range(32)])
    assert changed > 0.8


def test_augment_is_a_padded_crop_and_flip_of_each_image():
    images = tf.constant(np.random.default_rng(0).integers(1, 256, (8, 12, 10, 3), dtype=np.uint8))
    pad = 2
    out = _augment(images, tf.constant([7, 0], tf.int64), pad, flip=True).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    flipped = 0
    for i in range(8):
        candidates = [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for f in (False, True)
                      if np.array_equal(out[i], (lambda c: c[:, ::-1] if f else c)(padded[i, dy:dy + 12,
                                                                                        dx:dx + 10]))]
        assert len(candidates) == 1
        flipped += candidates[0][2]
    assert 0 < flipped < 8


def test_val_is_deterministic_complete_and_unaugmented(digits_dataset):
    p = InputPipeline(digits_dataset)
    a, b = batches(p.val(100)), batches(p.val(100))
    assert [len(y) for _, y in a] == [100, 100, 100, 60]
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert p.val(100).cardinality() == 4 and len(batches(p.val())) == 2


def test_cache_is_filled_once_and_reused_by_later_epochs(digits_dataset, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(digits_dataset, copy)
    p = InputPipeline(copy)
    steps = p.steps_per_epoch(32)
    first = [y.numpy() for _, (_, y) in zip(range(steps), p.train(32, seed=0, epoch=0, augment=True))]
    val = batches(p.val())
    for shard in copy.glob("*.tfrecord"):
        shard.rename(shard.with_suffix(".moved"))
    with pytest.raises(tf.errors.NotFoundError):
        batches(InputPipeline(copy).val())
    again = batches(p.train(32, seed=0, epoch=0, augment=True))
    assert len(again) == steps and all(np.array_equal(a, y) for a, (_, y) in zip(first, again))
    assert len(batches(p.train(32, seed=0, epoch=1, augment=True))) == steps
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(val, batches(p.val())))


def _examples(p):
    return Counter((x.tobytes(), int(y[0])) for x, y in batches(p.train(1, seed=0, epoch=0, augment=False)))


def test_workers_get_disjoint_shard_subsets_covering_everything(digits_dataset):
    parts = [InputPipeline(digits_dataset, shard_index=i, num_shards=2) for i in range(2)]
    assert [w.train_examples() for w in parts] == [
        sum(s["examples"] for s in load_info(digits_dataset).shards["train"][i::2]) for i in range(2)]
    assert _examples(parts[0]) + _examples(parts[1]) == _examples(InputPipeline(digits_dataset))
    with pytest.raises(DataError, match="5 workers but only 4 train shards"):
        InputPipeline(digits_dataset, shard_index=4, num_shards=5)


def test_sample_grayscale_jpegs_decode_to_three_channels(sample_dataset, tiny_sample):
    gray = sum(tf.io.decode_jpeg(f.read_bytes()).shape[-1] == 1 for f in (tiny_sample / "val" / "images").iterdir())
    assert gray > 0
    p = InputPipeline(sample_dataset, cpus=2)
    x = np.concatenate([x for x, _ in batches(p.val())])
    assert x.shape == (500, 64, 64, 3)
    mean, std = (np.array(p.info.normalize[k]) for k in ("mean", "std"))
    pixels = np.rint(x * std + mean)
    same = (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])
    assert same.all(axis=(1, 2)).sum() >= gray
    train = batches(p.train(32, seed=0, epoch=0, augment=True))
    assert len(train) == 31 and train[0][0].shape == (32, 64, 64, 3)
