"""The driver-side results writer on real Parquet, fed as Ray Tune feeds it: a fresh trial, a trial resumed by a
later launch, an ended trial and a trial of a sweep written one file per row each end up as one file per trial
with each epoch once; an epoch costs no read however many epochs came before."""
from types import SimpleNamespace

import pandas as pd
import pytest

from orchestrator.tune.results_writer import ResultsWriter
from results import folding, store
from results.parquet_folder import ParquetFolder

KEY = "gn-b32-g8-s0"
CONFIG = {"model": "resnet8", "norm": "gn", "batch_size": 32, "groups": 8, "channels_per_group": None, "seed": 0}
METRICS = ("train_loss", "train_err", "val_loss", "val_err", "val_err_top5", "lr", "epoch_seconds",
           "images_per_second")


def fake_trial(key: str = KEY):
    """The two attributes of a Tune trial that ResultsWriter reads."""
    return SimpleNamespace(config={"trial": {"key": key, "config": CONFIG}}, error_file=None)


def result(epoch: int, val_err: float) -> dict:
    return {**dict.fromkeys(METRICS, 1.0), "val_err": val_err, "epoch": epoch, "node": "n"}


def epoch_rows(sweep) -> list[str]:
    return sorted(p.name for p in (sweep / "epochs").iterdir())


def writer(sweep) -> ResultsWriter:
    return ResultsWriter(sweep, "s", {KEY: ("a",)}, store.read_trial_rows(sweep))


def test_a_fresh_trial_is_one_file_rewritten_whole_each_epoch(tmp_path):
    w, trial = writer(tmp_path), fake_trial()
    w.on_trial_start(0, [], trial)
    for e in (1, 2, 3):
        w.on_trial_result(0, [], trial, result(e, 50.0 - e))
        assert epoch_rows(tmp_path) == [f"{KEY}.parquet"]
        assert pd.read_parquet(tmp_path / "epochs")["epoch"].tolist() == list(range(1, e + 1))
    assert store.read_trials(tmp_path).loc[0, "epochs"] == 3
    w.on_trial_complete(0, [], trial)
    row = store.read_trials(tmp_path).iloc[0]
    assert row["status"] == "completed" and row["best_val_err"] == 47.0 and epoch_rows(tmp_path) == [f"{KEY}.parquet"]


def test_a_trial_resumed_by_a_later_launch_keeps_its_first_rows(tmp_path):
    """The trainer reports its checkpointed epochs again on resume; the rows written first stay."""
    first, trial = writer(tmp_path), fake_trial()
    first.on_trial_start(0, [], trial)
    for e in (1, 2):
        first.on_trial_result(0, [], trial, result(e, 40.0))
    again = writer(tmp_path)  # the driver died; a relaunch takes the trial back
    again.on_trial_start(0, [], trial)
    for e, err in ((1, 99.0), (2, 99.0), (3, 30.0)):
        again.on_trial_result(0, [], trial, result(e, err))
    again.on_trial_complete(0, [], trial)
    epochs = pd.read_parquet(tmp_path / "epochs").sort_values("epoch")
    assert epochs["val_err"].tolist() == [40.0, 40.0, 30.0] and epochs["attempt"].tolist() == [0, 0, 1]
    assert epoch_rows(tmp_path) == [f"{KEY}.parquet"]
    assert store.read_trials(tmp_path).loc[0, "attempts"] == 2


def test_a_trial_of_a_sweep_written_one_file_per_row_is_folded_when_the_writer_meets_it(tmp_path):
    first = writer(tmp_path)
    first.on_trial_start(0, [], fake_trial())
    first.on_trial_result(0, [], fake_trial(), result(1, 40.0))
    rows = store.read_epoch_rows(tmp_path)
    (tmp_path / "epochs" / f"{KEY}.parquet").rename(tmp_path / "epochs" / folding.row_file_name(KEY, 1))  # old layout
    assert [r.epoch for r in store.read_epoch_rows(tmp_path)] == [1]
    again = writer(tmp_path)
    again.on_trial_start(0, [], fake_trial())
    assert epoch_rows(tmp_path) == [f"{KEY}.parquet"]
    again.on_trial_result(0, [], fake_trial(), result(2, 35.0))
    assert store.read_epoch_rows(tmp_path)[0] == rows[0]
    assert pd.read_parquet(tmp_path / "epochs")["epoch"].sort_values().tolist() == [1, 2]


def test_an_epoch_reads_nothing_back(tmp_path, monkeypatch):
    """The writer keeps the trial's rows: after it first meets a trial, an epoch is two writes and no read (the
    read of every earlier row per epoch was what made Tune warn 'Processing trial results took 2.4 s')."""
    w, trial = writer(tmp_path), fake_trial()
    w.on_trial_start(0, [], trial)
    reads = []
    real = ParquetFolder._fetch
    monkeypatch.setattr(ParquetFolder, "_fetch", lambda self, *a: reads.append(a[0]) or real(self, *a))
    monkeypatch.setattr(ParquetFolder, "_list", lambda self: reads.append("listing") or [])
    for e in range(1, 21):
        w.on_trial_result(0, [], trial, result(e, 30.0))
    w.on_trial_complete(0, [], trial)
    assert reads == []
    monkeypatch.undo()
    assert len(store.read_epochs(tmp_path)) == 20


def test_a_row_that_could_not_be_written_is_not_taken_as_written(tmp_path, monkeypatch):
    w, trial = writer(tmp_path), fake_trial()
    w.on_trial_start(0, [], trial)
    w.on_trial_result(0, [], trial, result(1, 40.0))

    def full(*args):
        raise store.StoreError("cannot write epochs: No space left on device")

    monkeypatch.setattr(store, "write_trial_epochs", full)
    with pytest.raises(store.StoreError):
        w.on_trial_result(0, [], trial, result(2, 30.0))
    assert w.failure is not None and sorted(w.epochs[KEY]) == [1]
    monkeypatch.undo()
    w.on_trial_result(0, [], trial, result(2, 30.0))  # reported again after the resume: now written
    assert store.read_epochs(tmp_path)["epoch"].tolist() == [1, 2]
