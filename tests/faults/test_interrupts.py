"""A launch's life with others around it, on real local Ray: what it exposes to the network while it runs (its
dashboard opened to the network on purpose, then on loopback as by default), a second launch of the same sweep,
Ctrl-C (SIGINT to the launch's process group, as a terminal sends it), SIGTERM (as ``kill`` sends it), and the
relaunches that resume what the signals stopped.

The signalled launches start their own Ray (what they expose and what outlives them are the point). The trials
train with the fake trainer (tests/support/fake_trainer.py: real Ray Tune, results writer and Parquet, no
TensorFlow), told to hang in the epoch after the ones wanted, so each signal lands while every trial is mid-epoch,
whatever the machine's load; that a real Keras trial resumes from its checkpoint is
tests/faults/test_trial_failures.py's."""
import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from tests.support.cli import fake_trainer_env, gnsweep, write_spec
from tests.support.launches import Launch, assert_one_row_per_epoch, epoch_rows, session_pids, statuses
from tests.support.local_ray import http_json, ray_token, request

EPOCHS = 3
KEYS = ("bn-b64-s0", "gn-b64-g8-s0")
STACK_DUMP = re.compile(r"Traceback|\*\*\* SIGTERM received|Stack trace|Tuner\.restore|Aborted")


def listening_sockets(sid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of the processes of session ``sid``."""
    import ray  # noqa: F401 - puts Ray's vendored psutil on the path
    import psutil

    found = []
    for pid in session_pids(sid):
        try:
            proc = psutil.Process(pid)
            for c in proc.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.append((c.laddr.ip, c.laddr.port, " ".join(proc.cmdline()[:2])[-60:]))
        except psutil.Error:
            continue
    return found


def loopback(address: str) -> bool:
    return address.removeprefix("::ffff:") in ("127.0.0.1", "::1")


def routable_address() -> str:
    """This machine's own address on a network interface (what another machine would connect to)."""
    import ray  # noqa: F401
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return "127.0.0.1"


def http_status(url: str, token: str | None = None) -> int | None:
    """The HTTP status of a GET of ``url``; None when nothing answers there."""
    try:
        with urllib.request.urlopen(request(url, token), timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:
        return None


def healthy(url: str, timeout: float = 30) -> int | None:
    """``url``'s status once it is 200, else the last one within ``timeout``: the dashboard's GCS health check
    answers 503 while its own query to the GCS times out, which a loaded machine makes happen now and then."""
    deadline = time.monotonic() + timeout
    while (status := http_status(url)) != 200 and status is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    return status


def trial_actor_names(port: int, token: str, timeout: float = 180) -> list[str]:
    """The repr names of the sweep's trial actors, as the dashboard's actor table shows them, once one is there."""
    url = f"http://127.0.0.1:{port}/api/v0/actors?detail=1"
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request(url, token), timeout=10) as r:
                actors = json.loads(r.read())["data"]["result"]["result"]
        except urllib.error.HTTPError as e:  # the state API answers 500 now and then while the cluster is busy
            if e.code < 500:
                raise
            last, actors = f"HTTP {e.code}: {e.read()[:300]!r}", []
        # Tune's function trainable; Ray 2.60 names its class wrap_function.<locals>.ImplicitFunc, which the state
        # API's exact-match filter does not find by the short name: filtered here instead
        names = sorted(a.get("repr_name") or "" for a in actors if a.get("class_name", "").endswith("ImplicitFunc"))
        if names and all(names):
            return names
        time.sleep(0.5)
    raise AssertionError(f"no named trial actor within {timeout}s (last: {last})")


def mid_trial(sweep_dir: Path, before: dict):
    """True once an epoch row that was not in ``before`` appears while some trial still has epochs to go."""
    def condition():
        rows = epoch_rows(sweep_dir)
        return bool(set(rows) - set(before)) and len(rows) < len(KEYS) * EPOCHS
    return condition


@pytest.fixture(scope="module")
def stopped_twice(tmp_path_factory, digits_dataset, shared_ray):
    root = tmp_path_factory.mktemp("interrupts")
    spec = write_spec(root / "stop.yaml", digits_dataset, name="stop", epochs=EPOCHS, retries=1,
                      studies="a: {norm: [bn, gn], batch_size: [64]}")
    results = root / "results"
    sweep_dir = results / "stop"
    story = {"root": root, "sweep_dir": sweep_dir, "spec": spec}

    # (1) the dashboard opened to the network on purpose; Ctrl-C once the first epoch is in (trials hang in epoch 2)
    first = Launch(spec, results, "--dashboard", "--dashboard-host", "0.0.0.0", cwd=root,
                   extra_env=fake_trainer_env(hang={"*": 2}))
    try:
        first.wait_for(mid_trial(sweep_dir, {}), "a first epoch")
        story["sockets"] = listening_sockets(first.sid)
        port = int(re.search(r"Ray dashboard: http://[^:]+:(\d+)", first.stdout)[1])
        url = f"http://{routable_address()}:{port}/api/version"
        token = ray_token()
        story.update(dashboard_port=port, without_token=http_status(url), with_token=http_status(url, token))
        claim = sweep_dir / "launch.json"
        story["claim"] = json.loads(claim.read_text()) if claim.exists() else {}
        files, plan = epoch_rows(sweep_dir), (sweep_dir / "sweep.json").stat().st_mtime_ns
        story["second"] = gnsweep("launch", spec, "--results", results, "--no-dashboard", cwd=root)
        story["second_changed"] = [what for what, same in [
            ("epoch rows", {n: t for n, t in epoch_rows(sweep_dir).items() if n in files} == files),
            ("sweep.json", (sweep_dir / "sweep.json").stat().st_mtime_ns == plan),
            ("claim", (json.loads(claim.read_text()) if claim.exists() else {}).get("id") == story["claim"].get("id"))]
            if not same]
        story["running_at_sigint"] = {k for k, s in statuses(sweep_dir).items() if s == "running"}
        os.killpg(first.sid, signal.SIGINT)
        story["rc1"] = first.wait(120)
    finally:
        first.kill()
    story.update(first=first, statuses1=statuses(sweep_dir), files1=epoch_rows(sweep_dir),
                 claim_left1=(sweep_dir / "launch.json").exists())

    # (2) the relaunch resumes, its dashboard where it is by default; SIGTERM to the driver once it recorded a new
    # epoch (trials hang in epoch 3)
    second = Launch(spec, results, "--dashboard", cwd=root, extra_env=fake_trainer_env(hang={"*": 3}))
    try:
        second.wait_for(mid_trial(sweep_dir, story["files1"]), "an epoch after the relaunch")
        url = urlparse(re.search(r"Ray dashboard: (\S+)", second.stdout)[1])
        story.update(default_dashboard=url.hostname,
                     healthz=healthy(f"http://127.0.0.1:{url.port}/api/gcs_healthz"),
                     beyond_loopback=http_status(f"http://{routable_address()}:{url.port}/api/gcs_healthz"),
                     version=http_json(f"http://127.0.0.1:{url.port}/api/version", token),
                     actors=trial_actor_names(url.port, token))
        story["running_at_sigterm"] = {k for k, s in statuses(sweep_dir).items() if s == "running"}
        os.kill(second.proc.pid, signal.SIGTERM)
        story["rc2"] = second.wait(120)
    finally:
        second.kill()
    story.update(sigterm=second, statuses2=statuses(sweep_dir), files2=epoch_rows(sweep_dir))

    # (3) and once more, to the end (on the shared Ray: what this one leaves behind is not the question)
    third = Launch(spec, results, cwd=root, ray=shared_ray, extra_env=fake_trainer_env())
    story.update(rc3=third.wait(), third=third)
    return story


@pytest.mark.slow
def test_every_listening_socket_is_on_loopback_or_behind_the_token(stopped_twice):
    sockets = stopped_twice["sockets"]
    assert len(sockets) >= 6, sockets  # gcs, raylet, agents, workers, driver: Ray was running
    open_ = [s for s in sockets if not loopback(s[0])]
    assert [(a, p) for a, p, _ in open_] == [("0.0.0.0", stopped_twice["dashboard_port"])], sockets
    assert stopped_twice["without_token"] in (401, 403) and stopped_twice["with_token"] == 200


@pytest.mark.slow
def test_the_default_dashboard_binds_to_loopback_and_names_the_trial_actors(stopped_twice):
    """Without --dashboard-host the relaunch's dashboard answers on 127.0.0.1 only, with Ray's token, and its actor
    table names each trial's actor by the trial (what a user looks for there)."""
    assert stopped_twice["default_dashboard"] == "127.0.0.1"
    assert stopped_twice["healthz"] == 200 and "ray_version" in stopped_twice["version"]
    if not routable_address().startswith("127."):
        assert stopped_twice["beyond_loopback"] is None, "the dashboard answered on a routable address"
    assert stopped_twice["actors"] and set(stopped_twice["actors"]) <= set(KEYS), stopped_twice["actors"]


@pytest.mark.slow
def test_a_dashboard_on_every_interface_is_warned_about(stopped_twice):
    """With Ray's token on (2.60's default), a dashboard beyond loopback starts, with a warning saying what guards it
    (that Ray's own servers stay on loopback is the listening sockets' test above)."""
    assert ("warning: the Ray dashboard listens on 0.0.0.0; requests need Ray's token (~/.ray/auth_token)"
            in stopped_twice["first"].stdout), stopped_twice["first"].tail()


@pytest.mark.slow
def test_the_launch_says_how_to_open_its_dashboard_without_printing_the_token(stopped_twice):
    """Token authentication is on for loopback too; the launch says where the token is and how to send it."""
    out = stopped_twice["first"].stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Ray dashboard: http://"))
    assert "token authentication is on, on loopback too" in lines[at + 1] and "ray get-auth-token" in lines[at + 1]
    assert "~/.ray/auth_token" in lines[at + 1] and "Authorization: Bearer <token>" in lines[at + 1]
    assert ray_token() not in out


@pytest.mark.slow
def test_second_launch_of_a_running_sweep_is_refused_and_changes_nothing(stopped_twice):
    second, claim = stopped_twice["second"], stopped_twice["claim"]
    assert second.returncode == 2, second.stdout + second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "already being launched" in lines[0], second.stderr
    pid = stopped_twice["first"].proc.pid
    assert f"host {socket.gethostname()}, pid {pid}, since {claim['since']}" in lines[0]
    assert claim.get("pid") == pid and "running" not in second.stdout
    assert stopped_twice["second_changed"] == []


@pytest.mark.slow
@pytest.mark.parametrize("which", ["SIGINT", "SIGTERM"])
def test_signal_stops_the_launch_cleanly(stopped_twice, which):
    launch, rc, running, after = ((stopped_twice["first"], stopped_twice["rc1"], stopped_twice["running_at_sigint"],
                                   stopped_twice["statuses1"]) if which == "SIGINT" else
                                  (stopped_twice["sigterm"], stopped_twice["rc2"],
                                   stopped_twice["running_at_sigterm"], stopped_twice["statuses2"]))
    assert rc == 128 + getattr(signal, which), launch.tail()
    assert not STACK_DUMP.search(launch.stdout + launch.stderr), launch.tail()
    assert f"gnsweep launch {stopped_twice['spec']}" in launch.stdout and "resume" in launch.stdout
    assert launch.left_behind == [], "Ray processes outlived the interrupted launch"
    assert running and all(after[k] == "interrupted" for k in running), after
    assert "running" not in after.values(), after


@pytest.mark.slow
def test_interrupted_launch_leaves_no_claim(stopped_twice):
    assert not stopped_twice["claim_left1"]
    assert not (stopped_twice["sweep_dir"] / "launch.json").exists()


@pytest.mark.slow
def test_relaunch_resumes_the_interrupted_trials(stopped_twice):
    sweep_dir, third = stopped_twice["sweep_dir"], stopped_twice["third"]
    assert stopped_twice["rc3"] == 0, third.tail()
    assert statuses(sweep_dir) == {k: "completed" for k in KEYS}
    epochs = pd.read_parquet(sweep_dir / "epochs")
    assert_one_row_per_epoch(epochs, {k: EPOCHS for k in KEYS})
    # epochs recorded before each signal were kept, not trained again
    assert {n: t for n, t in epoch_rows(sweep_dir).items() if n in stopped_twice["files2"]} == stopped_twice["files2"]
    # a trial stopped after some of its epochs went on from its checkpoint in a later attempt, and said so
    half = {k: n for k in KEYS if 0 < (n := sum(f.startswith(f"{k}-e") for f in stopped_twice["files2"])) < EPOCHS}
    assert half, stopped_twice["files2"]
    for key, done in half.items():  # its checkpoint may hold one epoch more than was recorded when it was stopped
        said = re.search(rf"started {key} \(resumed from epoch (\d+)\)", third.stdout)
        assert said and int(said[1]) in (done, done + 1), third.stdout[-3000:]
    for key, done in half.items():
        attempts = epochs[epochs.trial_key == key].sort_values("epoch")["attempt"].tolist()
        assert attempts == sorted(attempts) and attempts[done] > attempts[done - 1], (key, attempts)
