"""Bounded, contained read access to a raw dataset: an unpacked folder or a zip read in place.

Both readers take paths relative to the dataset root, refuse any that would leave it, and read at most ``cap``
bytes of a file: a zip member that inflates past its cap is refused after reading ``cap`` bytes, whatever its
header says, so a small hostile archive cannot take the memory. What cannot be read raises ``Unreadable`` with the
reason; the caller names the file (``show``) and decides whether it may be skipped. ``problem`` says what the
file's size or zip header already shows is wrong, without reading it (a whole dataset in a second, before any
image is decoded).
"""
from __future__ import annotations

import os
import posixpath
import zipfile
import zlib
from pathlib import Path

MiB = 1 << 20


class Unreadable(Exception):
    """A file of the source cannot be read; the message is the reason only."""


def inside(rel: str) -> str | None:
    """``rel`` normalized, or None when it is absolute or its ``..`` parts leave the root (a symlink inside the
    root is the user's own and is followed)."""
    if not rel or "\0" in rel or rel.startswith("/"):
        return None
    norm = posixpath.normpath(rel)
    return None if norm == ".." or norm.startswith("../") else norm


def _too_big(cap: int) -> str:
    return f"over {cap / MiB:g} MiB, more than any file of this dataset needs"


class DirTree:
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

    def problem(self, rel: str, cap: int) -> str | None:
        try:
            size = os.stat(self.root / rel).st_size
        except OSError as e:
            return e.strerror or str(e)
        return _too_big(cap) if size > cap else None

    def read(self, rel: str, cap: int) -> bytes:
        try:
            with open(self.root / rel, "rb") as f:
                blob = f.read(cap + 1)
        except OSError as e:
            raise Unreadable(e.strerror or str(e)) from None
        if len(blob) > cap:
            raise Unreadable(_too_big(cap))
        return blob

    def show(self, rel: str) -> str:
        return str(self.root / rel)


class ZipTree:
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

    def problem(self, rel: str, cap: int) -> str | None:
        try:
            info = self.zf.getinfo(self.prefix + rel)
        except KeyError:
            return "not in the archive"
        if info.flag_bits & 0x1:
            return "encrypted (password-protected members cannot be read)"
        if info.compress_type not in _METHODS:
            return f"compression method {info.compress_type} is not supported"
        if info.file_size > cap:
            return _too_big(cap)
        return None

    def read(self, rel: str, cap: int) -> bytes:
        problem = self.problem(rel, cap)
        if problem:
            raise Unreadable(problem)
        info = self.zf.getinfo(self.prefix + rel)
        try:
            with self.zf.open(info) as f:
                blob = f.read(cap + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
            raise Unreadable(str(e) or type(e).__name__) from None
        if len(blob) > cap:
            raise Unreadable(_too_big(cap))
        return blob

    def show(self, rel: str) -> str:
        return f"{self.path}:{self.prefix}{rel}"


def _methods() -> set[int]:
    """The compression methods this Python's zipfile can read (bzip2 and lzma need their optional modules)."""
    methods = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    for method, module in ((zipfile.ZIP_BZIP2, "bz2"), (zipfile.ZIP_LZMA, "lzma")):
        try:
            __import__(module)
            methods.add(method)
        except ImportError:
            pass
    return methods


_METHODS = _methods()
