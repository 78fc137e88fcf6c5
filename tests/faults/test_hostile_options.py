"""Hostile command-line values: every address, path and name a user can type is refused before any work starts,
in one line naming the option, exit status 2, no traceback, and nothing written."""
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from orchestrator.launch.address import AddressError, check_address
from tests.support.cli import GNSWEEP, process_env
from tests.support.local_ray import ray_token

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
    environment = {k: v for k, v in process_env(**{"RAY_TMPDIR": str(workdir / "ray-tmp"), **(env or {})}).items()
                   if v is not None}
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


@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_a_launch_refuses_ray_client_and_its_dry_run_goes_on_to_the_address(how, workdir):
    """Under Ray Client, Tune's loop runs on the head: a Ctrl-C of the launch was only noted and the sweep ran to its
    end, its progress lines and results on the head. A launch is refused before it connects; a dry run, which only
    reads the cluster's resources, goes on to the address (here a dead port)."""
    value = f"ray://127.0.0.1:{dead_port()}"
    args = ["launch", "spec.yaml", "--results", "results", "--data-dir", "data"]
    flags, env = (["--address", value], {"RAY_ADDRESS": None}) if how == "--address" else ([], {"RAY_ADDRESS": value})
    refused(run(workdir, *args, *flags, env=env), f"{how} {value!r}: ray:// is Ray Client", "`ray job submit`",
            "--dry-run accepts ray://")
    nothing_written(workdir)
    refused(run(workdir, *args, "--dry-run", *flags, env=env), f"{how} {value}: cannot connect")
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
@pytest.mark.parametrize("auto", [False, True], ids=["host-port", "auto"])
def test_a_live_cluster_passes_the_check(auto, workdir, shared_ray):
    """The shared cluster, joined with its token: the check lets the launch through to ``ray.init``. ``auto`` (the
    README's cluster command) finds it through its temp dir's record, as on a head node after ``ray start``."""
    proc = run(workdir, "launch", "spec.yaml", "--dry-run", "--address", "auto" if auto else shared_ray.address,
               env={"RAY_ADDRESS": None, "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None, **shared_ray.join_env,
                    **({"RAY_TMPDIR": str(shared_ray.tmp)} if auto else {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wall time on the connected cluster" in proc.stdout and proc.stderr == "", proc.stdout + proc.stderr


TOKENS = [  # what the launch's shell holds, whether it is a dry run, and what its one line says
    ({"RAY_AUTH_MODE": "disabled"}, False, "checks tokens and this launch sent none (RAY_AUTH_MODE is disabled): "
                                           "set RAY_AUTH_MODE=token"),
    ({"RAY_AUTH_MODE": None}, True, "checks tokens and this launch sent none (RAY_AUTH_MODE is unset)"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32}, False,
     "refused the one from the RAY_AUTH_TOKEN variable: it is not this cluster's"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/nonexistent/gnsweep-token"}, False,
     "RAY_AUTH_MODE=token, but Ray finds no token to send (/nonexistent/gnsweep-token holds none)"),
]


@pytest.mark.slow
@pytest.mark.parametrize("env,dry_run,says", TOKENS, ids=["auth-disabled", "auth-unset", "wrong-token", "no-token"])
def test_a_cluster_that_refuses_the_token_is_one_line(env, dry_run, says, workdir, shared_ray):
    """The shared cluster checks tokens. A launch that sent none or a wrong one was told that no Ray cluster answered
    within 15 s (the refusal comes at once); one in token mode with no token anywhere exited 1 and printed nothing
    (Ray's client ends the process, its message in gnsweep's native log)."""
    args = ["launch", "spec.yaml", "--results", "results", "--data-dir", "data", *(["--dry-run"] if dry_run else [])]
    proc = run(workdir, *args, "--address", shared_ray.address,
               env={"RAY_ADDRESS": None, "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None, **env})
    line = refused(proc, f"--address {shared_ray.address}: ", says, "`ray get-auth-token` on its head prints")
    assert ray_token() not in line
    nothing_written(workdir)


@pytest.mark.parametrize("dry_run", [False, True], ids=["launch", "dry-run"])
def test_a_local_launch_whose_token_file_cannot_be_read_is_one_line(dry_run, workdir):
    """A RAY_AUTH_TOKEN_PATH that names no readable token: ray.init's traceback (exit 1) once the plan was printed
    and the sweep's record written; the dry run said nothing of it."""
    args = ["launch", "spec.yaml", "--results", "results", "--data-dir", "data", *(["--dry-run"] if dry_run else [])]
    missing = workdir / "no-token"
    proc = run(workdir, *args, env={"RAY_ADDRESS": None, "RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None,
                                    "RAY_AUTH_TOKEN_PATH": str(missing)})
    refused(proc, f"RAY_AUTH_TOKEN_PATH {missing}: cannot be read or holds no token")
    nothing_written(workdir)


# --- folder options -------------------------------------------------------------------------------------------------

def write_sweep(sweep: Path) -> None:
    """A finished sweep of one trial, through the store's own writers."""
    from datetime import datetime, timezone

    from results import store
    from results.records import EpochRow, SweepRecord, TrialRow

    base = {"sweep": sweep.name, "trial_key": "bn-b32-s0", "model": "resnet8", "norm": "bn", "batch_size": 32,
            "groups": None, "channels_per_group": None, "seed": 0}
    now = datetime.now(timezone.utc)
    store.write_sweep(sweep, SweepRecord(sweep.name, {"train.epochs": 1}, ("bn-b32-s0",), {}))
    store.write_epoch_row(sweep, EpochRow(**base, epoch=1, train_loss=1.0, train_err=40.0, val_loss=1.1, val_err=45.0,
                                          val_err_top5=10.0, lr=0.1, epoch_seconds=2.0, images_per_second=700.0,
                                          attempt=0, node="n", recorded_at=now))
    store.write_trial_row(sweep, TrialRow(**base, status="completed", epochs=1, final_val_err=45.0, best_val_err=45.0,
                                          error=None, studies=("single",), attempts=1, started_at=now, ended_at=now,
                                          train_seconds=2.0))


@pytest.fixture
def locked_dir(tmp_path):
    """A folder this process cannot write in: read-only by mode, or immutable where the tests run as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("no way to make a folder unwritable here (root without chattr)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


FOLDER_CASES = [  # (id, command line with {file}, {locked}, {spec}; the option named; what the line says)
    ("launch-results-file", "launch {spec} --results {file}", "--results", "not a folder (a file is there)"),
    ("launch-results-under-file", "launch {spec} --results {file}/sweeps", "--results", "is a file)"),
    ("launch-results-locked", "launch {spec} --results {locked}/results", "--results", "cannot create it"),
    ("launch-results-bad-uri-option", "launch {spec} --results s3://bucket/r?colour=red", "--results",
     "cannot open this location"),
    ("launch-results-unknown-scheme", "launch {spec} --results nope://bucket/r", "--results",
     "cannot open this location"),
    ("launch-results-no-bucket", "launch {spec} --results s3://", "--results", "names no bucket"),
    ("launch-results-empty", "launch {spec} --results ''", "--results", "an empty path"),
    ("dry-run-results-file", "launch {spec} --dry-run --results {file}", "--results", "not a folder"),
    ("launch-data-dir-file", "launch {spec} --data-dir {file}", "--data-dir", "not a folder"),
    ("calibrate-results-file", "calibrate {spec} --results {file}", "--results", "not a folder"),
    ("calibrate-results-locked", "calibrate {spec} --results {locked}", "--results", "cannot write in it"),
    ("calibrate-data-dir-file", "calibrate {spec} --data-dir {file}/d", "--data-dir", "is a file)"),
    ("status-results-file", "status s --results {file}", "--results", "not a folder"),
    ("status-results-bad-uri", "status s --results nope://x", "--results", "cannot open this location"),
    ("watch-results-file", "status s --watch --results {file}", "--results", "not a folder"),
    ("report-results-file", "report s --results {file}", "--results", "not a folder"),
    ("report-out-file", "report s --out {file}", "--out", "not a folder (a file is there)"),
    ("report-out-locked", "report s --out {locked}/report", "--out", "cannot create it"),
    ("report-out-uri", "report s --out s3://bucket/report", "--out", "must be a local folder here, not a URI"),
    ("prepare-out-file", "data prepare digits --out {file}", "--out", "not a folder"),
    ("prepare-out-locked", "data prepare digits --out {locked}/digits", "--out", "cannot create it"),
    ("download-out-file", "data download --timeout 5 --out {file}", "--out", "not a folder"),
    ("download-out-locked", "data download --timeout 5 --out {locked}", "--out", "cannot write in it"),
]


@pytest.mark.parametrize("case,line,option,says", FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_a_folder_option_that_cannot_be_one_is_refused_before_any_work(case, line, option, says, workdir,
                                                                      locked_dir):
    """A file where a folder is expected, a folder nobody may write in, a malformed URI: each is one line naming the
    option, exit 2, and nothing written (before: tracebacks, half-made folders, or work done first)."""
    import shlex

    from typer.testing import CliRunner

    from orchestrator.cli import app

    (workdir / "a-file").write_text("not a folder\n")
    write_sweep(workdir / "results" / "s")  # status and report would succeed but for the option
    args = shlex.split(line.format(spec=workdir / "spec.yaml", file=workdir / "a-file", locked=locked_dir))
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gnsweep: {option} "), result.stderr
    assert says is None or says in lines[0], lines[0]
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before
