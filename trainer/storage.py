"""Where a sweep's files live: a local directory, or a pyarrow file-system URI such as
``s3://bucket/results?endpoint_override=host:9000&scheme=http`` (``gs://``, ``hdfs://`` likewise), which every node
of a cluster reaches without a shared mount.

A ``Location`` is one path on one file system. Its ``str`` is the plain path (local) or the full URI with the same
options (remote), so it can travel to a trial worker as a string and be opened again there. Writes of whole files are
atomic on both: locally a hidden temporary file renamed into place, on an object store a single upload, which becomes
visible only when complete. Credentials come from the environment as pyarrow reads them (``AWS_ACCESS_KEY_ID``,
instance roles, ...).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import signal
import socket
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<path>[^?]*)(?:\?(?P<query>.*))?$")


class StorageError(Exception):
    """A results location that cannot be opened (unknown scheme, bad options); the message is one line."""


TEMPORARY = re.compile(r"^\.(?P<host>[A-Za-z0-9_.-]+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"


def temporary_name() -> str:
    """A hidden name for a file being written: ``.<host>.<pid>.<random>.tmp``."""
    return f".{_host()}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def left_by_dead_writer(name: str) -> bool:
    """Whether ``name`` is a temporary file of this host whose writer process is gone."""
    match = TEMPORARY.match(name)
    if match is None or match["host"] != _host():
        return False
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


@contextmanager
def signals_held():
    """SIGINT and SIGTERM held back in the block and handled right after it (main thread; elsewhere a no-op).

    An upload becomes visible when its stream closes, and pyarrow closes (never aborts) a stream left by an exception:
    Ctrl-C between opening and writing would publish an empty object in place of a results file. Held here, the
    handler (the launch's, which raises ``Interrupted``) runs once the object is whole. A kill (SIGKILL) never
    completes an upload, so it leaves the old object."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:  # None: installed outside Python, cannot be put back
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:  # the first signal; the handler acts on that one only
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def file_digest(path: str | Path, algorithm: str) -> str:
    """The hex digest of a local file (``hashlib`` algorithm name), read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def is_remote(where: str | Path) -> bool:
    """Whether ``where`` names object storage (a URI other than ``file://``) rather than a local path."""
    match = URI.match(where) if isinstance(where, str) else None
    return match is not None and match["scheme"] != "file"


def check_folder(value: str | Path, option: str, *, write: bool, uri: bool = True) -> None:
    """Refuse, before any work starts, a value of a folder option (``--results``, ``--out``, ...) that cannot be
    one: empty, a NUL byte, a file where the folder (or one above it) should be, a folder this process cannot
    create or write in (``write``), a malformed URI, or a URI where only a local folder will do (``uri`` false).
    Raises StorageError, one line naming the option. A folder that does not exist yet is fine: it is made when
    written."""
    text = os.fspath(value)
    shown = text if len(text) <= 120 else f"{text[:117]}..."
    label = f"{option} {shown!r}" if not text or text != text.strip() or not text.isprintable() else \
        f"{option} {shown}"
    if is_remote(text):
        if not uri:
            raise StorageError(f"{label}: must be a local folder here, not a URI")
        try:
            where = Location.of(text)
        except StorageError as e:
            raise StorageError(f"{option} {e}") from None
        if not where.path.strip("/"):
            raise StorageError(f"{label}: names no bucket or path")
        return
    if not text:
        raise StorageError(f"{label}: an empty path; name a folder")
    if "\0" in text:
        raise StorageError(f"{label}: a path cannot contain a NUL byte")
    path = Path(Location.of(text).path)
    try:
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            where = "" if existing == path else f" ({existing} is a file)"
            raise StorageError(f"{label}: not a folder{where or ' (a file is there)'}")
        if write and not os.access(existing, os.W_OK | os.X_OK):
            what = "write in it" if existing == path else f"create it ({existing} is not writable)"
            raise StorageError(f"{label}: cannot {what}")
    except OSError as e:  # a name too long, a loop of symlinks
        raise StorageError(f"{label}: not a usable path ({e.strerror or e})") from None


def sweep_location(results: str | Path, name: str) -> "Location":
    """Where sweep ``name`` keeps its outputs under the results root ``results`` (``--results``)."""
    return Location.of(results) / name


@dataclass(frozen=True)
class Location:
    fs: object  # pyarrow.fs.FileSystem
    path: str  # on ``fs``: absolute for local paths, "bucket/key" for object stores
    scheme: str | None = None  # None for a local path
    query: str = ""

    @classmethod
    def of(cls, where: str | Path | "Location") -> "Location":
        """A Location for a local path (made absolute) or a URI that pyarrow's ``FileSystem.from_uri`` opens."""
        import pyarrow.fs as pafs

        if isinstance(where, Location):
            return where
        match = URI.match(str(where)) if isinstance(where, str) else None
        if match is None:
            return cls(pafs.LocalFileSystem(), os.path.abspath(os.fspath(where)))
        if match["scheme"] == "file":
            return cls(pafs.LocalFileSystem(), os.path.abspath("/" + match["path"].lstrip("/")))
        try:
            fs, path = pafs.FileSystem.from_uri(str(where))
        except (OSError, ValueError, TypeError) as e:
            raise StorageError(f"{where}: cannot open this location ({str(e).splitlines()[0]})") from None
        return cls(fs, path.rstrip("/"), match["scheme"], match["query"] or "")

    @property
    def local(self) -> bool:
        return self.scheme is None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def __truediv__(self, name: str) -> "Location":
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", self.scheme, self.query)

    def __str__(self) -> str:
        if self.local:
            return self.path
        return f"{self.scheme}://{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def shown(self) -> str:
        """The path or URI without its options (endpoint, scheme, ...): how messages name a file."""
        return self.path if self.local else f"{self.scheme}://{self.path}"

    def as_path(self) -> Path:
        """The local path; only for local Locations."""
        assert self.local, f"{self} is not a local path"
        return Path(self.path)

    def _type(self):
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        return self._type() != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        import pyarrow.fs as pafs

        return self._type() == pafs.FileType.Directory

    def _names(self, directories: bool) -> list[str]:
        """Sorted names of the files (or folders) directly in this directory, hidden ones too; none if it is missing."""
        import pyarrow.fs as pafs

        kind = pafs.FileType.Directory if directories else pafs.FileType.File
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == kind)

    def files(self, pattern: str = "*") -> list["Location"]:
        """Files directly in this directory whose names match ``pattern``, hidden ones (``.name``) left out, sorted."""
        return [self / n for n in self._names(False) if not n.startswith(".") and fnmatch.fnmatchcase(n, pattern)]

    def folders(self) -> list["Location"]:
        """Folders directly in this directory, hidden ones included, sorted."""
        return [self / n for n in self._names(True)]

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file atomically: readers see the old file or the new one, never a part."""
        if self.local:
            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            # hidden, and named unlike the file: a tool that lists by pattern never reads a part (TensorBoard reads
            # every file with 'tfevents' in its name); the writer's host and pid let remove_dead_temporaries tell a
            # part left by a killed writer from one being written
            tmp = path.with_name(temporary_name())
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return
        with signals_held():
            with self.fs.open_output_stream(self.path) as f:
                f.write(data)

    def remove_dead_temporaries(self) -> list[str]:
        """Delete the temporary files directly in this (local) directory that a writer on this host left when it was
        killed between writing and renaming (its process is gone); returns their names. Parts of live writers, and of
        other hosts sharing the folder, are left alone. An object store has none (an upload is one operation)."""
        if not self.local:
            return []
        removed = [name for name in self._names(False) if left_by_dead_writer(name)]
        for name in removed:
            (Path(self.path) / name).unlink(missing_ok=True)
        return removed

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def delete_dir(self) -> None:
        import pyarrow.fs as pafs

        if self._type() == pafs.FileType.Directory:
            self.fs.delete_dir(self.path)

    def upload(self, local_dir: Path) -> None:
        """Copy the files under ``local_dir`` to this directory."""
        import pyarrow.fs as pafs

        pafs.copy_files(str(local_dir), self.path, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def download(self, local_dir: Path) -> None:
        """Copy the files under this directory to ``local_dir``."""
        import pyarrow.fs as pafs

        Path(local_dir).mkdir(parents=True, exist_ok=True)
        pafs.copy_files(self.path, str(local_dir), source_filesystem=self.fs,
                        destination_filesystem=pafs.LocalFileSystem())
