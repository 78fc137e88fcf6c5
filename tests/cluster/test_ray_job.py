"""The cluster path cluster/README.md gives, run as written: ``ray job submit --runtime-env cluster/runtime_env.yaml
--working-dir . -- gnsweep launch SPEC --results DIR`` against a real Ray head with its dashboard (the Jobs API) and
Ray's token, twice. The job's driver finds the head through the RAY_ADDRESS that Ray sets (a Ray of its own would
name another dashboard), starts Ray Tune there under the job's runtime env, and trains every trial (the fake trainer,
imported from the uploaded checkout) into Parquet; the second job finds them all finished."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support.cli import REPO, fake_trainer_env, process_env, write_spec
from tests.support.local_ray import LocalRay, _ray_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head():
    """A head with the dashboard, gnsweep's console script on its PATH (as in the cluster image)."""
    ray = LocalRay(num_cpus=2, dashboard=True, env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                            f"{os.environ.get('PATH', '')}"})
    try:
        yield ray
    finally:
        ray.stop()


def submit(head: LocalRay, root: Path, spec: Path, results: Path) -> subprocess.CompletedProcess:
    runtime = yaml.safe_load((REPO / "cluster" / "runtime_env.yaml").read_text())
    runtime["env_vars"].update(fake_trainer_env())
    (root / "runtime_env.yaml").write_text(yaml.safe_dump(runtime))
    cmd = [*_ray_command(), "job", "submit", "--address", head.dashboard_url, "--runtime-env",
           str(root / "runtime_env.yaml"), "--working-dir", str(REPO), "--",
           "gnsweep", "launch", str(spec), "--results", str(results)]
    env = {k: v for k, v in process_env(**head.join_env).items() if k != "RAY_ADDRESS"}
    deadline = time.monotonic() + 60
    while True:  # a head just started has no job agent yet: Ray answers "please try again later"
        run = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=240)
        if "No available agent to submit job" not in run.stderr or time.monotonic() > deadline:
            return run
        time.sleep(1)


@pytest.fixture(scope="module")
def jobs(head, tmp_path_factory, digits_dataset):
    root = tmp_path_factory.mktemp("job")
    spec = write_spec(root / "spec.yaml", digits_dataset, name="job", studies="a: {norm: [bn, gn], batch_size: [64]}")
    results = root / "results"
    return {"first": submit(head, root, spec, results), "again": submit(head, root, spec, results),
            "sweep": results / "job"}


def test_the_job_trains_every_trial_into_parquet_on_the_head_it_was_submitted_to(jobs, head):
    first = jobs["first"]
    out = first.stdout + first.stderr
    assert first.returncode == 0 and "succeeded" in out, out[-4000:]
    assert "running 2 of 2 trials (0 already finished)" in out, out[-4000:]
    assert f"Ray dashboard: {head.dashboard_url}" in out, out[-4000:]  # the driver joined the head, no Ray of its own
    epochs = pd.read_parquet(jobs["sweep"] / "epochs")
    assert sorted(zip(epochs["trial_key"], epochs["epoch"])) == [(k, e) for k in ("bn-b64-s0", "gn-b64-g8-s0")
                                                                  for e in (1, 2)]


def test_the_same_job_again_finds_every_trial_finished(jobs):
    again = jobs["again"]
    out = again.stdout + again.stderr
    assert again.returncode == 0 and "all 2 trials are finished; nothing to run" in out, out[-4000:]
    assert len(pd.read_parquet(jobs["sweep"] / "epochs")) == 4
