"""Every trial name of the plan is a row of ``trials/`` and a TensorBoard run: a trial that shares another's run
(GN with G = 1 is LN) carries its run's status and figures and names the run in ``same_as``. Written by the real
results writer, fed as Tune feeds it, and by a real launch on digits (Ray Tune, the writer, Parquet and TensorBoard
files as in production; the trial trains with the fake trainer, as what is tested is how a shared run is recorded)."""
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from orchestrator.spec.plan import plan_trials
from orchestrator.spec.validation import parse_spec
from orchestrator.tune.results_writer import ResultsWriter, record_shared_runs, shared_trials
from results import store
from tests.support.cli import fake_trainer_env, gnsweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
from test_tensorboard import read_hparams, read_scalars  # noqa: E402

SPEC = {"name": "s", "dataset": "builtin:digits", "model": "resnet8", "train": {"epochs": 2},
        "studies": {"norms": {"norm": ["bn", "ln"], "batch_size": [32]},
                    "groups": {"norm": ["gn"], "groups": [8, 1], "batch_size": [32]}},
        "seeds": [0], "resources": {"cpu": 1}}
METRICS = dict(train_loss=1.0, train_err=40.0, val_loss=1.0, val_err=50.0, val_err_top5=10.0, lr=0.1,
               epoch_seconds=2.0, images_per_second=100.0)


def planned():
    return {t.key: t for t in plan_trials(parse_spec(SPEC))}


def run_trial(writer: ResultsWriter, trial, val_errs: list[float]) -> None:
    fake = SimpleNamespace(config={"trial": {"key": trial.key, "config": trial.config.to_dict()}}, error_file=None)
    writer.on_trial_start(0, [], fake)
    for epoch, err in enumerate(val_errs, 1):
        writer.on_trial_result(0, [], fake, {**METRICS, "epoch": epoch, "val_err": err, "node": "n"})
    writer.on_trial_complete(0, [], fake)


def test_the_writer_gives_a_shared_trial_its_runs_row_and_tensorboard_run(tmp_path):
    trials = planned()
    assert trials["gn-b32-g1-s0"].same_as == "ln-b32-s0"
    writer = ResultsWriter(tmp_path, "s", {k: t.studies for k, t in trials.items()}, {},
                           shared_trials(trials.values()))
    run_trial(writer, trials["ln-b32-s0"], [70.0, 60.0])
    table = store.read_trials(tmp_path).set_index("trial_key")
    assert sorted(table.index) == ["gn-b32-g1-s0", "ln-b32-s0"]
    run, shared = table.loc["ln-b32-s0"], table.loc["gn-b32-g1-s0"]
    assert pd.isna(run["same_as"]) and shared["same_as"] == "ln-b32-s0"
    assert (shared["status"], shared["epochs"], shared["final_val_err"]) == ("completed", 2, run["final_val_err"])
    assert (shared["norm"], shared["groups"], list(shared["studies"])) == ("gn", 1, ["groups"])
    assert list(run["studies"]) == ["norms"]
    assert sorted(store.read_epochs(tmp_path)["trial_key"].unique()) == ["ln-b32-s0"], "epochs stored once"

    for key, norm in (("ln-b32-s0", "ln"), ("gn-b32-g1-s0", "gn")):
        tb = tmp_path / "tensorboard" / key
        hparams = read_hparams(tb)
        assert hparams["norm"] == norm and hparams["batch_size"] == 32 and hparams["model"] == "resnet8"
        assert hparams.get("groups") == (1 if norm == "gn" else None)
        assert read_scalars(tb)["error/val"] == [(1, 70.0), (2, 60.0)]


def test_a_relaunch_writes_the_shared_rows_of_runs_finished_before(tmp_path):
    """A sweep recorded before shared trials had rows (or whose rows were lost): the launch's record_shared_runs
    writes them from the finished run, and a run not recorded yet gives none."""
    trials = planned()
    writer = ResultsWriter(tmp_path, "s", {k: t.studies for k, t in trials.items()}, {})  # no shared trials known
    run_trial(writer, trials["ln-b32-s0"], [70.0, 60.0])
    assert sorted(store.read_trials(tmp_path)["trial_key"]) == ["ln-b32-s0"]
    record_shared_runs(tmp_path, store.read_trial_rows(tmp_path), shared_trials(trials.values()))
    table = store.read_trials(tmp_path).set_index("trial_key")
    assert table.loc["gn-b32-g1-s0", "same_as"] == "ln-b32-s0" and table.loc["gn-b32-g1-s0", "status"] == "completed"
    assert read_hparams(tmp_path / "tensorboard" / "gn-b32-g1-s0")["groups"] == 1
    assert read_scalars(tmp_path / "tensorboard" / "gn-b32-g1-s0")["error/val"] == [(1, 70.0), (2, 60.0)]


@pytest.mark.slow
def test_a_launch_on_digits_lists_the_shared_trial(tmp_path, digits_dataset, shared_ray):
    """A real launch of LN and GN with G = 1 (one run): both are trials rows and TensorBoard runs with their own
    hyperparameters; the README's pandas line gives the groups study's epochs; a relaunch restores lost rows."""
    spec = tmp_path / "shared.yaml"
    spec.write_text(f"""
name: shared
dataset: {digits_dataset}
model: resnet8
train: {{epochs: 2, base_lr: 0.1, base_batch: 32}}
studies:
  norms: {{norm: [ln], batch_size: [128]}}
  groups: {{norm: [gn], groups: [1], batch_size: [128]}}
seeds: [0]
resources: {{cpu: 1}}
""")
    results = tmp_path / "results"
    joined = ("--address", shared_ray.address)
    env = {**shared_ray.join_env, **fake_trainer_env()}
    run = gnsweep("launch", spec, "--results", results, "--no-dashboard", *joined, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2/2 trials ended" in run.stdout, run.stdout[-3000:]  # the progress line counts the shared trial
    sweep = results / "shared"
    trials = pd.read_parquet(sweep / "trials")
    alias = trials[trials.groups == 1]
    assert len(alias) == 1 and alias.iloc[0]["same_as"] == "ln-b128-s0"
    run_row = trials.set_index("trial_key").loc["ln-b128-s0"]
    assert (alias.iloc[0]["status"], alias.iloc[0]["final_val_err"]) == ("completed", run_row["final_val_err"])
    epochs = pd.read_parquet(sweep / "epochs")
    assert set(epochs["trial_key"]) == {"ln-b128-s0"}
    # the README's line: a study's epochs, shared trials included (each under its own name and configuration)
    study = trials[trials.studies.apply(lambda s: "groups" in s)].assign(run=trials.same_as.fillna(trials.trial_key))
    curves = study[["trial_key", "run", "norm", "groups"]].merge(
        epochs.drop(columns=["norm", "groups", "channels_per_group"]).rename(columns={"trial_key": "run"}), on="run")
    assert curves[["trial_key", "norm", "groups", "epoch"]].values.tolist() == [["gn-b128-g1-s0", "gn", 1, 1],
                                                                                 ["gn-b128-g1-s0", "gn", 1, 2]]
    assert read_hparams(sweep / "tensorboard" / "gn-b128-g1-s0")["groups"] == 1
    assert read_hparams(sweep / "tensorboard" / "ln-b128-s0")["norm"] == "ln"
    assert len(read_scalars(sweep / "tensorboard" / "gn-b128-g1-s0")["error/val"]) == 2

    (sweep / "trials" / "gn-b128-g1-s0.parquet").unlink()
    shutil.rmtree(sweep / "tensorboard" / "gn-b128-g1-s0")
    again = gnsweep("launch", spec, "--results", results, "--no-dashboard", *joined, cwd=tmp_path, env=env)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stderr[-3000:]
    assert pd.read_parquet(sweep / "trials").set_index("trial_key").loc["gn-b128-g1-s0", "same_as"] == "ln-b128-s0"
    assert len(read_scalars(sweep / "tensorboard" / "gn-b128-g1-s0")["error/val"]) == 2
    status = gnsweep("status", "shared", "--results", results, "--watch", cwd=tmp_path, timeout=120)
    assert status.returncode == 0 and "2/2 trials ended, 0 running" in status.stdout
    assert json.loads((sweep / "sweep.json").read_text())["trials"] == ["ln-b128-s0", "gn-b128-g1-s0"]
