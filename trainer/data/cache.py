"""A node's own copy of the datasets kept in object storage: the trials on a node train from one local copy, made by
one download of each shard and checked against dataset.json's sha256 each time a trial starts from it.

Under the cache root (env ``GNSWEEP_DATA_CACHE``, default ``~/.cache/gnsweep/datasets``) a dataset is the folder
``<name>-<digest of its dataset.json>``, so a dataset prepared again at the same URI is a new folder. A shard appears
there only whole and checked: downloaded under a hidden temporary name, hashed on the way, then renamed into place;
dataset.json is written last. Locks (``fcntl.flock`` on files in ``.locks/``, which stay) make one process per node
download a shard while the others wait for it, and keep eviction off a dataset in use: a user holds the dataset's
lock shared, eviction takes it exclusively or passes the dataset by. Beyond ``GNSWEEP_DATA_CACHE_GIB`` (default 50)
whole datasets are evicted, least recently used first.
"""
from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import shutil
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from trainer.data.manifest import INFO_FILE, SPLITS, DataError, DatasetInfo, parse_info, read_info
from trainer.storage import Location, file_digest, is_remote

CACHE_ENV = "GNSWEEP_DATA_CACHE"
LIMIT_ENV = "GNSWEEP_DATA_CACHE_GIB"
DEFAULT_ROOT = "~/.cache/gnsweep/datasets"
DEFAULT_GIB = 50.0
LOCKS = ".locks"
CHUNK = 1 << 20


@dataclass(frozen=True)
class CacheSettings:
    """Where a node keeps its copies and how many bytes of them it keeps (whole datasets beyond it are evicted)."""

    root: Path
    max_bytes: int

    @classmethod
    def from_env(cls) -> CacheSettings:
        """The node's settings, from its environment (each node may differ: set them where Ray starts)."""
        raw = os.environ.get(LIMIT_ENV, "").strip()
        try:
            gib = float(raw) if raw else DEFAULT_GIB
        except ValueError:
            gib = math.nan
        if not (math.isfinite(gib) and gib >= 0):
            raise DataError(f"{LIMIT_ENV}={raw!r}: give the dataset cache's size bound in GiB, a number >= 0")
        return cls(Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT).expanduser().absolute(), int(gib * 2**30))


@contextmanager
def local_dataset(dataset: str | Path | Location, settings: CacheSettings | None = None) -> Iterator[Path]:
    """The local directory to train from: ``dataset`` itself when it is a local path; for a dataset in object
    storage, this node's checked copy (fetched first if need be), safe from eviction until the block ends."""
    if not (isinstance(dataset, Location) or is_remote(dataset)):
        yield Path(dataset)
        return
    settings = settings or CacheSettings.from_env()
    source = Location.of(dataset)
    blob, where = read_info(source)
    info = parse_info(blob, where)
    key = dataset_key(info, blob)
    with ExitStack() as held:
        try:
            held.enter_context(_locked(settings.root / LOCKS / key, shared=True))
            folder = _fill(settings, key, source, info, blob)
        except OSError as e:
            raise DataError(f"{CACHE_ENV}={settings.root}: cannot keep {source.shown} there "
                            f"({_first_line(e)})") from None
        yield folder


def _fill(settings: CacheSettings, key: str, source: Location, info: DatasetInfo, manifest: bytes) -> Path:
    """The dataset's folder with every shard checked (fetched where missing or damaged), then dataset.json."""
    folder = settings.root / key
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for shard in info.shards[split]:
            _ensure_shard(source, folder, shard, settings.root / LOCKS / f"{key}.{shard['file']}")
    if not (folder / INFO_FILE).is_file() or (folder / INFO_FILE).read_bytes() != manifest:
        _write_whole(folder / INFO_FILE, manifest)
    os.utime(folder)  # its last use, for eviction
    evict(settings, keep=key)
    return folder


def dataset_key(info: DatasetInfo, manifest: bytes) -> str:
    """The cache folder of a dataset: its name (made safe for a file name) and the digest of its dataset.json."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", info.name)[:64].lstrip(".") or "dataset"
    return f"{name}-{hashlib.sha256(manifest).hexdigest()[:16]}"


def _ensure_shard(source: Location, folder: Path, shard: dict, lock: Path) -> None:
    """The shard in ``folder``, checked; downloaded (again) if it is missing or does not match its sha256."""
    path = folder / shard["file"]
    with _locked(lock, shared=False):
        if path.is_file() and path.stat().st_size == shard["bytes"] \
                and file_digest(path, "sha256") == shard["sha256"]:
            return
        for stale in folder.glob(f".{shard['file']}.part-*"):  # a killed download's: this process holds the lock
            stale.unlink(missing_ok=True)
        part = folder / f".{shard['file']}.part-{uuid.uuid4().hex}"
        try:
            size, digest = _download(source / shard["file"], part)
            if (size, digest) != (shard["bytes"], shard["sha256"]):
                raise DataError(f"{(source / shard['file']).shown}: does not match the sha256 in {INFO_FILE} "
                                f"(changed since prepared; prepare it again)")
            os.replace(part, path)  # over a damaged copy too: a reader that opened it keeps the old file
        finally:
            part.unlink(missing_ok=True)


def _download(src: Location, dest: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dest`` (synced to disk); its size and sha256."""
    digest, size = hashlib.sha256(), 0
    try:
        stream = src.fs.open_input_stream(src.path)
    except OSError as e:
        raise DataError(f"{src.shown}: cannot download ({_first_line(e)})") from None
    with stream, open(dest, "wb") as out:
        while True:
            try:
                chunk = stream.read(CHUNK)
            except OSError as e:
                raise DataError(f"{src.shown}: cannot download ({_first_line(e)})") from None
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def evict(settings: CacheSettings, keep: str | None = None) -> list[str]:
    """Remove whole datasets, least recently used first, until the cache holds at most ``settings.max_bytes``;
    ``keep`` and datasets in use elsewhere are passed by. Returns the folders removed."""
    root = settings.root
    for left in root.glob(".evicting-*"):  # an eviction killed half-way; nothing uses these
        shutil.rmtree(left, ignore_errors=True)
    folders = {f: (_mtime(f), _size(f)) for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")}
    total = sum(size for _, size in folders.values())
    evicted = []
    for folder, (_, size) in sorted(folders.items(), key=lambda item: item[1][0]):
        if total <= settings.max_bytes:
            break
        if folder.name == keep:
            continue
        fd = _try_exclusive(root / LOCKS / folder.name)
        if fd is None:
            continue
        try:
            trash = root / f".evicting-{uuid.uuid4().hex}"
            os.rename(folder, trash)  # gone at once for every reader; removed at leisure
            shutil.rmtree(trash, ignore_errors=True)
        except FileNotFoundError:
            continue
        finally:
            os.close(fd)
        total -= size
        evicted.append(folder.name)
    return evicted


@contextmanager
def _locked(path: Path, *, shared: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _try_exclusive(path: Path) -> int | None:
    """An open descriptor holding ``path``'s lock exclusively, or None when someone holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_whole(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part-{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _mtime(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
