"""``gnsweep status`` lines from real Parquet tables: every planned trial, numbers as recorded, '-' where none is."""
import math
from datetime import datetime, timezone

import pytest

from orchestrator.watch.status import status_lines
from orchestrator.watch.tally import TallyError
from results import store
from results.records import EpochRow, SweepRecord, TrialRow
from tests.support.launches import held

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


def write(sweep, key, val_errs, *, status="completed", final=None, error=None):
    config = dict(sweep="t", trial_key=key, model="resnet8", norm=key.split("-")[0], batch_size=32,
                  groups=8 if key.startswith("gn") else None, channels_per_group=None, seed=0)
    for i, v in enumerate(val_errs):
        store.write_epoch_row(sweep, EpochRow(**config, epoch=i + 1, train_loss=1.0, train_err=1.0, val_loss=1.0,
                                              val_err=v, val_err_top5=1.0, lr=0.1, epoch_seconds=1.0,
                                              images_per_second=1.0, attempt=0, node="n", recorded_at=NOW))
    store.write_trial_row(sweep, TrialRow(**config, status=status, epochs=len(val_errs), final_val_err=final,
                                          best_val_err=None, error=error, studies=("s",), attempts=1, started_at=NOW,
                                          ended_at=None, train_seconds=1.0))


def test_one_line_per_planned_trial_with_its_numbers(tmp_path):
    write(tmp_path, "bn-b32-s0", [50.0, 40.0, 30.0, 20.0, 10.0, 12.345], final=20.0)
    write(tmp_path, "gn-b32-g8-s0", [60.0, math.nan], status="diverged", final=math.nan,
          error="loss became NaN or infinite")
    write(tmp_path, "in-b32-s0", [70.0], status="running", final=70.0)
    store.write_sweep(tmp_path, SweepRecord("t", {}, ("bn-b32-s0", "gn-b32-g8-s0", "in-b32-s0", "ln-b32-s0")))
    with held(tmp_path):  # a live launch runs it
        lines = status_lines(tmp_path)
    assert [line.split() for line in lines] == [
        ["trial", "status", "epochs", "latest", "%", "final", "%", "left", "error"],
        ["bn-b32-s0", "completed", "6", "12.35", "20.00", "-"],  # no plan.json: no estimate of time left
        ["gn-b32-g8-s0", "diverged", "2", "nan", "-", "-", "loss", "became", "NaN", "or", "infinite"],
        ["in-b32-s0", "running", "1", "70.00", "-", "-"],  # a running trial's error is not final yet
        ["ln-b32-s0", "pending", "0", "-", "-", "-"],
        "2/4 trials ended, 1 running, 1 diverged; time left unknown".split(),  # the epochs per trial are unknown
    ]


def test_a_sweep_no_launch_runs_says_so_under_its_trials(tmp_path):
    """After its launch died (SIGKILLed, or a Ray job stopped too soon) a sweep's trials still read "running":
    ``status --watch`` said so and ended; plain ``status`` showed them running with time left."""
    write(tmp_path, "bn-b32-s0", [50.0, 40.0], final=45.0)
    write(tmp_path, "gn-b32-g8-s0", [60.0], status="running", final=60.0)
    store.write_sweep(tmp_path, SweepRecord("t", {}, ("bn-b32-s0", "gn-b32-g8-s0", "ln-b32-s0")))
    assert status_lines(tmp_path)[-1] == (f"sweep {tmp_path.name}: no launch holds it; 2 trial(s) not ended, the 1 "
                                          f"shown as running are stale; launch the spec again to resume them")
    write(tmp_path, "gn-b32-g8-s0", [60.0, 50.0], final=55.0)
    write(tmp_path, "ln-b32-s0", [60.0, 50.0], final=55.0)
    assert status_lines(tmp_path)[-1] == "3/3 trials ended, 0 running; nothing left to run"  # needs no launch


def test_no_sweep_json_is_one_line(tmp_path):
    with pytest.raises(TallyError, match="no sweep here \\(no sweep.json\\); check the name and --results"):
        status_lines(tmp_path)
