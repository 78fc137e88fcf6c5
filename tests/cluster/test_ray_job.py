"""The cluster path cluster/README.md gives, run as written: ``ray job submit --runtime-env cluster/runtime_env.yaml
--working-dir . -- gnsweep launch SPEC --results DIR`` against a real Ray head with its dashboard (the Jobs API) and
Ray's token. The job's driver finds the head through the RAY_ADDRESS that Ray sets (a Ray of its own would name
another dashboard) and trains the trials (the fake trainer, imported from the uploaded checkout) into Parquet.
``ray job stop`` in the middle stops it as Ctrl-C does (Ray's 3 s between SIGTERM and SIGKILL cut that stop short
before runtime_env.yaml raised it); the same job submitted again resumes and finishes the sweep."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from results import store
from tests.support.cli import REPO, fake_trainer_env, process_env, write_spec
from tests.support.launches import assert_one_row_per_epoch, epoch_rows, statuses
from tests.support.local_ray import LocalRay, _ray_command, http_json, ray_token

pytestmark = pytest.mark.slow
EPOCHS = 2
KEYS = ["bn-b64-s0", "gn-b64-g8-s0"]


@pytest.fixture(scope="module")
def head():
    """A head with the dashboard, gnsweep's console script on its PATH (as in the cluster image)."""
    ray = LocalRay(num_cpus=2, dashboard=True, env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                            f"{os.environ.get('PATH', '')}"})
    try:
        yield ray
    finally:
        ray.stop()


def ray_job(head: LocalRay, *args: str, root: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Ray's job CLI against ``head``, with its token; retried while a head just started has no job agent yet."""
    env = {k: v for k, v in process_env(**head.join_env).items() if k != "RAY_ADDRESS"}
    cmd = [*_ray_command(), "job", args[0], "--address", head.dashboard_url, *args[1:]]
    deadline = time.monotonic() + 60
    while True:
        run = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        if "No available agent to submit job" not in run.stderr or time.monotonic() > deadline:
            return run
        time.sleep(1)


def submit(head: LocalRay, root: Path, spec: Path, results: Path, job_id: str, **trainer):
    """The README's command, with the shipped runtime env plus the fake trainer's variables."""
    runtime = yaml.safe_load((REPO / "cluster" / "runtime_env.yaml").read_text())
    runtime["env_vars"].update(fake_trainer_env(**trainer))
    env_file = root / f"{job_id}.yaml"
    env_file.write_text(yaml.safe_dump(runtime))
    return ray_job(head, "submit", "--no-wait", "--submission-id", job_id, "--runtime-env", str(env_file),
                   "--working-dir", str(REPO), "--", "gnsweep", "launch", str(spec), "--results", str(results),
                   root=root)


def job_api(head: LocalRay, path: str):
    """GET a Jobs API route of ``head`` with Ray's token (cheaper to poll than Ray's CLI, which imports Ray)."""
    return http_json(f"{head.dashboard_url}/api/jobs/{path}", ray_token(), timeout=30)


def finished(head: LocalRay, job_id: str, timeout: float = 240) -> tuple[str, str]:
    """The job's end status (SUCCEEDED, FAILED or STOPPED) and its driver's output."""
    deadline = time.monotonic() + timeout
    while (status := job_api(head, job_id)["status"]) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout} s"
        time.sleep(0.5)
    return status, job_api(head, f"{job_id}/logs")["logs"]


@pytest.fixture(scope="module")
def jobs(head, tmp_path_factory, digits_dataset):
    root = tmp_path_factory.mktemp("job")
    spec = write_spec(root / "spec.yaml", digits_dataset, name="job", epochs=EPOCHS,
                      studies="a: {norm: [bn, gn], batch_size: [64]}")
    results = root / "results"
    sweep = results / "job"
    story = {"sweep": sweep}
    submitted = submit(head, root, spec, results, "stopped", hang={"*": 2})  # trials hang in epoch 2
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    deadline = time.monotonic() + 180
    while len(epoch_rows(sweep)) < len(KEYS):
        assert time.monotonic() < deadline, job_api(head, "stopped/logs")["logs"][-3000:]
        time.sleep(0.5)
    story["stop"] = ray_job(head, "stop", "stopped", root=root)
    story["stopped"] = finished(head, "stopped")
    story.update(statuses=statuses(sweep), lock_left=(sweep / "launch.json").exists())
    assert submit(head, root, spec, results, "resumed").returncode == 0
    story["resumed"] = finished(head, "resumed")
    return story


def test_ray_job_stop_stops_the_sweep_cleanly(jobs, head):
    status, log = jobs["stopped"]
    assert jobs["stop"].returncode == 0 and status == "STOPPED", (status, jobs["stop"].stderr[-2000:])
    assert f"Ray dashboard: {head.dashboard_url}" in log, log[-3000:]  # the driver joined the head, no Ray of its own
    assert "interrupted (SIGTERM): the sweep stopped" in log, log[-3000:]  # not SIGKILLed 3 s after the SIGTERM
    assert jobs["statuses"] == {k: "interrupted" for k in KEYS} and not jobs["lock_left"], jobs


def test_the_same_job_again_resumes_and_finishes_the_sweep(jobs):
    status, log = jobs["resumed"]
    assert status == "SUCCEEDED", log[-3000:]
    assert all(f"started {k} (resumed from epoch 1)" in log for k in KEYS), log[-3000:]
    assert_one_row_per_epoch(store.read_epochs(jobs["sweep"]), {k: EPOCHS for k in KEYS})
    assert statuses(jobs["sweep"]) == {k: "completed" for k in KEYS}
