"""The launch tests' own machinery (tests/support): a test waiting on a launch fails as soon as the launch exits, not
after its timeout, and the suite runs without the Ray settings of the shell that started it."""
import subprocess
import sys
import time

import pytest

from tests.support.cli import REPO, process_env
from tests.support.launches import wait_until


def test_waiting_on_a_process_that_exits_fails_at_once():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"exited \(3\) before an epoch file\nlast words"):
        wait_until(lambda: False, proc, "an epoch file", timeout=120, tail=lambda: "last words")
    assert time.monotonic() - started < 30


def test_waiting_returns_what_the_condition_found():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        calls = []
        assert wait_until(lambda: calls.append(1) or (len(calls) > 2 and ["found"]), proc, "x", timeout=30) == ["found"]
    finally:
        proc.kill()
        proc.wait()


def test_the_shells_ray_settings_do_not_reach_the_tests():
    """RAY_ADDRESS would send every launch to the user's cluster; RAY_AUTH_MODE=disabled made the interrupt tests'
    launch refuse its open dashboard (the module errored)."""
    code = ("import os, tests.conftest\n"
            "from tests.support.cli import process_env\n"
            "print(sorted(k for k in {**os.environ, **process_env()} if k.startswith(('RAY_', 'TUNE_'))))\n")
    env = process_env(RAY_AUTH_MODE="disabled", RAY_ADDRESS="192.0.2.7:6379", TUNE_DISABLE_SIGINT_HANDLER="0")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
