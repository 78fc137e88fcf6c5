"""What the workers of one test run share (``make test`` runs pytest-xdist workers, each a process with its own
session fixtures): a folder the run's first process creates (tests/conftest.py, before any worker starts) and
removes at the end, in which a session resource is made once, by the first worker that needs it, under a file lock,
and found there by the others. The digits dataset is prepared once per run, not once per worker, and one local Ray
serves every worker's launches (each Ray costs seconds of CPU to start and keeps a few daemons busy while it runs).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

FOLDER_ENV = "GNSWEEP_TEST_RUN_SHARED"
RAY_FILE = "ray.json"


def create() -> Path:
    """The run's shared folder, made by the first pytest process (the controller under xdist) and given to the
    workers it starts through the environment."""
    folder = Path(tempfile.mkdtemp(prefix="gnsweep-tests-"))
    os.environ[FOLDER_ENV] = str(folder)
    return folder


def folder() -> Path:
    return Path(os.environ[FOLDER_ENV])


def _marker(name: str, kind: str) -> Path:
    """The hidden file beside resource ``name`` that locks it (``kind`` "lock") or says it is made ("done")."""
    return folder() / f".{name.replace('/', '-')}.{kind}"


@contextmanager
def _locked(name: str):
    with open(_marker(name, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def made_once(name: str, make) -> Path:
    """``folder()/name``, made by ``make(path)`` in the first process of the run that asks; the others wait for it.
    A ``make`` that raises marks nothing done: the next process to ask starts again from an empty folder."""
    path, done = folder() / name, _marker(name, "done")
    with _locked(name):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            make(path)
            done.touch()
    return path


def node_cache() -> Path:
    """Where the shared Ray's node caches datasets from object storage (``GNSWEEP_DATA_CACHE``): in the run's folder,
    not the user's ~/.cache."""
    return folder() / "node-cache"


def shared_ray(num_cpus: int, env: dict | None = None):
    """The run's one ``LocalRay`` (``env`` added to its processes' environment): started by the first worker that
    needs it, recorded in ``ray.json`` for the others, stopped by ``finish``."""
    from tests.support.local_ray import LocalRay

    with _locked("ray"):
        record = folder() / RAY_FILE
        if record.exists():
            return LocalRay.attach(json.loads(record.read_text()))
        ray = LocalRay(num_cpus=num_cpus, env=env)
        record.write_text(json.dumps(ray.record()))
        return ray


def finish(path: Path) -> None:
    """Stop the run's Ray if a worker started one, and remove the shared folder (the first process, at its end)."""
    from tests.support.local_ray import LocalRay

    record = path / RAY_FILE
    if record.exists():
        LocalRay.attach(json.loads(record.read_text())).stop()
    shutil.rmtree(path, ignore_errors=True)
