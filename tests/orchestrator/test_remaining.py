"""``gnsweep status`` tells the time left: the launch's estimates, replaced by measured epoch times as trials
report epochs (real Parquet rows, real plan.json)."""
import json

import pandas as pd
import pytest

from orchestrator.cost.costs import estimates, record_plan
from orchestrator.cost.devices import ClusterShape
from trainer.data.shapes import DIGITS
from orchestrator.spec.plan import plan_trials
from orchestrator.spec.validation import parse_spec
from orchestrator.watch.status import status_lines
from results import store
from orchestrator.tune.results_writer import config_columns
from results.records import EpochRow, TrialRow
from tests.support.launches import held

SPEC = {"name": "left", "dataset": "builtin:digits", "model": "resnet8", "train": {"epochs": 10},
        "studies": {"a": {"norm": ["bn"], "batch_size": [32]}, "b": {"norm": ["ln"], "batch_size": [32]},
                    "c": {"norm": ["gn"], "groups": [1], "batch_size": [32]}},
        "seeds": [0, 1], "resources": {"cpu": 1}}


def test_status_shows_time_left_from_a_measured_epoch(tmp_path):
    spec = parse_spec(SPEC)
    trials = plan_trials(spec)
    sweep = tmp_path / "left"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"name": "left", "trials": [t.key for t in trials]}))
    est, ests, _ = estimates(spec, trials, DIGITS, "CPU", tmp_path)
    record_plan(sweep, spec, trials, ests, "CPU", est, ClusterShape(({"CPU": 2.0, "GPU": 0.0},), "test", None))
    before = status_lines(sweep)
    assert before[-1].startswith("remaining: ") and "estimates only" in before[-1]

    running = next(t for t in trials if t.key == "bn-b32-s0")
    base = config_columns("left", running.key, running.config.to_dict())
    t0 = pd.Timestamp("2026-12-02 10:00:00", tz="UTC")
    for epoch, seconds in ((1, 0), (2, 30), (3, 60)):  # 30 s per epoch measured
        metrics = dict(epoch=epoch, train_loss=1.0, train_err=50.0, val_loss=1.0, val_err=50.0, val_err_top5=10.0,
                       lr=0.1, epoch_seconds=20.0, images_per_second=100.0)
        store.write_epoch_row(sweep, EpochRow.of(base, metrics, attempt=0, node=None,
                                                 recorded_at=(t0 + pd.Timedelta(seconds=seconds)).to_pydatetime()))
    store.write_trial_row(sweep, TrialRow(**base, status="running", epochs=3, final_val_err=None, best_val_err=None,
                                          error=None, studies=("a",), attempts=1, started_at=t0.to_pydatetime(),
                                          ended_at=None, train_seconds=60.0))
    with held(sweep):
        lines = status_lines(sweep)
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert rows["bn-b32-s0"].split()[1:3] == ["running", "3"]
    assert "3.5 min" in rows["bn-b32-s0"]  # 7 epochs left x 30 s, no start-up
    other = ests["bn-b32-s1"].startup_seconds + 10 * 30
    assert f"{other / 60:.1f} min" in rows["bn-b32-s1"]  # same shape: the measured 30 s per epoch
    ratio = 30 / ests["bn-b32-s0"].epoch_seconds
    ln = ests["ln-b32-s0"].startup_seconds + 10 * ests["ln-b32-s0"].epoch_seconds * ratio
    assert f"{ln / 60:.1f} min" in rows["ln-b32-s0"]  # another shape: its estimate scaled by measured/estimated
    assert "shares the run of ln-b32-s0" in rows["gn-b32-g1-s0"]
    assert "from 1 trials' measured epochs" in lines[-1]
    total = 210 + other + ln + ests["ln-b32-s1"].startup_seconds + 10 * ests["ln-b32-s1"].epoch_seconds * ratio
    assert f"remaining: {total / 60:.1f} min of trial time" in lines[-1]
