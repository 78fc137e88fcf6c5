"""One count of a sweep's trials and time left (``orchestrator.watch.tally``) behind ``status``, ``status --watch``
and the launch's progress line, shared trials included: real Parquet rows, a real plan.json, the real results
writer fed the way Tune feeds it."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from orchestrator.cost.costs import estimates, record_plan
from orchestrator.cost.devices import ClusterShape
from trainer.data.shapes import DIGITS
from orchestrator.spec.plan import plan_trials
from orchestrator.spec.validation import parse_spec
from orchestrator.tune.results_writer import ResultsWriter, config_columns, shared_trials
from orchestrator.watch.live import render
from orchestrator.watch.status import status_lines
from orchestrator.watch.tally import read_tally, tally
from results import store
from results.records import EpochRow, PlanEntry, PlanRecord, SweepRecord, TrialRow
from tests.support.launches import held

SPEC = {"name": "t", "dataset": "builtin:digits", "model": "resnet8", "train": {"epochs": 6},
        "studies": {"norms": {"norm": ["bn", "ln"], "batch_size": [32]},
                    "groups": {"norm": ["gn"], "groups": [8, 1], "batch_size": [32]}},
        "seeds": [0], "resources": {"cpu": 1}}
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
METRICS = dict(train_loss=1.0, train_err=40.0, val_loss=1.0, val_err=50.0, val_err_top5=10.0, lr=0.1,
               epoch_seconds=20.0, images_per_second=100.0)


def fake_trial(planned):
    """What ResultsWriter reads of a Tune trial."""
    return SimpleNamespace(config={"trial": {"key": planned.key, "config": planned.config.to_dict()}},
                           error_file=None)


def write_run(sweep, planned, epochs: int, status: str, final: float | None = None) -> None:
    base = config_columns("t", planned.key, planned.config.to_dict())
    for e in range(1, epochs + 1):
        store.write_epoch_row(sweep, EpochRow.of(base, {**METRICS, "epoch": e, "val_err": 60.0 - e}, attempt=0,
                                                 node="n", recorded_at=T0 + timedelta(seconds=30 * e)))
    store.write_trial_row(sweep, TrialRow(**base, status=status, epochs=epochs, final_val_err=final,
                                          best_val_err=None, error=None, studies=planned.studies, attempts=1,
                                          started_at=T0, ended_at=None, train_seconds=20.0 * epochs))


@pytest.fixture
def sweep(tmp_path):
    """A launched sweep of bn, ln (also GN with G = 1) and GN G = 8: its sweep.json and plan.json with estimates."""
    spec = parse_spec(SPEC)
    trials = plan_trials(spec)
    sweep = tmp_path / "t"
    sweep.mkdir()
    store.write_sweep(sweep, SweepRecord("t", spec.fingerprint(), tuple(t.key for t in trials)))
    est, ests, _ = estimates(spec, trials, DIGITS, "CPU", tmp_path)
    record_plan(sweep, spec, trials, ests, "CPU", est, ClusterShape(({"CPU": 2.0, "GPU": 0.0},), "test", None))
    return sweep, {t.key: t for t in trials}


def test_status_watch_and_progress_line_say_the_same(sweep):
    """The progress line counts from the writer's own tables (no store read), status and watch from the store:
    the same summary, time left included, before and after the writer records an epoch and a trial's end."""
    from orchestrator.tune.progress import ProgressPrinter

    sweep, trials = sweep
    write_run(sweep, trials["bn-b32-s0"], 6, "completed", 54.0)
    write_run(sweep, trials["ln-b32-s0"], 2, "running")
    with held(sweep):  # the launch of this writer, which runs the sweep, holds it
        writer = ResultsWriter(sweep, "t", {k: t.studies for k, t in trials.items()}, store.read_trial_rows(sweep),
                               shared_trials(trials.values()), prior_epochs=store.read_epochs(sweep))
        record, plan = store.read_sweep(sweep), store.read_plan(sweep)
        progress = ProgressPrinter(lambda: tally(record, *writer.tables(), plan).summary(), echo=lambda line: None)

        def views() -> set[str]:
            """Each view's summary line; status's and watch's line of what the time left rests on must match too."""
            t, lines = read_tally(sweep), status_lines(sweep)
            table = render(t, "t")
            assert lines[-1] == table.caption == t.basis and t.basis.startswith("remaining: ")
            return {lines[-2], table.title.removeprefix("sweep t: "), progress.line().split("] ", 1)[1], t.summary()}

        first, before = views(), read_tally(sweep).trial_seconds
        assert len(first) == 1 and next(iter(first)).startswith("1/4 trials ended, 2 running; about "), first
        ln = fake_trial(trials["ln-b32-s0"])
        writer.on_trial_start(0, [], ln)
        writer.on_trial_result(0, [], ln, {**METRICS, "epoch": 3, "node": "n"})
        assert len(views()) == 1 and read_tally(sweep).trial_seconds < before  # one epoch fewer left, seen alike
        for epoch in (4, 5, 6):
            writer.on_trial_result(0, [], ln, {**METRICS, "epoch": epoch, "node": "n"})
        writer.on_trial_complete(0, [], ln)
        third = views()
        assert len(third) == 1 and next(iter(third)).startswith("3/4 trials ended, 0 running; about "), third


def test_a_shared_trial_ends_with_its_run(sweep):
    """GN with G = 1 has no run of its own: it is pending while LN's run is, and completed when it completes."""
    sweep, trials = sweep
    write_run(sweep, trials["bn-b32-s0"], 6, "completed", 54.0)
    write_run(sweep, trials["gn-b32-g8-s0"], 6, "completed", 55.0)
    states = {t.key: t for t in read_tally(sweep).trials}
    assert (states["gn-b32-g1-s0"].status, states["gn-b32-g1-s0"].same_as) == ("pending", "ln-b32-s0")
    assert states["gn-b32-g1-s0"].seconds_left == states["ln-b32-s0"].seconds_left > 0
    write_run(sweep, trials["ln-b32-s0"], 6, "completed", 56.5)
    done = read_tally(sweep)
    shared = next(t for t in done.trials if t.key == "gn-b32-g1-s0")
    assert done.finished and done.summary() == "4/4 trials ended, 0 running; nothing left to run"
    assert (shared.status, shared.epoch, shared.final, shared.error) == ("completed", 6, 56.5,
                                                                         "shares the run of ln-b32-s0")


def test_watch_exits_on_a_finished_sweep_with_a_shared_trial(tmp_path):
    """A sweep whose only record of GN with G = 1 is plan.json's shared run (as every sweep launched before shared
    trials had rows): the watch ends once LN's run has (it waited for the 'pending' shared trial forever)."""
    sweep = tmp_path / "results" / "w"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"name": "w", "fingerprint": {"train.epochs": 2},
                                                  "trials": ["ln-b32-s0", "gn-b32-g1-s0"]}))
    store.write_plan(sweep, PlanRecord("w", "CPU", "rough", (), {"gn-b32-g1-s0": PlanEntry(
        config={"norm": "gn", "groups": 1, "channels_per_group": None}, studies=("groups",), same_as="ln-b32-s0",
        why="GN with G = 1 is LN", cpu=1.0, gpu=0.0, shape="resnet8/gn/b32/r1/float32")}))
    config = {"sweep": "w", "trial_key": "ln-b32-s0", "model": "resnet8", "norm": "ln", "batch_size": 32,
              "groups": None, "channels_per_group": None, "seed": 0}
    for e in (1, 2):
        store.write_epoch_row(sweep, EpochRow.of(config, {**METRICS, "epoch": e}, attempt=0, node="n",
                                                 recorded_at=T0))
    store.write_trial_row(sweep, TrialRow(**config, status="completed", epochs=2, final_val_err=50.0,
                                          best_val_err=50.0, error=None, studies=("norms",), attempts=1,
                                          started_at=T0, ended_at=T0, train_seconds=40.0))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "status", "w", "--results",
                           str(tmp_path / "results"), "--watch", "--interval", "0.1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "sweep w: 2/2 trials ended, 0 running" in proc.stdout
    row = next(ln for ln in proc.stdout.splitlines() if "gn-b32-g1-s0" in ln)
    assert "completed" in row and "shares the run of ln-b32-s0" in row
