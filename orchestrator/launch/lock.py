"""One launch per sweep: ``<results>/<name>/launch.json`` names the launch that runs the sweep (host, pid, since)
and carries a heartbeat that the live launch renews. Another launch of the same sweep, on this node or another one
sharing the results, is refused while the claim is live.

A claim is stale, and taken over, when its process is gone (same host: the pid is dead, or reused by a process that
started later) or, from another host, when its heartbeat is older than its lease: a launch killed with SIGKILL
blocks the next one for at most ``LEASE_SECONDS``, and not at all on its own host. Locally the claim is created with
``os.link`` (atomic, fails if the file exists, also on NFS); on an object store, which has no create-if-absent
through pyarrow, it is written and read back, and the heartbeat stops a launch whose claim another one overwrote.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable

from trainer.storage import Location

LOCK_FILE = "launch.json"
HEARTBEAT_SECONDS = 15.0
LEASE_SECONDS = 120.0


class LockError(Exception):
    """The sweep is being launched elsewhere (one line naming where)."""


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, from /proc), to tell a reused pid from the launch's own."""
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return started is None or process_start(pid) in (None, started)


@dataclass
class LockHolder:
    id: str
    host: str
    pid: int
    pid_started: int | None
    since: str  # ISO time the launch started
    heartbeat: float  # unix time of the last renewal
    lease_seconds: float

    @classmethod
    def mine(cls) -> "LockHolder":
        now = time.time()
        return cls(uuid.uuid4().hex, socket.gethostname(), os.getpid(), process_start(os.getpid()),
                   datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"), now, LEASE_SECONDS)

    def live(self, now: float | None = None) -> bool:
        if self.host == socket.gethostname():
            return pid_alive(self.pid, self.pid_started)
        return (now or time.time()) - self.heartbeat < self.lease_seconds

    def where(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"

    def text(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_lock(path: Location) -> LockHolder | None:
    """The claim at ``path``; None if there is none, or if it is unreadable (claims are written whole, so such a
    file is not a launch's)."""
    try:
        return LockHolder(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None


def _create_local(path: Location, claim: LockHolder) -> bool:
    """Create the claim file only if none exists; False if another launch created it first."""
    target = path.as_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{claim.id[:8]}.tmp")
    tmp.write_text(claim.text())
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _remove_if(path: Location, claim_id: str) -> None:
    current = read_lock(path)
    if current is not None and current.id != claim_id:
        return
    try:
        if path.local:
            path.as_path().unlink(missing_ok=True)
        else:
            path.fs.delete_file(path.path)
    except (FileNotFoundError, OSError):
        pass


class SweepLock:
    """The live launch's claim: renewed every ``HEARTBEAT_SECONDS`` by a daemon thread, removed by ``release``."""

    def __init__(self, path: Location, claim: LockHolder, warn: Callable[[str], None]):
        self.path, self.claim, self.warn = path, claim, warn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="gnsweep-claim", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            current = read_lock(self.path)
            if current is not None and current.id != self.claim.id:
                self.warn(f"gnsweep: the sweep was claimed by another launch ({current.where()}); stopping this one")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.claim.heartbeat = time.time()
            try:
                self.path.write_text(self.claim.text())
            except OSError:
                pass  # storage hiccup: the next beat tries again, the lease outlasts several beats

    def release(self) -> None:
        self._stop.set()
        self._thread.join(5)
        _remove_if(self.path, self.claim.id)


def lock_sweep(sweep_dir: Location, name: str, warn: Callable[[str], None]) -> SweepLock:
    """Claim ``sweep_dir`` for this launch, taking over a stale claim; raises LockError naming where the sweep runs
    if another launch holds it."""
    path = Location.of(sweep_dir) / LOCK_FILE
    try:
        return _claim(path, name, warn)
    except OSError as e:
        raise LockError(f"--results: cannot write {path}: {str(e).splitlines()[0]}") from None


def _claim(path: Location, name: str, warn: Callable[[str], None]) -> SweepLock:
    for _ in range(3):
        current = read_lock(path)
        if current is not None and current.live():
            raise LockError(f"sweep {name!r} is already being launched ({current.where()}; claim {path}); wait "
                             f"for that launch to end or stop it, then launch again")
        if current is not None or path.exists():
            _remove_if(path, current.id if current else "")
        mine = LockHolder.mine()
        if path.local:
            if not _create_local(path, mine):
                continue  # another launch was quicker: look at its claim
        else:
            path.write_text(mine.text())
            if (read_lock(path) or mine).id != mine.id:
                continue
        return SweepLock(path, mine, warn)
    current = read_lock(path)
    raise LockError(f"sweep {name!r} is being claimed by another launch ({current.where() if current else '?'}; "
                     f"claim {path}); launch again later")
