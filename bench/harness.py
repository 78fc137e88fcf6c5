"""What every benchmark shares: interleaved repetitions, aligned tables with a target verdict, the real datasets, and
Keras timing of whole epochs on in-memory arrays.

The machine the benchmarks run on is shared and noisy, so a figure is only ever compared with figures measured in the
same run, with the variants interleaved (A B C, B C A, C A B, ...); a ratio is the median of the per-round ratios and
its range is printed beside it.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

SAMPLE_ENV = "GNSWEEP_TINY_IMAGENET_SAMPLE"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def interleaved(variants: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Run each variant ``reps`` times, rotating the order every round so drift in the machine's load hits all
    variants alike. Returns the measurements per variant, in the order they were taken."""
    names = list(variants)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(float(variants[name]()))
    return out


def ratios(a: list[float], b: list[float]) -> list[float]:
    """Per-round ratios a/b: the two were measured close together in time, so a load burst on the shared machine
    hits both; the median of these is steadier than the ratio of the medians."""
    return [x / y for x, y in zip(a, b)]


def spread(values: list[float]) -> str:
    """The range of per-round ratios, to show how noisy the machine was."""
    return f"{min(values):.2f}-{max(values):.2f}"


def verdict(ratio: float, target: float, *, at_most: bool = False) -> str:
    ok = ratio <= target if at_most else ratio >= target
    return "PASS" if ok else "MISS"


@dataclass
class Table:
    """A small aligned text table; numbers are formatted by the caller."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c)
                  for i, c in enumerate(self.columns)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [self.title, line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows]
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)


def rate(x: float) -> str:
    """Images (or trials) per second, 3 significant figures."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def ratio(x: float) -> str:
    return f"{x:.2f}x"


@dataclass
class Dataset:
    """A prepared dataset (shards) and, where the images exist as files, the JPEG files it was prepared from."""

    label: str
    prepared: Path
    jpeg_files: list[Path]
    image_size: tuple[int, int]


@dataclass
class Context:
    """Shared by all sections of one run: the datasets and a scratch directory removed at exit."""

    scratch: Path
    digits: Dataset
    sample: Dataset | None
    full: bool = False  # --full: the sections' full sizes

    @property
    def datasets(self) -> list[Dataset]:
        return [self.digits] + ([self.sample] if self.sample else [])

    def at_64(self) -> Dataset:
        """The real 64x64 set when there is one, else digits (whose callers resize to 64x64)."""
        return self.sample or self.digits


@contextmanager
def context() -> Iterator[Context]:
    """Digits prepared into a temp dir (its JPEGs written out of the shards, for the per-file baseline) and, when
    GNSWEEP_TINY_IMAGENET_SAMPLE points at the real sample, the sample prepared too (its own files are the
    baseline's input; nothing is copied into the repository)."""
    from trainer.data import load_info, prepare

    with tempfile.TemporaryDirectory(prefix="gnsweep-bench-") as tmp:
        scratch = Path(tmp)
        digits_dir = scratch / "digits"
        prepare("digits", digits_dir, progress=False)
        digits = Dataset("digits 16x16", digits_dir, _write_jpegs(digits_dir, scratch / "digits-jpeg"),
                         tuple(load_info(digits_dir).image_size))
        sample = None
        root = os.environ.get(SAMPLE_ENV)
        if root:
            sample_dir = scratch / "tiny-sample"
            prepare(root, sample_dir, progress=False)
            files = sorted(Path(root, "train").glob("*/images/*.JPEG"))
            sample = Dataset("tiny-imagenet sample 64x64", sample_dir, files, tuple(load_info(sample_dir).image_size))
        yield Context(scratch, digits, sample)


def _write_jpegs(prepared: Path, out: Path) -> list[Path]:
    """The train split's JPEG bytes, one file each, as a per-file loader would find them on disk."""
    import tensorflow as tf

    from trainer.data import load_info

    info = load_info(prepared)
    out.mkdir()
    files = []
    records = tf.data.TFRecordDataset([str(prepared / s["file"]) for s in info.shards["train"]])
    for i, rec in enumerate(records):
        ex = tf.io.parse_single_example(rec, {"image": tf.io.FixedLenFeature([], tf.string)})
        path = out / f"{i:05d}.jpg"
        path.write_bytes(ex["image"].numpy())
        files.append(path)
    return files


def load_arrays(ds: Dataset, size: tuple[int, int] | None = None):
    """The train split decoded and normalized as the pipeline feeds it (no augmentation), as float32 NHWC numpy
    arrays and int32 labels, plus the number of classes; ``size`` resizes (bilinear) for a model measured at another
    input size."""
    import numpy as np
    import tensorflow as tf

    from trainer.data import load_info

    info = load_info(ds.prepared)
    records = tf.data.TFRecordDataset([str(ds.prepared / s["file"]) for s in info.shards["train"]])
    xs, ys = [], []
    for rec in records:
        ex = tf.io.parse_single_example(rec, {"image": tf.io.FixedLenFeature([], tf.string),
                                              "label": tf.io.FixedLenFeature([], tf.int64)})
        xs.append(tf.io.decode_jpeg(ex["image"], channels=3).numpy())
        ys.append(int(ex["label"]))
    x = np.stack(xs).astype("float32")
    x = (x - np.array(info.normalize["mean"], "float32")) / np.array(info.normalize["std"], "float32")
    if size and tuple(size) != tuple(x.shape[1:3]):
        x = tf.image.resize(x, size).numpy()
    return x.astype("float32"), np.array(ys, "int32"), info.num_classes


def trial_config(model: str, norm: str, batch: int, *, groups: int | None = None):
    from trainer.config import TrainSettings, TrialConfig

    if norm == "gn" and groups is None:
        from trainer.models import default_groups

        groups = default_groups(model)
    return TrialConfig(model=model, norm=norm, batch_size=batch, groups=groups if norm == "gn" else None,
                       train=TrainSettings(epochs=10, base_lr=0.1, base_batch=256))


def compiled_model(model: str, norm: str, batch: int, input_shape, num_classes: int, *, steps: int = 100,
                   steps_per_execution: int | None = None, xla: bool | None = None):
    """A fresh model compiled as ``train_trial`` compiles it (``trainer.train.compile_model``: SGD with Nesterov
    momentum and the lr schedule, cross-entropy, the same metrics, its ``steps_per_execution`` and XLA choice); a
    given ``steps_per_execution`` or ``xla`` replaces the trial's, to show what it buys."""
    import keras

    from trainer import train
    from trainer.models import build_model

    trial = trial_config(model, norm, batch)
    keras.utils.set_random_seed(0)
    m = build_model(model, norm=norm, num_classes=num_classes, input_shape=tuple(input_shape),
                    groups=trial.groups, weight_decay=trial.train.weight_decay)
    original = train.steps_per_execution
    if steps_per_execution is not None:
        train.steps_per_execution = lambda *args, **kwargs: steps_per_execution
    try:
        train.compile_model(m, trial, steps)
    finally:
        train.steps_per_execution = original
    if xla is not None:
        m.jit_compile = xla
    return m


class EpochTimer:
    """Wall time of each epoch inside ``fit`` (excludes fit's own set-up of the data adapter)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t0)

        return _Timer()


def fit_rate(model, x, y, batch: int, epochs: int = 1) -> list[float]:
    """Training images per second of each of ``epochs`` epochs of ``model.fit`` over ``x`` (a multiple of
    ``batch`` images, shuffled)."""
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return [len(x) / s for s in timer.seconds]


def trim(x, y, batch: int, images: int | None = None):
    """The first ``images`` (default all) rounded down to whole batches, as the pipeline drops the remainder."""
    n = len(x) if images is None else min(images, len(x))
    n -= n % batch
    return x[:n], y[:n]
