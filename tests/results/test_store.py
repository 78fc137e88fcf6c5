import threading
from datetime import datetime, timezone

import pandas as pd
import pytest

from results import store
from results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA


def epoch_row(key="gn-b32-g8-s0", epoch=1, val_err=50.0, attempt=0):
    return {"sweep": "t", "trial_key": key, "model": "resnet8", "norm": key.split("-")[0], "batch_size": 32,
            "groups": 8 if key.startswith("gn") else None, "channels_per_group": None, "seed": 0, "epoch": epoch,
            "train_loss": 1.0, "train_err": 40.0, "val_loss": 1.1, "val_err": val_err, "val_err_top5": 5.0,
            "lr": 0.1, "epoch_seconds": 2.0, "images_per_second": 700.0, "attempt": attempt, "node": "n1",
            "recorded_at": datetime.now(timezone.utc)}


def test_epochs_table_reads_with_plain_pandas(tmp_path):
    for key in ("gn-b32-g8-s0", "bn-b32-s0"):
        for e in (1, 2, 3):
            assert store.write_epoch_row(tmp_path, epoch_row(key, e))
    df = pd.read_parquet(tmp_path / "epochs")
    assert len(df) == 6 and set(df.columns) == set(EPOCH_SCHEMA.names)
    assert str(df["batch_size"].dtype) == "int32" and df["groups"].isna().sum() == 3
    assert df["recorded_at"].dt.tz is not None


def test_one_row_per_trial_and_epoch_first_write_wins(tmp_path):
    assert store.write_epoch_row(tmp_path, epoch_row(epoch=1, val_err=30.0, attempt=0))
    assert not store.write_epoch_row(tmp_path, epoch_row(epoch=1, val_err=99.0, attempt=1))
    df = store.read_epochs(tmp_path)
    assert len(df) == 1 and df.loc[0, "val_err"] == 30.0 and df.loc[0, "attempt"] == 0


def test_trial_row_is_replaced(tmp_path):
    row = {"sweep": "t", "trial_key": "bn-b2-s0", "model": "m", "norm": "bn", "batch_size": 2, "groups": None,
           "channels_per_group": None, "seed": 0, "status": "running", "epochs": 1, "final_val_err": None,
           "best_val_err": None, "error": None, "studies": ["norms", "batch_size"], "attempts": 1,
           "started_at": datetime.now(timezone.utc), "ended_at": None, "train_seconds": 1.0}
    store.write_trial_row(tmp_path, row)
    store.write_trial_row(tmp_path, {**row, "status": "completed", "epochs": 5})
    df = pd.read_parquet(tmp_path / "trials")
    assert len(df) == 1 and df.loc[0, "status"] == "completed" and list(df.loc[0, "studies"]) == ["norms",
                                                                                                    "batch_size"]
    assert set(df.columns) == set(TRIAL_SCHEMA.names)


def test_empty_tables_have_the_schema(tmp_path):
    assert list(store.read_epochs(tmp_path).columns) == EPOCH_SCHEMA.names
    assert list(store.read_trials(tmp_path).columns) == TRIAL_SCHEMA.names


def test_bad_row_leaves_no_file(tmp_path):
    with pytest.raises(Exception):
        store.write_epoch_row(tmp_path, {**epoch_row(), "val_err": "not a number"})
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob(".*.tmp"))


def test_reader_polling_during_writes_never_sees_a_partial_file(tmp_path):
    """Files appear atomically: a reader polling pd.read_parquet while rows are written never fails."""
    store.write_epoch_row(tmp_path, epoch_row(epoch=1))
    done = threading.Event()
    seen, errors = [], []

    def poll():
        while not done.is_set():
            try:
                seen.append(len(pd.read_parquet(tmp_path / "epochs")))
            except Exception as e:  # noqa: BLE001 - any failure is the bug under test
                errors.append(repr(e))

    reader = threading.Thread(target=poll)
    reader.start()
    for e in range(2, 150):
        store.write_epoch_row(tmp_path, epoch_row(epoch=e))
    done.set()
    reader.join()
    assert not errors and seen and seen == sorted(seen) and len(store.read_epochs(tmp_path)) == 149
