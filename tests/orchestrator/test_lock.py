"""The sweep claim that allows one launch per sweep: refused while live, taken over once stale. Real files, real
processes; "another host" is a claim written with another host name, as a node sharing the results would write it."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from orchestrator.launch.lock import LOCK_FILE, LockError, lock_sweep, my_claim
from results import store
from results.records import LaunchRecord, from_json_text, process_start
from trainer.storage import Location


def plant(sweep_dir, **fields) -> dict:
    claim = {"id": "f" * 32, "host": "node-b.example", "pid": 4242, "pid_started": None,
             "since": "2026-12-01T10:00:00+00:00", "heartbeat": time.time(), "lease_seconds": 120.0, **fields}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / LOCK_FILE).write_text(json.dumps(claim))
    return claim


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_live_claim_of_another_host_is_refused_naming_it(tmp_path):
    plant(tmp_path)
    before = (tmp_path / LOCK_FILE).read_bytes()
    with pytest.raises(LockError, match=r"host node-b\.example, pid 4242, since 2026-12-01T10:00:00\+00:00"):
        lock_sweep(Location.of(tmp_path), "s", print)
    assert (tmp_path / LOCK_FILE).read_bytes() == before


def test_expired_lease_of_another_host_is_taken_over(tmp_path):
    plant(tmp_path, heartbeat=time.time() - 3600)
    held = lock_sweep(Location.of(tmp_path), "s", print)
    try:
        mine = json.loads((tmp_path / LOCK_FILE).read_text())
        assert (mine["host"], mine["pid"]) == (socket.gethostname(), os.getpid())
        with pytest.raises(LockError, match=f"pid {os.getpid()}"):
            lock_sweep(Location.of(tmp_path), "s", print)  # and now it is live
    finally:
        held.release()
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize("case", ["dead pid", "reused pid"])
def test_stale_claim_on_this_host_is_taken_over(tmp_path, case):
    # a reused pid: a live process that started after the one the claim names (an unreadable claim is damaged,
    # not stale: tests/faults/test_hostile_sweep_files.py)
    pid, started = (dead_pid(), None) if case == "dead pid" else (os.getpid(), process_start(os.getpid()) - 1)
    plant(tmp_path, host=socket.gethostname(), pid=pid, pid_started=started, heartbeat=time.time())
    held = lock_sweep(Location.of(tmp_path), "s", print)
    try:
        mine = json.loads((tmp_path / LOCK_FILE).read_text())
        assert (mine["host"], mine["pid"], mine["pid_started"]) == (socket.gethostname(), os.getpid(),
                                                                    process_start(os.getpid()))
        assert mine["id"] == held.claim.id != "f" * 32
    finally:
        held.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_live_process_on_this_host_holds_its_claim_whatever_its_heartbeat(tmp_path):
    plant(tmp_path, host=socket.gethostname(), pid=os.getpid(), pid_started=process_start(os.getpid()),
          heartbeat=time.time() - 3600)
    with pytest.raises(LockError, match="already being launched"):
        lock_sweep(Location.of(tmp_path), "s", print)


def test_claim_record_round_trips(tmp_path):
    claim = my_claim()
    assert from_json_text(LaunchRecord, json.dumps(claim.to_json())) == claim and claim.live()


def test_unwritable_results_is_one_line_naming_the_claim(tmp_path):
    (tmp_path / "results").write_text("a file where the results directory should be")
    with pytest.raises(LockError, match=f"^--results: cannot write {tmp_path}/results/s/{LOCK_FILE}: "):
        lock_sweep(Location.of(tmp_path / "results" / "s"), "s", print)


def test_launch_whose_claim_was_taken_over_stops_itself(tmp_path, monkeypatch):
    """Its heartbeat finds another launch's claim (its own lease had run out, e.g. the machine slept): it warns and
    sends itself SIGTERM, which a launch turns into a clean stop; releasing leaves the other launch's claim alone."""
    import signal

    from orchestrator.launch import lock as lock_module

    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.05)
    received, warnings = [], []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        held = lock_sweep(Location.of(tmp_path), "s", warnings.append)
        other = plant(tmp_path)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        held.release()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM] and "claimed by another launch (host node-b.example" in warnings[0]
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == other
