"""A real S3 file system seen through a wrapper that logs every object a process opens for reading (to a file, so
several processes can count into one log), and can read slowly or stall mid-object, so that downloads overlap or
can be killed half-way. Also a command line, ``python object_store.py URI CACHE_DIR [--log F] [--delay S]
[--stall-after BYTES]``, that fetches a dataset into a cache through the wrapper and prints the local folder.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

READ_SIZE = 16 << 10


class _Reader:
    """A file-like over a pyarrow stream that returns at most READ_SIZE bytes a read, sleeping ``delay`` after each,
    and sleeps for good once ``stall_after`` bytes were read."""

    def __init__(self, inner, delay: float, stall_after: int | None):
        self.inner, self.delay, self.stall_after, self.done, self.closed = inner, delay, stall_after, 0, False

    def read(self, n: int = -1) -> bytes:
        if self.stall_after is not None and self.done >= self.stall_after:
            time.sleep(3600)
        data = self.inner.read(READ_SIZE if n is None or n < 0 else min(n, READ_SIZE))
        self.done += len(data)
        time.sleep(self.delay)
        return data

    def close(self) -> None:
        self.inner.close()
        self.closed = True


class Watched(pafs.FileSystemHandler):
    """Delegates to ``fs``; ``log`` (a file) gets "<pid> <path>" for every object opened for reading."""

    def __init__(self, fs, log: Path | None = None, delay: float = 0.0, stall_after: int | None = None):
        self.fs, self.log, self.delay, self.stall_after = fs, log, delay, stall_after

    def _opened(self, path: str) -> None:
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {path}\n")

    def open_input_stream(self, path):
        self._opened(path)
        return pa.PythonFile(_Reader(self.fs.open_input_stream(path), self.delay, self.stall_after), mode="r")

    def open_input_file(self, path):
        self._opened(path)
        return self.fs.open_input_file(path)

    def get_type_name(self):
        return f"watched-{self.fs.type_name}"

    def equals(self, other):
        return self is other

    def normalize_path(self, path):
        return self.fs.normalize_path(path)

    def get_file_info(self, paths):
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise NotImplementedError

    def delete_file(self, path):
        self.fs.delete_file(path)

    def move(self, src, dest):
        self.fs.move(src, dest)

    def copy_file(self, src, dest):
        self.fs.copy_file(src, dest)

    def open_output_stream(self, path, metadata):
        return self.fs.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path, metadata):
        return self.fs.open_append_stream(path, metadata=metadata)


def watched(uri: str, **options):
    """``Location.of(uri)`` with its file system wrapped in ``Watched(**options)``."""
    from trainer.storage import Location

    loc = Location.of(uri)
    return Location(pafs.PyFileSystem(Watched(loc.fs, **options)), loc.path, loc.scheme, loc.query)


def opened(log: Path) -> list[tuple[int, str]]:
    """(pid, path) of every object opened, in order."""
    if not log.exists():
        return []
    return [(int(pid), path) for pid, path in (line.split(" ", 1) for line in log.read_text().splitlines())]


def main() -> None:
    from trainer.data.cache import CacheSettings, local_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("cache")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--stall-after", type=int)
    parser.add_argument("--start-at", type=float, help="wall-clock time to start at (to start processes together)")
    args = parser.parse_args()
    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    source = watched(args.uri, log=args.log, delay=args.delay, stall_after=args.stall_after)
    started = time.time()
    with local_dataset(source, CacheSettings(Path(args.cache), 1 << 40)) as folder:
        print(folder, started, time.time(), flush=True)


if __name__ == "__main__":
    main()
