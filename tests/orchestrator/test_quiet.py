"""Quiet by default: real ``gnsweep`` processes print only gnsweep's own lines; TensorFlow's and absl's start-up
lines go to the native log, and ``--verbose`` brings them back."""
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from results import store
from results.records import EpochRow, TrialRow
from tests.support.cli import GNSWEEP, process_env
OWN_LINES = re.compile(r"^(prepared digits: 1437 train, 360 val images, 10 classes -> .+"
                       r"|report: .+report\.md|page: .+report\.html"
                       r"|tensorboard runs: .+ \(view: tensorboard --logdir .+\))$")
TF_LINE = re.compile(r"cudart_stub|absl::InitializeLog|oneDNN|cuda drivers|^[IWE]\d{4} ")


def run(*args, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = process_env(XDG_CACHE_HOME=str(cache))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([*GNSWEEP, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def write_sweep(sweep: Path) -> None:
    """Two epochs of one trial, through the store's own writers."""
    base = {"sweep": sweep.name, "trial_key": "bn-b32-s0", "model": "resnet8", "norm": "bn", "batch_size": 32,
            "groups": None, "channels_per_group": None, "seed": 0}
    for epoch in (1, 2):
        store.write_epoch_row(sweep, EpochRow(**{**base, "epoch": epoch, "train_loss": 1.0, "train_err": 40.0, "val_loss": 1.1,
                                      "val_err": 45.0 - epoch, "val_err_top5": 10.0, "lr": 0.1, "epoch_seconds": 2.0,
                                      "images_per_second": 700.0, "attempt": 0, "node": "n",
                                      "recorded_at": datetime.now(timezone.utc)}))
    store.write_trial_row(sweep, TrialRow(**{**base, "status": "completed", "epochs": 2, "final_val_err": 43.5,
                                  "best_val_err": 43.0, "error": None, "studies": ["single"], "attempts": 1,
                                  "started_at": None, "ended_at": None, "train_seconds": 4.0}))


@pytest.mark.slow  # prepares digits and writes a report in real processes, each importing TensorFlow
def test_commands_print_only_their_own_lines(tmp_path):
    cache = tmp_path / "cache"
    write_sweep(tmp_path / "results" / "q")
    prepare = run("data", "prepare", "digits", "--out", tmp_path / "digits", cache=cache, cwd=tmp_path)
    report = run("report", "q", "--results", tmp_path / "results", cache=cache, cwd=tmp_path)
    for proc in (prepare, report):
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        strangers = [ln for ln in lines if not OWN_LINES.match(ln)]
        assert lines and not strangers, f"lines gnsweep did not write: {strangers}"
    assert "report.html" in report.stdout
    logs = {p.name: p.read_text() for p in (cache / "gnsweep").glob("native-stderr-*.log")}
    assert len(logs) == 2, "one native log per process, not one shared by all gnsweep processes"
    assert any(TF_LINE.search(text) for text in logs.values()), "data prepare's TensorFlow lines belong in its log"


@pytest.mark.slow  # prepares digits and writes a report in real processes, each importing TensorFlow
def test_verbose_shows_tensorflows_own_lines(tmp_path):
    proc = run("--verbose", "data", "prepare", "digits", "--out", tmp_path / "digits", cache=tmp_path / "cache",
               cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("prepared digits:")
    assert TF_LINE.search(proc.stderr), proc.stderr[-2000:]
