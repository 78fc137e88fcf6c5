"""Tiny synthetic Tiny ImageNet layouts, for the error paths of preparing and downloading."""
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf


def jpeg(seed: int, size: int = 16, channels: int = 3) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


def fake_tree(root: Path, wnids=("n00000002", "n00000001"), train_per_class=3, val_per_class=2) -> Path:
    """A tiny tiny-imagenet-200 layout of synthetic JPEGs, for the error paths."""
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids) + "n09999999\tother\n")
    lines = []
    for c, w in enumerate(wnids):
        images = root / "train" / w / "images"
        images.mkdir(parents=True)
        for i in range(train_per_class):
            (images / f"{w}_{i}.JPEG").write_bytes(jpeg(100 * c + i))
        for i in range(val_per_class):
            name = f"val_{c * val_per_class + i}.JPEG"
            (root / "val" / "images" / name).write_bytes(jpeg(10_000 + 100 * c + i))
            lines.append(f"{name}\t{w}\t0\t0\t15\t15\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    return root


def zip_tree(tree: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                zf.write(f, "tiny-imagenet-200/" + f.relative_to(tree).as_posix())
    return zip_path
