"""``gnsweep launch`` as the launch tests drive it: a real process in a session of its own (so a SIGKILL reaches the
driver and every Ray process it started), the Ray workers of a trial, and readers that poll the results while a
sweep writes them. No mocks: faults are signals, files and file systems.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tests.support.cli import GNSWEEP, process_env

POLL_S = 0.05
TABLES_POLL_S = 0.15  # a read of both tables costs about 9 ms of CPU: every 50 ms it took a fifth of a core


# --- processes -------------------------------------------------------------------------------------------------

def wait_until(condition, proc: subprocess.Popen, what: str, timeout: float, tail=lambda: ""):
    """Poll ``condition()`` every 50 ms until it returns something true, and return that. Fails at once when
    ``proc`` exits before (no waiting out the timeout on a dead process), or after ``timeout`` seconds; the message
    ends with ``tail()`` (what the process printed)."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if proc.poll() is not None:
            command = " ".join(map(str, proc.args)) if isinstance(proc.args, (list, tuple)) else str(proc.args)
            raise AssertionError(f"{command[:160]} exited ({proc.returncode}) before {what}\n{tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s\n{tail()}")
        time.sleep(POLL_S)
    return found


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a live process, None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[1]), int(fields[3]))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid``: a launch started with ``start_new_session`` and everything it spawned
    (Ray's gcs, raylet, dashboard agents and workers put themselves in new process groups, not new sessions)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[2] == sid:
                pids.append(int(entry))
    return pids


def kill_session(sid: int, timeout: float = 30) -> int:
    """SIGKILL the process group ``sid`` and then every process left in the session; returns how many processes
    the session had. Raises if some survive ``timeout`` seconds."""
    found = len(session_pids(sid))
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while True:
        left = session_pids(sid)
        if not left:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of session {sid} survive SIGKILL: "
                                 f"{[(p, _cmdline(p)[:80]) for p in left]}")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def trial_workers(sid: int, trial_key: str) -> list[int]:
    """PIDs of the Ray worker running ``trial_key`` in session ``sid``: Tune runs each function trial in a
    ``ray::ImplicitFunc`` actor whose working directory is ``.../working_dirs/<trial key>``."""
    found = []
    for pid in session_pids(sid):
        if not _cmdline(pid).startswith("ray::ImplicitFunc"):
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if Path(cwd).name == trial_key:
            found.append(pid)
    return found


class Launch:
    """``gnsweep launch`` in a session of its own, output to files (so polling never blocks on a full pipe).
    ``extra_env`` adds to the test environment (``cli.fake_trainer_env()`` trains without TensorFlow); ``ray``, a
    ``local_ray.LocalRay``, makes it join that cluster with ``--address`` instead of starting its own Ray."""

    def __init__(self, spec: Path, results: Path, *extra: str, cwd: Path, wrap: list[str] | None = None,
                 extra_env: dict | None = None, ray=None):
        self.results = results
        self.out = cwd / f"launch-{time.monotonic_ns()}.out"
        self.err = self.out.with_suffix(".err")
        joins = ["--address", ray.address] if ray is not None else []
        extra_env = {**(ray.join_env if ray is not None else {}), **(extra_env or {})}
        cmd = [*(wrap or []), *GNSWEEP, "launch", str(spec), "--results", str(results), "--no-dashboard", *joins,
               *extra]
        self.started = time.monotonic()
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=process_env(**extra_env), stdout=out, stderr=err,
                                         start_new_session=True)
        self.sid = self.proc.pid
        self.ray_sid = ray.sid if ray is not None else self.sid  # the session the trials' workers run in

    def workers(self, trial_key: str) -> list[int]:
        """PIDs of the Ray worker running ``trial_key`` for this launch."""
        return trial_workers(self.ray_sid, trial_key)

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    def tail(self, n: int = 3000) -> str:
        return f"--- stdout\n{self.stdout[-n:]}\n--- stderr\n{self.stderr[-n:]}"

    def wait(self, timeout: float = 400) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"launch did not finish in {timeout} s\n{self.tail()}") from None
        # Ray's processes stop with the driver; give them a moment (seconds on a loaded machine), then record and
        # kill what is left
        deadline = time.monotonic() + 10
        while session_pids(self.sid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.left_behind = [_cmdline(p)[:60] for p in session_pids(self.sid)]
        kill_session(self.sid)
        return rc

    def wait_for(self, condition, what: str, timeout: float = 300):
        """Poll ``condition()`` every 50 ms until it is true (and return it); fail as soon as the launch exits first,
        or when time runs out (killing the launch)."""
        try:
            return wait_until(condition, self.proc, what, timeout, tail=self.tail)
        except AssertionError:
            self.kill()
            raise

    def kill(self) -> int:
        """SIGKILL the driver's process group and whatever Ray left in its session; returns how many processes
        there were."""
        n = kill_session(self.sid)
        self.proc.wait(10)
        return n


# --- results ---------------------------------------------------------------------------------------------------

@contextmanager
def held(sweep_dir: Path):
    """The sweep claimed by this process for the block, as a running launch holds it (``launch.json``, its
    heartbeat renewed): what tells ``status`` that trials reading "running" are run."""
    from orchestrator.launch.lock import lock_sweep
    from trainer.storage import Location

    claim = lock_sweep(Location.of(sweep_dir), Path(sweep_dir).name, lambda line: None)
    try:
        yield claim
    finally:
        claim.release()


def epoch_rows(sweep_dir: Path, trial_key: str | None = None) -> dict[str, int]:
    """The epoch rows recorded so far, as read with plain pandas: ``<trial_key>-e<epoch>`` -> when it was recorded
    (ns). A row rewritten (an epoch trained again) would be recorded anew."""
    d = sweep_dir / "epochs"
    if not d.is_dir() or not any(p.suffix == ".parquet" and not p.name.startswith(".") for p in d.iterdir()):
        return {}
    rows = pd.read_parquet(d, columns=["trial_key", "epoch", "recorded_at"])
    if trial_key:
        rows = rows[rows["trial_key"] == trial_key]
    return {f"{k}-e{e:04d}": t.value for k, e, t in zip(rows["trial_key"], rows["epoch"], rows["recorded_at"])}


def trials_table(sweep_dir: Path) -> pd.DataFrame:
    d = sweep_dir / "trials"
    if not d.is_dir() or not any(p.suffix == ".parquet" and not p.name.startswith(".") for p in d.iterdir()):
        return pd.DataFrame(columns=["trial_key", "status", "attempts", "epochs"])
    return pd.read_parquet(d)


def statuses(sweep_dir: Path) -> dict[str, str]:
    t = trials_table(sweep_dir)
    return dict(zip(t["trial_key"], t["status"]))


def assert_one_row_per_epoch(epochs: pd.DataFrame, expected: dict[str, int]) -> None:
    """Exactly epochs 1..n of each trial, no duplicate, no gap, no other trial."""
    assert not epochs.duplicated(["trial_key", "epoch"]).any(), epochs[["trial_key", "epoch", "attempt"]]
    got = {k: sorted(g["epoch"].tolist()) for k, g in epochs.groupby("trial_key")}
    assert got == {k: list(range(1, n + 1)) for k, n in expected.items()}, got


class ResultsPoller(threading.Thread):
    """Reads ``pd.read_parquet(<sweep>/epochs)`` and ``<sweep>/trials`` every 150 ms while a sweep writes them,
    recording every failure and whether the row count ever went down or a (trial_key, epoch) appeared twice.
    Also records every write of the watched trials' checkpoint ``latest`` pointers, checked every 50 ms (a trial
    restarted from scratch would write ``epoch-0001`` again)."""

    def __init__(self, sweep_dir: Path, watch_latest: tuple[str, ...] = ()):
        super().__init__(daemon=True)
        self.sweep_dir = sweep_dir
        self.watch_latest = watch_latest
        self.reads = 0
        self.counts: list[int] = []
        self.failures: list[str] = []
        self.latest: dict[str, list[str]] = {k: [] for k in watch_latest}  # each write of 'latest', in order
        self._latest_mtime: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        next_read = 0.0
        while not self._halt.is_set():
            self.poll_latest()
            if time.monotonic() >= next_read:
                next_read = time.monotonic() + TABLES_POLL_S
                self.poll_tables()
            time.sleep(POLL_S)

    def poll_latest(self) -> None:
        for key in self.watch_latest:
            path = self.sweep_dir / "checkpoints" / key / "latest"
            try:
                mtime = path.stat().st_mtime_ns
                if mtime != self._latest_mtime.get(key):
                    self._latest_mtime[key] = mtime
                    self.latest[key].append(path.read_text().strip())
            except FileNotFoundError:
                continue

    def poll_tables(self) -> None:
        epochs_dir, trials_dir = self.sweep_dir / "epochs", self.sweep_dir / "trials"
        if not epoch_rows(self.sweep_dir):
            return
        try:
            epochs = pd.read_parquet(epochs_dir)
            if trials_dir.is_dir():
                pd.read_parquet(trials_dir)
        except Exception as e:  # noqa: BLE001 - any failure of a reader is what this records
            self.failures.append(f"{type(e).__name__}: {e}")
            return
        self.reads += 1
        if epochs.duplicated(["trial_key", "epoch"]).any():
            self.failures.append(f"duplicate rows after {self.reads} reads")
        if self.counts and len(epochs) < self.counts[-1]:
            self.failures.append(f"row count went down from {self.counts[-1]} to {len(epochs)}")
        self.counts.append(len(epochs))

    def stop(self) -> "ResultsPoller":
        self._halt.set()
        self.join(10)
        return self
