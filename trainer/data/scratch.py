"""Scratch folders that prove they are gnsweep's: prepare and download work in one, next to their output, and
later runs remove the ones a killed run left, and only those.

A scratch folder is named ``.<name>.partial-<id>`` and holds a marker file whose id matches the name, with the
host and process that made it. A folder is stale when its marker matches and its process is gone from this host;
a folder without a matching marker is never touched, whatever its name (it may be a user's).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path

MARKER = ".gnsweep-scratch"


def make(parent: Path, name: str) -> Path:
    """A new, empty scratch folder for ``parent/name``; the caller removes it (or ``release``s it) when done."""
    token = uuid.uuid4().hex
    folder = parent / f".{name}.partial-{token}"
    folder.mkdir()
    draft = folder / f"{MARKER}.draft"  # renamed into place: a run killed mid-write leaves no half a marker
    draft.write_text(json.dumps({"id": token, "host": socket.gethostname(), "pid": os.getpid(),
                                 "written_by": "gnsweep; removed by the next run if this one died"}))
    os.replace(draft, folder / MARKER)
    return folder


def release(folder: Path) -> None:
    """Drop the marker, just before the folder is renamed into place or its content moved out."""
    (folder / MARKER).unlink(missing_ok=True)


def remove_stale(parent: Path, name: str) -> None:
    """Remove ``parent``'s scratch folders for ``name`` whose process on this host is gone."""
    if not parent.is_dir():
        return
    for folder in parent.glob(f".{name}.partial-*"):
        owner = _owner(folder)
        if owner and owner["host"] == socket.gethostname() and not _alive(owner["pid"]):
            shutil.rmtree(folder, ignore_errors=True)


def _owner(folder: Path) -> dict | None:
    marker = folder / MARKER
    if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
        return None
    try:
        owner = json.loads(marker.read_text()[:4096])
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    token = folder.name.rpartition(".partial-")[2]
    if not (isinstance(owner, dict) and owner.get("id") == token and isinstance(owner.get("pid"), int)
            and isinstance(owner.get("host"), str)):
        return None
    return owner


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True
