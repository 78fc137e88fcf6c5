"""The ``gnsweep`` command line as the tests run it: a real subprocess, with the environment every test process gets,
and the small sweep specs the tests launch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GNSWEEP = [sys.executable, "-m", "orchestrator.cli"]


def repo_pythonpath(path: str = "") -> str:
    """``path`` (a PYTHONPATH) with the repository first: a process started with it runs this checkout's code and
    imports ``tests.support`` (the fake trainer, in a Ray worker too)."""
    return os.pathsep.join([str(REPO), *(p for p in path.split(os.pathsep) if p and p != str(REPO))])


def process_env(**extra: str) -> dict:
    """The environment of a process a test starts: this one's (without the user's RAY_* settings, and with the
    repository on PYTHONPATH: tests/conftest.py), unbuffered; ``extra`` on top."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": repo_pythonpath(os.environ.get("PYTHONPATH", "")),
            **extra}


def fake_trainer_env(**options) -> dict:
    """The variables that make a launch train each trial with ``tests.support.fake_trainer`` (no TensorFlow), with
    ``options`` as its keyword arguments (``step_seconds``, ``fail``, ``diverge``, ``hang``)."""
    from tests.support.fake_trainer import PATH

    return {"GNSWEEP_TRAINER": PATH, "GNSWEEP_TRAINER_OPTIONS": json.dumps(options)}


def gnsweep(*args, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI to completion; ``env`` adds to ``process_env()``. A run past ``timeout`` fails the test with what it
    printed (not pytest-timeout's bare stack)."""
    try:
        return subprocess.run([*GNSWEEP, *map(str, args)], cwd=cwd, env=process_env(**(env or {})),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out, err = (s.decode(errors="replace") if isinstance(s, bytes) else (s or "") for s in (e.stdout, e.stderr))
        pytest.fail(f"gnsweep {' '.join(map(str, args))} ran past {timeout} s\nstdout:\n{out[-3000:]}\n"
                    f"stderr:\n{err[-3000:]}")


def write_spec(path: Path, dataset, *, name: str, studies: str, epochs: int = 2, base_lr: float = 0.1,
               retries: int = 1, seeds=(0,), model: str = "resnet8", resources: str = "{cpu: 1}") -> Path:
    """A small sweep (resnet8, GN with 8 groups) on a prepared dataset; ``studies`` is the YAML body of the studies
    mapping, one study a line."""
    body = "\n".join(f"  {line.strip()}" for line in studies.strip().splitlines())
    path.write_text(f"""name: {name}
dataset: {dataset}
model: {model}
train: {{epochs: {epochs}, base_lr: {base_lr}, base_batch: 32}}
studies:
{body}
seeds: {list(seeds)}
defaults: {{groups: 8}}
resources: {resources}
retries: {retries}
""")
    return path
