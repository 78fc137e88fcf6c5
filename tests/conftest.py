"""Shared fixtures: real datasets prepared once per test session, a real S3 server (moto's) on 127.0.0.1, one local
Ray cluster for launches to join, and an environment free of the user's Ray settings."""
import os
import sys
from pathlib import Path

import pytest

from tests.support import local_ray, run_shared
from tests.support.cli import repo_pythonpath
from tests.support.s3 import CREDENTIALS, Bucket, s3_server

SAMPLE_ENV = "GNSWEEP_TINY_IMAGENET_SAMPLE"

# The suite runs whatever Ray or Tune settings the user's shell holds (RAY_ADDRESS would send every launch to the
# user's cluster, RAY_AUTH_MODE=disabled changes what a launch may expose): this process and everything it starts
# run without them; a test that needs one sets it.
DROPPED_SETTINGS = {k: os.environ.pop(k) for k in sorted(os.environ) if k.startswith(("RAY_", "TUNE_"))}
# What this process starts, Ray nodes started in-process included (ray.cluster_utils), runs this checkout's code and
# imports tests.support (the fake trainer, in Ray workers).
os.environ["PYTHONPATH"] = repo_pythonpath(os.environ.get("PYTHONPATH", ""))

# pytest's default (prepend) import mode puts this folder on sys.path to import this file; its subfolders are named
# like the packages they test and would shadow them as namespace packages (``from trainer import train_trial`` fails).
if str(Path(__file__).parent) in sys.path:
    sys.path.remove(str(Path(__file__).parent))


def pytest_configure(config):
    """The run's first process (pytest-xdist's controller, or pytest alone) makes the folder its workers share
    (tests/support/run_shared.py), which the workers it starts find in their environment, and Ray's token if the
    machine has none."""
    if not hasattr(config, "workerinput"):
        config.run_shared = run_shared.create()
        local_ray.ensure_token()


def pytest_unconfigure(config):
    if hasattr(config, "run_shared"):
        run_shared.finish(config.run_shared)


# The longest modules, longest first: seconds of worker time each took under ``make test`` on the 2-core machine
# (``make test PYTEST_ARGS=--durations=0``, summed per module). Refresh when one grows or shrinks a lot; a module not
# listed runs after these (those with slow tests first).
LONGEST = {
    "tests/orchestrator/test_launch.py": 176, "tests/trainer/test_xla.py": 112,
    "tests/faults/test_trial_failures.py": 92, "tests/results/test_folding.py": 78,
    "tests/faults/test_interrupts.py": 73,
    "tests/cluster/test_bucket_only.py": 60, "tests/trainer/test_train.py": 59, "tests/cluster/test_multinode.py": 49,
    "tests/cluster/test_gpu_packing.py": 47, "tests/faults/test_bucket_sweep.py": 46,
    "tests/faults/test_hostile_data.py": 45, "tests/results/test_damaged_results.py": 41,
    "tests/trainer/test_checkpoints.py": 39, "tests/faults/test_corrupt_data.py": 39,
    "tests/bench/test_gpu_bench.py": 37, "tests/faults/test_driver_kill.py": 31,
    "tests/orchestrator/test_calibrate.py": 30, "tests/results/test_verdicts.py": 27,
    "tests/results/test_object_storage.py": 26, "tests/faults/test_hostile_specs.py": 26,
}


def pytest_collection_modifyitems(session, config, items):
    """The longest modules first (``LONGEST``), then the other modules with slow tests, then the rest; each module's
    tests kept together and in order. ``make test``'s workers (pytest-xdist, ``--dist loadscope
    --no-loadscope-reorder``) take modules in this order, one at a time each, so the long ones start at once and the
    short ones fill in around them: the workers end together instead of one finishing a long module alone."""
    modules: dict = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    slow = {m for m, its in modules.items() if any(i.get_closest_marker("slow") for i in its)}
    order = sorted(modules, key=lambda m: (-LONGEST.get(m, 0), m not in slow))
    items[:] = [i for m in order for i in modules[m]]


def pytest_report_header(config):
    if DROPPED_SETTINGS:
        return f"dropped the shell's Ray settings for the tests: {', '.join(DROPPED_SETTINGS)}"


@pytest.fixture(scope="session")
def shared_ray():
    """One local Ray cluster for the whole run, which every worker's launches that need no Ray of their own join:
    ``Launch(..., ray=shared_ray)`` or ``gnsweep("launch", ..., "--address", shared_ray.address)``. 8 logical CPUs,
    so that one module's trials do not hold up another module's launch. Its workers hold the test S3 server's fake
    credentials (any worker's server: each bucket URI names its endpoint) and cache datasets from the bucket in
    ``run_shared.node_cache()``, so that sweeps in the ``bucket`` join it too."""
    from trainer.data.cache import CACHE_ENV

    return run_shared.shared_ray(num_cpus=8, env={**CREDENTIALS, CACHE_ENV: str(run_shared.node_cache())})


@pytest.fixture(scope="session")
def digits_dataset() -> Path:
    """scikit-learn's digits prepared as shards (1,437 train / 360 val, 16x16), once per run."""
    from trainer.data import prepare

    return run_shared.made_once("datasets/digits", lambda out: prepare("digits", out, progress=False))


@pytest.fixture(scope="session")
def tiny_sample() -> Path:
    """The real Tiny ImageNet-200 sample (10 classes) in its own layout; never copied into the project."""
    if not os.environ.get(SAMPLE_ENV):
        pytest.skip(f"{SAMPLE_ENV} not set: the real Tiny ImageNet sample is not available")
    path = Path(os.environ[SAMPLE_ENV])
    if not (path / "wnids.txt").is_file():
        pytest.fail(f"{SAMPLE_ENV}={path} is not a Tiny ImageNet directory (no wnids.txt)")
    return path


@pytest.fixture(scope="session")
def sample_dataset(tiny_sample) -> Path:
    """The Tiny ImageNet sample prepared as shards (1,000 train / 500 val, 64x64), once per run."""
    from trainer.data import prepare

    return run_shared.made_once("datasets/tiny-sample", lambda out: prepare(str(tiny_sample), out, progress=False))


@pytest.fixture(scope="session")
def bucket() -> Bucket:
    """moto's S3 server on 127.0.0.1 with one bucket, for the whole session (tests/support/s3.py)."""
    with s3_server() as b:
        yield b
