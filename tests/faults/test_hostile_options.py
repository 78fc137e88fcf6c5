"""Hostile command-line values: every address, path and name a user can type is refused before any work starts,
in one line naming the option, exit status 2, no traceback, and nothing written."""
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.launch.address import AddressError, check_address

ROOT = Path(__file__).resolve().parents[2]
GNSWEEP = [sys.executable, "-m", "orchestrator.cli"]
SPEC = """name: opts
dataset: builtin:digits
model: resnet8
train: {epochs: 1, base_batch: 32}
studies: {s: {norm: [bn], batch_size: [32]}}
resources: {cpu: 1}
"""


def dead_port() -> int:
    """A local port where nothing listens (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def run(workdir: Path, *args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": str(workdir / "ray-tmp"), **(env or {})}
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run([*GNSWEEP, *map(str, args)], cwd=workdir, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The one error line of a refused command, after checking exit status 2 and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gnsweep: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def nothing_written(workdir: Path) -> None:
    assert sorted(p.name for p in workdir.iterdir()) == ["spec.yaml"], sorted(workdir.iterdir())


# --- Ray addresses ------------------------------------------------------------------------------------------------

ADDRESSES = [
    ("dead-port", lambda: f"127.0.0.1:{dead_port()}", "cannot connect"),
    ("no-port", lambda: "127.0.0.1", "not a Ray cluster address"),
    ("port-not-a-number", lambda: "head:port", "not a Ray cluster address"),
    ("port-too-large", lambda: "127.0.0.1:99999", "not a Ray cluster address"),
    ("http-url", lambda: "http://127.0.0.1:8265", "not a Ray cluster address"),
    ("only-colons", lambda: ":::", "not a Ray cluster address"),
    ("spaces", lambda: "my head:6379", "not a Ray cluster address"),
    ("unknown-host", lambda: "no-such-host.invalid:6379", "cannot connect"),
    ("client-dead-port", lambda: f"ray://127.0.0.1:{dead_port()}", "cannot connect"),
]


@pytest.mark.parametrize("case,address,says", ADDRESSES, ids=[c[0] for c in ADDRESSES])
def test_an_address_where_no_ray_answers_is_one_line(case, address, says):
    value = address()
    with pytest.raises(AddressError) as e:
        check_address(value, "RAY_ADDRESS")
    message = str(e.value)
    assert message.startswith(("RAY_ADDRESS " + value, f"RAY_ADDRESS {value!r}")) and says in message, message
    assert "\n" not in message


CLI_ADDRESSES = [("RAY_ADDRESS", "dead-port", False), ("RAY_ADDRESS", "port-not-a-number", False),
                 ("--address", "dead-port", False), ("--address", "http-url", True), ("RAY_ADDRESS", "dead-port", True)]


@pytest.mark.parametrize("how,case,dry_run", CLI_ADDRESSES)
def test_the_launch_refuses_such_an_address_before_anything_starts(how, case, dry_run, workdir):
    """RAY_ADDRESS on a dead port hung the launch silently (ray.init waits); a malformed one gave a traceback."""
    _, address, says = next(c for c in ADDRESSES if c[0] == case)
    value = address()
    args = ["launch", "spec.yaml", "--results", "results", "--data-dir", "data", *(["--dry-run"] if dry_run else [])]
    if how == "--address":
        proc = run(workdir, *args, "--address", value, env={"RAY_ADDRESS": None})
    else:
        proc = run(workdir, *args, env={"RAY_ADDRESS": value})
    refused(proc, f"{how} ", value, says)
    nothing_written(workdir)


def test_a_port_that_answers_but_is_no_ray_cluster_is_refused_within_the_timeout():
    """Something listening that is not a Ray GCS (ray.init waited past two minutes on it)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()
    accepted = []

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(AddressError, match="something listens there, but no Ray cluster answered within 2 s"):
            check_address(f"127.0.0.1:{server.getsockname()[1]}", "RAY_ADDRESS", answer_seconds=2)
        assert time.monotonic() - started < 30
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.slow
def test_a_live_cluster_passes_the_check():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        assert check_address(cluster.address, "--address") == cluster.address
    finally:
        cluster.shutdown()
