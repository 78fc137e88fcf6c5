"""Dataset preparation: Tiny ImageNet (directory or official zip) or the built-in digits, written as TFRecord shards.

A prepared dataset is a directory of ``<split>-NNNNN-of-NNNNN.tfrecord`` shards holding the original JPEG bytes
(features ``image``, ``label``, ``name``) plus ``dataset.json`` (``DatasetInfo``). Both sources take the same path
from there on. TensorFlow is imported inside the functions that need it, so importing this module stays cheap.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
LABEL_RULE = "label = index of wnid in sorted(wnids)"
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
DIGITS_SOURCE = "sklearn.datasets.load_digits"
DIGITS_SIZE = 16  # the digits are 8x8: 16x16 loses nothing and trains 1.4-3.7x faster than 32x32 on a CPU core
MAX_SHARDS = {"train": 16, "val": 4}
MIN_SHARD_EXAMPLES = 250
CONNECT_TIMEOUT_S = 30
_JPEG_MAGIC = b"\xff\xd8\xff"
_DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


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


def load_info(dataset_dir: str | Path) -> DatasetInfo:
    """Read and validate ``dataset_dir/dataset.json``; DataError naming the file on any problem."""
    path = Path(dataset_dir) / INFO_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing (not a prepared dataset; run 'gnsweep data prepare')") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object")
    types = {"name": str, "image_size": list, "num_classes": int, "classes": list, "counts": dict, "shards": dict,
             "label_rule": str, "augment": dict, "normalize": dict, "source": str, "format_version": int}
    for key, typ in types.items():
        if not isinstance(raw.get(key), typ):
            raise DataError(f"{path}: field '{key}' is missing or not a {typ.__name__}")
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise DataError(f"{path}: unknown field '{unknown[0]}'")
    if raw["format_version"] != FORMAT_VERSION:
        raise DataError(f"{path}: format_version {raw['format_version']} is not {FORMAT_VERSION}; prepare it again")
    if len(raw["image_size"]) != 2 or not all(isinstance(v, int) and v > 0 for v in raw["image_size"]):
        raise DataError(f"{path}: field 'image_size' must be [height, width]")
    if len(raw["classes"]) != raw["num_classes"] or not all(
            isinstance(c, dict) and isinstance(c.get("wnid"), str) for c in raw["classes"]):
        raise DataError(f"{path}: field 'classes' must list num_classes objects with a 'wnid'")
    for split in ("train", "val"):
        shards = raw["shards"].get(split)
        if not isinstance(shards, list) or not shards:
            raise DataError(f"{path}: field 'shards.{split}' must be a non-empty list")
        for s in shards:
            if not (isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("examples"), int)
                    and isinstance(s.get("bytes"), int) and isinstance(s.get("sha256"), str)):
                raise DataError(f"{path}: field 'shards.{split}' entries need file, examples, bytes, sha256")
            if Path(s["file"]).name != s["file"]:
                raise DataError(f"{path}: shard file '{s['file']}' must be a plain file name")
        if raw["counts"].get(split) != sum(s["examples"] for s in shards):
            raise DataError(f"{path}: field 'counts.{split}' does not match the shards' examples")
    for key in ("mean", "std"):
        v = raw["normalize"].get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            raise DataError(f"{path}: field 'normalize.{key}' must be 3 numbers")
    if not isinstance(raw["augment"].get("pad"), int) or not isinstance(raw["augment"].get("flip"), bool):
        raise DataError(f"{path}: field 'augment' needs pad (int) and flip (bool)")
    raw["image_size"] = tuple(raw["image_size"])
    return DatasetInfo(**raw)


def verify(dataset_dir: str | Path, info: DatasetInfo) -> None:
    """Check that every shard exists with the size and sha256 recorded in dataset.json (about 1 s per 250 MB)."""
    for split in ("train", "val"):
        for s in info.shards[split]:
            path = Path(dataset_dir) / s["file"]
            if not path.is_file():
                raise DataError(f"{path}: shard missing")
            if path.stat().st_size != s["bytes"] or _sha256(path) != s["sha256"]:
                raise DataError(f"{path}: shard does not match the sha256 in {INFO_FILE} (changed since prepared)")


def check_dataset(spec_dataset: str) -> str | None:
    """A problem with a sweep spec's ``dataset`` value, or None; prepares nothing and never imports TensorFlow."""
    if spec_dataset == "builtin:digits":
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


def resolve_dataset(spec_dataset: str, data_dir: str | Path) -> Path:
    """The prepared directory for a sweep spec's ``dataset``: a prepared dir is used as is; builtin:digits and raw
    Tiny ImageNet dirs or zips are prepared on demand under ``data_dir`` (once; later calls reuse them)."""
    problem = check_dataset(spec_dataset)
    if problem:
        raise DataError(problem)
    data_dir = Path(data_dir)
    if spec_dataset == "builtin:digits":
        out = data_dir / "digits"
        prepare("digits", out)
        return out
    path = Path(spec_dataset).expanduser()
    if (path / INFO_FILE).is_file():
        return path
    out = data_dir / f"{path.stem if path.is_file() else path.name}-shards"
    prepare(str(path), out)
    return out


def prepare(source: str, out: str | Path, *, shards: int | None = None, skip_bad: bool = False, seed: int = 0,
            progress: bool = True) -> DatasetInfo:
    """Write ``source`` ("digits", a Tiny ImageNet directory or its zip) as shards plus dataset.json into ``out``.

    Examples go to shards in a permutation seeded by ``seed``. Every image must decode as JPEG; with ``skip_bad``
    bad ones are skipped and counted in ``counts["skipped"]``. The work happens in a hidden directory next to
    ``out`` that is renamed at the end, so an interrupted run leaves nothing. If ``out`` already holds a dataset
    prepared from the same source, its info is returned and nothing is written.
    """
    out = Path(out)
    canonical = _canonical_source(source)
    existing = _existing(out, canonical)
    if existing is not None:
        return existing
    with ExitStack() as stack:
        src = _open_source(source, canonical, stack)
        num_shards = {"train": shards or _default_shards(len(src.train), MAX_SHARDS["train"]),
                      "val": min(_default_shards(len(src.val), MAX_SHARDS["val"]), shards or MAX_SHARDS["val"])}
        for split, n in num_shards.items():
            if n > len(getattr(src, split)):
                raise DataError(f"--shards {n} is more than the {len(getattr(src, split))} {split} images")
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(out)
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
        try:
            tmp.mkdir()
            info = _write(src, tmp, num_shards, skip_bad=skip_bad, seed=seed, progress=progress)
            (tmp / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
            return _publish(tmp, out, canonical, info)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def download(out: str | Path, *, url: str = TINY_IMAGENET_URL, md5: str = TINY_IMAGENET_MD5,
             progress: bool = True) -> Path:
    """Download the Tiny ImageNet archive to ``out/tiny-imagenet-200.zip`` and check its md5; reuse a good copy.

    A failed or interrupted download, or an md5 mismatch, leaves nothing behind (DataError, one line).
    """
    out = Path(out)
    target = out / "tiny-imagenet-200.zip"
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    if target.is_file() and _md5(target) == md5:
        return target
    try:
        response = urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        raise DataError(f"cannot reach {url}: {_reason(e)}") from None
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{target.name}.partial-{os.getpid()}"
    ok = False
    try:
        digest = hashlib.md5()
        total = int(response.headers.get("Content-Length") or 0)
        with response, open(tmp, "wb") as f, _Progress("download", total, progress) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                digest.update(chunk)
                bar.advance(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: md5 {digest.hexdigest()} does not match the expected {md5}")
        os.replace(tmp, target)
        ok = True
        return target
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DataError(f"cannot reach {url}: download failed ({_reason(e)})") from None
    finally:
        tmp.unlink(missing_ok=True)
        if not ok and created:
            shutil.rmtree(out, ignore_errors=True)


class _Entry(NamedTuple):
    name: str
    label: int
    key: str


@dataclass
class _Source:
    name: str
    source: str
    classes: list[dict]
    train: list[_Entry]
    val: list[_Entry]
    read: Callable[[str], bytes]
    show: Callable[[str], str]
    flip: bool


def _canonical_source(source: str) -> str:
    if source in ("digits", "builtin:digits"):
        return DIGITS_SOURCE
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or directory (give a Tiny ImageNet directory or zip, or 'digits')")
    return str(path.resolve())


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
    os.rename(tmp, out)
    return info


def _remove_stale_temps(out: Path) -> None:
    """Remove temp dirs left by a prepare that was killed outright (its process is gone)."""
    for tmp in out.parent.glob(f".{out.name}.partial-*"):
        try:
            os.kill(int(tmp.name.rsplit("-", 1)[1]), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass


def _default_shards(examples: int, cap: int) -> int:
    """The largest power of two up to ``cap`` that leaves at least MIN_SHARD_EXAMPLES per shard (at least 1)."""
    n = 1
    while n * 2 <= cap and examples // (n * 2) >= MIN_SHARD_EXAMPLES:
        n *= 2
    return n


def _open_source(source: str, canonical: str, stack: ExitStack) -> _Source:
    if canonical == DIGITS_SOURCE:
        return _digits_source()
    path = Path(canonical)
    if path.is_dir():
        return _tiny_source(_DirTree(path), path.name, canonical)
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{source}: not a readable zip archive ({e})") from None
    return _tiny_source(_ZipTree(zf, path), path.stem, canonical)


class _DirTree:
    """Read access to an unpacked tiny-imagenet-200 tree, by paths relative to its root."""

    def __init__(self, root: Path):
        self.root = root

    def is_file(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def files(self, rel_dir: str) -> list[str]:
        d = self.root / rel_dir
        if not d.is_dir():
            return []
        return sorted(f"{rel_dir}/{e.name}" for e in os.scandir(d) if e.is_file() and not e.name.startswith("."))

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def show(self, rel: str) -> str:
        return str(self.root / rel)


class _ZipTree:
    """Read access to the official zip without extracting it; the root is the folder holding wnids.txt."""

    def __init__(self, zf: zipfile.ZipFile, path: Path):
        self.zf, self.path = zf, path
        names = [n for n in zf.namelist() if not n.endswith("/")]
        roots = [n[:-len("wnids.txt")] for n in names if n == "wnids.txt" or n.endswith("/wnids.txt")]
        self.prefix = min(roots, key=len) if roots else "tiny-imagenet-200/"
        self.dirs: dict[str, list[str]] = {}
        for n in names:
            if n.startswith(self.prefix):
                rel = n[len(self.prefix):]
                self.dirs.setdefault(rel.rpartition("/")[0], []).append(rel)

    def is_file(self, rel: str) -> bool:
        return rel in self.dirs.get(rel.rpartition("/")[0], ())

    def files(self, rel_dir: str) -> list[str]:
        return sorted(r for r in self.dirs.get(rel_dir, []) if not r.rpartition("/")[2].startswith("."))

    def read(self, rel: str) -> bytes:
        return self.zf.read(self.prefix + rel)

    def show(self, rel: str) -> str:
        return f"{self.path}:{self.prefix}{rel}"


def _tiny_source(tree: _DirTree | _ZipTree, name: str, canonical: str) -> _Source:
    for rel in ("wnids.txt", "words.txt", "val/val_annotations.txt"):
        if not tree.is_file(rel):
            raise DataError(f"{tree.show(rel)}: missing (not a complete tiny-imagenet-200 tree)")
    wnids = [w.strip() for w in _text(tree, "wnids.txt").splitlines() if w.strip()]
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
        train += [_Entry(f.rpartition("/")[2], label[w], f) for f in files]
    if empty:
        raise DataError(f"no training images for {len(empty)} classes: {_some(empty)}")

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
        rel = f"val/images/{file}"
        if not tree.is_file(rel):
            missing.append(tree.show(rel))
        val.append(_Entry(file, label[wnid], rel))
    if missing:
        raise DataError(f"{len(missing)} validation images listed in {ann} are missing: {_some(missing)}")
    if not val:
        raise DataError(f"{tree.show(ann)}: lists no images")
    val.sort(key=lambda e: e.name)
    return _Source(name=name, source=canonical, classes=classes, train=train, val=val, read=tree.read,
                   show=tree.show, flip=True)


def _digits_source() -> _Source:
    """scikit-learn's 1,797 real 8x8 digits, upscaled to ``DIGITS_SIZE`` and encoded as 1-channel JPEGs, split 80/20."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = (digits.images.astype("float32") * (255.0 / 16.0))[..., None]
    big = tf.clip_by_value(tf.round(tf.image.resize(pixels, (DIGITS_SIZE, DIGITS_SIZE), method="bilinear")), 0, 255)
    big = tf.cast(big, tf.uint8)
    blobs = {f"digit_{i:04d}.jpg": tf.io.encode_jpeg(big[i], quality=95).numpy() for i in range(len(big))}
    entries = [_Entry(f"digit_{i:04d}.jpg", int(y), f"digit_{i:04d}.jpg") for i, y in enumerate(digits.target)]
    train, val = train_test_split(entries, test_size=0.2, random_state=0, stratify=digits.target)
    classes = [{"wnid": f"digit{d}", "words": _DIGIT_WORDS[d]} for d in range(10)]
    return _Source(name="digits", source=DIGITS_SOURCE, classes=classes, train=sorted(train), val=sorted(val),
                   read=blobs.__getitem__, show=lambda k: f"digits:{k}", flip=False)


def _write(src: _Source, tmp: Path, num_shards: dict, *, skip_bad: bool, seed: int, progress: bool) -> DatasetInfo:
    import numpy as np

    rng = np.random.default_rng(seed)
    stats = _PixelStats()
    bad: list[str] = []
    shards: dict[str, list[dict]] = {}
    for split in ("train", "val"):
        entries = getattr(src, split)
        order = rng.permutation(len(entries))
        shards[split] = []
        with _Progress(split, len(entries), progress) as bar:
            for i, chunk in enumerate(np.array_split(order, num_shards[split])):
                file = f"{split}-{i:05d}-of-{num_shards[split]:05d}.tfrecord"
                written = _write_shard(tmp / file, [entries[j] for j in chunk], src, stats if split == "train"
                                       else None, bad, bar)
                shards[split].append({"file": file, "examples": written, "bytes": (tmp / file).stat().st_size,
                                      "sha256": _sha256(tmp / file)})
    if bad and not skip_bad:
        raise DataError(f"{len(bad)} unreadable images: {_some(bad)} (use --skip-bad to leave them out)")
    for split in ("train", "val"):
        empty = [s["file"] for s in shards[split] if s["examples"] == 0]
        if empty:
            raise DataError(f"shard {empty[0]} would be empty after skipping bad images; use fewer shards")
    counts = {split: sum(s["examples"] for s in shards[split]) for split in shards}
    if bad:
        counts["skipped"] = len(bad)
    h, w = stats.size
    return DatasetInfo(name=src.name, image_size=(h, w), num_classes=len(src.classes), classes=src.classes,
                       counts=counts, shards=shards, label_rule=LABEL_RULE,
                       augment={"pad": h // 8, "flip": src.flip}, normalize=stats.normalize(), source=src.source)


def _write_shard(path: Path, entries: list[_Entry], src: _Source, stats: _PixelStats | None, bad: list[str],
                 bar: _Progress) -> int:
    """Write one shard of checked JPEGs; bad images go to ``bad`` as "<file> (<why>)". Returns examples written."""
    import tensorflow as tf

    written = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for e in entries:
            bar.advance()
            try:
                blob = src.read(e.key)
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as err:
                bad.append(f"{src.show(e.key)} (unreadable: {err})")
                continue
            problem = _jpeg_problem(blob, stats)
            if problem:
                bad.append(f"{src.show(e.key)} ({problem})")
                continue
            writer.write(_example(blob, e.label, e.name))
            written += 1
    return written


def _jpeg_problem(blob: bytes, stats: _PixelStats | None) -> str | None:
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


class _PixelStats:
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


def _example(blob: bytes, label: int, name: str) -> bytes:
    import tensorflow as tf

    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
               "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class _Progress:
    """A one-line "\\r<label> done/total" counter on stderr, shown only on a terminal and at most 10 times a second."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.done, self.last = label, total, 0, 0.0
        self.enabled = enabled and sys.stderr.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and time.monotonic() - self.last > 0.1:
            self.last = time.monotonic()
            self._show()

    def _show(self) -> None:
        sys.stderr.write(f"\r{self.label} {self.done}/{self.total or '?'}")
        sys.stderr.flush()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._show()
            sys.stderr.write("\n")


def _text(tree: _DirTree | _ZipTree, rel: str) -> str:
    try:
        return tree.read(rel).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{tree.show(rel)}: cannot read ({e})") from None


def _some(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _reason(e: Exception) -> str:
    reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
    return " ".join(str(reason).split()) or type(e).__name__


def _sha256(path: Path) -> str:
    return _digest(path, hashlib.sha256())


def _md5(path: Path) -> str:
    return _digest(path, hashlib.md5())


def _digest(path: Path, h) -> str:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
