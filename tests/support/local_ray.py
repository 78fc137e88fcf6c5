"""One local Ray cluster that several launches join with ``--address``, instead of each starting and stopping its own
(seconds each on a loaded 2-core machine): ``ray start --head --block`` in a session of its own, under a private temp
dir so that no plain ``ray.init()`` elsewhere on the machine finds it (/tmp/ray/ray_current_cluster), stopped by
killing that session. A launch that joins it starts no Ray processes of its own: tests that kill the driver with its
Ray, watch what a launch's own Ray exposes, or count Ray's processes after the exit start their own.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli import process_env
from tests.support.launches import kill_session


def ray_tmpdir() -> str:
    """A new private Ray temp dir, short: Ray's Unix socket paths under it must stay under ~107 characters."""
    return tempfile.mkdtemp(prefix="gnray-", dir="/tmp")


@contextmanager
def private_ray_tmp():
    """``RAY_TMPDIR`` set to a new private temp dir and ``RAY_ADDRESS`` unset in this process for the block, so that a
    ``ray.cluster_utils.Cluster`` started in it (which records its address in ``$RAY_TMPDIR/ray/ray_current_cluster``)
    and the launches started with this environment join neither the user's Ray nor another test's; yields the dir,
    removed after."""
    import pytest

    tmp = ray_tmpdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", tmp)
        mp.delenv("RAY_ADDRESS", raising=False)
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _ray_command() -> list[str]:
    script = Path(sys.executable).parent / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def token_file() -> Path:
    """Where Ray keeps this machine's token, which the test clusters check."""
    return Path.home() / ".ray" / "auth_token"


def ray_token() -> str:
    return token_file().read_text().strip()


def request(url: str, token: str | None = None) -> urllib.request.Request:
    """A GET of ``url``, with Ray's token when one is given."""
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})


def http_json(url: str, token: str, timeout: float = 20):
    """The JSON a Ray HTTP route (the dashboard's, the Jobs API's) answers a GET with Ray's token."""
    with urllib.request.urlopen(request(url, token), timeout=timeout) as r:
        return json.loads(r.read())


def ensure_token() -> None:
    """Ray's token (``~/.ray/auth_token``) made with ``ray get-auth-token --generate`` where the machine has none yet,
    once, before the test workers start. Ray otherwise writes it at the first ``ray.init`` that starts a cluster: on a
    fresh machine the shared cluster's ``ray start`` (which never makes one) would find none, and launches started at
    once by several workers would each write one, the last replacing the token of the clusters started before it."""
    if token_file().is_file():
        return
    subprocess.run([*_ray_command(), "get-auth-token", "--generate"], env=process_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class LocalRay:
    """A running single-node Ray cluster: ``address`` to join, ``sid`` the session its processes (and the trials'
    workers) run in, ``session`` its session folder (logs, metrics port). Its nodes export metrics every second
    (Ray's default is 10 s), so that a test sees the gauges of a trial a few seconds long.

    Ray's token guards it (it listens on the machine's address). A driver that joins an existing cluster uses the
    token only with ``RAY_AUTH_MODE=token`` (Ray 2.60 turns it on by itself only for a cluster ``ray.init`` starts),
    so a launch that joins gets ``join_env``."""

    join_env = {"RAY_AUTH_MODE": "token"}

    def __init__(self, num_cpus: int = 2, timeout: float = 120, env: dict | None = None, dashboard: bool = False):
        """``env`` adds to the environment of the cluster's processes, its workers included; ``dashboard`` starts
        Ray's dashboard (and with it the Jobs API) on 127.0.0.1, at ``dashboard_url``."""
        from ray._private.services import get_node_ip_address

        self.tmp = Path(ray_tmpdir())
        port = _free_port()
        self.address = f"{get_node_ip_address()}:{port}"
        self.log = self.tmp / "ray-start.log"
        dashboard_port = _free_port()
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}" if dashboard else None
        # the job agent's port too: Ray's default (52365) is held by the agent of any other cluster on the machine
        shown = (["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
                  f"--dashboard-agent-listen-port={_free_port()}"] if dashboard else ["--include-dashboard=false"])
        cmd = [*_ray_command(), "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}", "--num-gpus=0",
               *shown, "--disable-usage-stats", f"--temp-dir={self.tmp}", "--block"]
        env = process_env(RAY_TMPDIR=str(self.tmp), RAY_metrics_report_interval_ms="1000", **self.join_env,
                          **(env or {}))
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.sid = self.proc.pid
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text()
                self.stop()
                raise RuntimeError(f"ray start did not come up (exit {self.proc.returncode}):\n{text[-3000:]}")
            time.sleep(0.2)

    def record(self) -> dict:
        """What another process needs to use and stop this cluster (``attach``)."""
        return {"address": self.address, "sid": self.sid, "tmp": str(self.tmp)}

    @classmethod
    def attach(cls, record: dict) -> "LocalRay":
        """The cluster another process of the test run started (``record()``'s dict)."""
        ray = cls.__new__(cls)
        ray.address, ray.sid, ray.tmp, ray.proc = record["address"], record["sid"], Path(record["tmp"]), None
        ray.log = ray.tmp / "ray-start.log"
        return ray

    @property
    def session(self) -> Path:
        return self.tmp / "session_latest"

    def stop(self) -> None:
        kill_session(self.sid)
        if self.proc is not None:
            self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)
