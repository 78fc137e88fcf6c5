"""One launch per sweep: ``<results>/<name>/launch.json`` names the launch that runs the sweep (host, pid, since)
and carries a heartbeat that the live launch renews. Another launch of the same sweep, on this node or another one
sharing the results, is refused while the claim is live.

A claim is stale, and taken over, when its process is gone (same host: the pid is dead, or reused by a process that
started later) or, from another host, when its heartbeat is older than its lease: a launch killed with SIGKILL
blocks the next one for at most ``LEASE_SECONDS``, and not at all on its own host. A claim no launch writes (pid 0,
a heartbeat from the future) is stale too; a file that is not a claim at all is named as damaged and left alone.
Locally the claim is created with ``os.link`` (atomic, fails if the file exists, also on NFS); on an object store,
which has no create-if-absent through pyarrow, it is written and read back, and the heartbeat stops a launch whose
claim another one overwrote.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from results import store
from results.records import LaunchRecord, process_start
from results.terminal import terminal_text
from trainer.storage import Location

LOCK_FILE = store.LAUNCH_FILE
HEARTBEAT_SECONDS = 15.0
LEASE_SECONDS = 120.0


class LockError(Exception):
    """The sweep is being launched elsewhere (one line naming where)."""


def my_claim() -> LaunchRecord:
    now = time.time()
    return LaunchRecord(uuid.uuid4().hex, socket.gethostname(), os.getpid(), process_start(os.getpid()),
                        datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"), now, LEASE_SECONDS)


def _text(claim: LaunchRecord) -> str:
    return json.dumps(claim.to_json(), indent=2)


def _create_local(path: Location, claim: LaunchRecord) -> bool:
    """Create the claim file only if none exists; False if another launch created it first."""
    target = path.as_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{claim.id[:8]}.tmp")
    tmp.write_text(_text(claim))
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _remove_if(sweep_dir: Location, claim_id: str) -> None:
    """Remove the claim if it is ``claim_id``'s (a stale one being taken over, or this launch's own)."""
    current = store.read_launch(sweep_dir)
    if current is not None and current.id != claim_id:
        return
    path = store.launch_file(sweep_dir)
    try:
        if path.local:
            path.as_path().unlink(missing_ok=True)
        else:
            path.fs.delete_file(path.path)
    except (FileNotFoundError, OSError):
        pass


class SweepLock:
    """The live launch's claim: renewed every ``HEARTBEAT_SECONDS`` by a daemon thread, removed by ``release``."""

    def __init__(self, sweep_dir: Location, claim: LaunchRecord, warn: Callable[[str], None]):
        self.sweep_dir, self.claim, self.warn = sweep_dir, claim, warn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="gnsweep-claim", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                current = store.read_launch(self.sweep_dir)
            except store.DamagedResults:
                current = None  # garbled under this launch: its claim is written again below
            if current is not None and current.id != self.claim.id:
                self.warn(f"gnsweep: the sweep was claimed by another launch ({terminal_text(current.where())}); "
                          f"stopping this one")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.claim = replace(self.claim, heartbeat=time.time())
            try:
                store.launch_file(self.sweep_dir).write_text(_text(self.claim))
            except OSError:
                pass  # storage hiccup: the next beat tries again, the lease outlasts several beats

    def release(self) -> None:
        self._stop.set()
        self._thread.join(5)
        _remove_if(self.sweep_dir, self.claim.id)


def lock_sweep(sweep_dir: Location, name: str, warn: Callable[[str], None]) -> SweepLock:
    """Claim ``sweep_dir`` for this launch, taking over a stale claim; raises LockError naming where the sweep runs
    if another launch holds it, DamagedResults if ``launch.json`` is not a claim gnsweep wrote."""
    sweep_dir = Location.of(sweep_dir)
    try:
        return _claim(sweep_dir, name, warn)
    except OSError as e:
        raise LockError(f"--results: cannot write {store.launch_file(sweep_dir)}: {str(e).splitlines()[0]}") from None


def _claim(sweep_dir: Location, name: str, warn: Callable[[str], None]) -> SweepLock:
    path = store.launch_file(sweep_dir)
    for _ in range(3):
        current = store.read_launch(sweep_dir)
        if current is not None and current.live():
            raise LockError(f"sweep {name!r} is already being launched ({terminal_text(current.where())}; claim "
                            f"{path}); wait for that launch to end or stop it, then launch again")
        if current is not None:
            _remove_if(sweep_dir, current.id)
        mine = my_claim()
        if path.local:
            if not _create_local(path, mine):
                continue  # another launch was quicker: look at its claim
        else:
            path.write_text(_text(mine))
            if (store.read_launch(sweep_dir) or mine).id != mine.id:
                continue
        return SweepLock(sweep_dir, mine, warn)
    current = store.read_launch(sweep_dir)
    raise LockError(f"sweep {name!r} is being claimed by another launch "
                    f"({terminal_text(current.where()) if current else '?'}; claim {path}); launch again later")
