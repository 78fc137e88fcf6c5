import dataclasses
import threading
import typing
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from results import store
from results.records import EPOCH_METRICS, ClaimRow, EpochRow, SweepRecord, TrialRow
from results.schema import CLAIM_SCHEMA, EPOCH_SCHEMA, TRIAL_SCHEMA
from trainer.config import EpochMetrics


def epoch_row(key="gn-b32-g8-s0", epoch=1, val_err=50.0, attempt=0) -> EpochRow:
    return EpochRow(sweep="t", trial_key=key, model="resnet8", norm=key.split("-")[0], batch_size=32,
                    groups=8 if key.startswith("gn") else None, channels_per_group=None, seed=0, epoch=epoch,
                    train_loss=1.0, train_err=40.0, val_loss=1.1, val_err=val_err, val_err_top5=5.0, lr=0.1,
                    epoch_seconds=2.0, images_per_second=700.0, attempt=attempt, node="n1",
                    recorded_at=datetime.now(timezone.utc))


def trial_row(**changes) -> TrialRow:
    row = TrialRow(sweep="t", trial_key="bn-b2-s0", model="m", norm="bn", batch_size=2, groups=None,
                   channels_per_group=None, seed=0, status="running", epochs=1, final_val_err=None,
                   best_val_err=None, error=None, studies=("norms", "batch_size"), attempts=1,
                   started_at=datetime.now(timezone.utc), ended_at=None, train_seconds=1.0)
    return dataclasses.replace(row, **changes)


ARROW_TYPES = {int: (pa.int32(),), float: (pa.float64(),), str: (pa.string(),),
               datetime: (pa.timestamp("ms", tz="UTC"),), tuple[str, ...]: (pa.list_(pa.string()),)}


@pytest.mark.parametrize("record,schema", [(EpochRow, EPOCH_SCHEMA), (TrialRow, TRIAL_SCHEMA),
                                           (ClaimRow, CLAIM_SCHEMA)])
def test_record_fields_are_the_schema_columns(record, schema):
    hints = typing.get_type_hints(record)
    assert [f.name for f in dataclasses.fields(record)] == schema.names
    for name in schema.names:
        hint = hints[name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is not tuple \
            else []
        base = args[0] if len(args) == 1 else hint
        assert schema.field(name).type in ARROW_TYPES[base], name


def test_epoch_metrics_are_the_epoch_rows_metrics():
    assert ("epoch",) + EPOCH_METRICS == tuple(f.name for f in dataclasses.fields(EpochMetrics))
    assert set(EPOCH_METRICS) < set(EPOCH_SCHEMA.names)


def test_epochs_table_reads_with_plain_pandas(tmp_path):
    for key in ("gn-b32-g8-s0", "bn-b32-s0"):
        for e in (1, 2, 3):
            assert store.write_epoch_row(tmp_path, epoch_row(key, e))
    df = pd.read_parquet(tmp_path / "epochs")
    assert len(df) == 6 and set(df.columns) == set(EPOCH_SCHEMA.names)
    assert str(df["batch_size"].dtype) == "int32" and df["groups"].isna().sum() == 3
    assert df["recorded_at"].dt.tz is not None


def test_rows_read_back_as_the_records_written(tmp_path):
    written = [epoch_row("bn-b32-s0", e) for e in (2, 1)]
    for row in written:
        store.write_epoch_row(tmp_path, row)
    back = store.read_epoch_rows(tmp_path)
    assert [r.epoch for r in back] == [1, 2] and back[0].groups is None
    assert dataclasses.replace(back[1], recorded_at=written[0].recorded_at) == written[0]
    store.write_trial_row(tmp_path, trial_row())
    assert store.read_trial_rows(tmp_path) == {"bn-b2-s0": dataclasses.replace(
        trial_row(), started_at=store.read_trial_rows(tmp_path)["bn-b2-s0"].started_at)}


def test_one_row_per_trial_and_epoch_first_write_wins(tmp_path):
    assert store.write_epoch_row(tmp_path, epoch_row(epoch=1, val_err=30.0, attempt=0))
    assert not store.write_epoch_row(tmp_path, epoch_row(epoch=1, val_err=99.0, attempt=1))
    df = store.read_epochs(tmp_path)
    assert len(df) == 1 and df.loc[0, "val_err"] == 30.0 and df.loc[0, "attempt"] == 0


def test_trial_row_is_replaced(tmp_path):
    store.write_trial_row(tmp_path, trial_row())
    store.write_trial_row(tmp_path, trial_row(status="completed", epochs=5))
    df = pd.read_parquet(tmp_path / "trials")
    assert len(df) == 1 and df.loc[0, "status"] == "completed" and list(df.loc[0, "studies"]) == ["norms",
                                                                                                    "batch_size"]
    assert set(df.columns) == set(TRIAL_SCHEMA.names)


def test_empty_tables_have_the_schema(tmp_path):
    assert list(store.read_epochs(tmp_path).columns) == EPOCH_SCHEMA.names
    assert list(store.read_trials(tmp_path).columns) == TRIAL_SCHEMA.names


def test_bad_row_leaves_no_file(tmp_path):
    with pytest.raises(store.RowError, match="a row does not fit the table's schema"):
        store.write_epoch_row(tmp_path, dataclasses.replace(epoch_row(), val_err="not a number"))
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob(".*.tmp"))


def foreign(path):
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)


def other_table(path):
    pq.write_table(pa.Table.from_pylist([trial_row().to_dict()], schema=TRIAL_SCHEMA), path)


@pytest.mark.parametrize("damage,why", [
    (lambda p: p.write_bytes(b"\x00garbage" * 100), "magic bytes"),
    (lambda p: p.write_bytes(b""), "0 bytes"),
    (foreign, "no column sweep, trial_key"),
    (other_table, "no column epoch"),
])
def test_a_file_that_is_not_an_epochs_table_is_named(tmp_path, damage, why):
    store.write_epoch_row(tmp_path, epoch_row(epoch=1))
    bad = tmp_path / "epochs" / "bn-b32-s0-e0001.parquet"
    damage(bad)
    for read in (store.read_epochs, store.read_epoch_rows, store.check_sweep):
        with pytest.raises(store.DamagedResults) as e:
            read(tmp_path)
        assert str(e.value).startswith(f"{bad}: not a table of epoch rows (") and why in str(e.value)
        assert "\n" not in str(e.value) and "move the file out" in str(e.value)


def test_sweep_record_round_trip_and_damage(tmp_path):
    assert store.read_sweep(tmp_path) is None
    record = SweepRecord("s", {"model": "resnet8"}, ("bn-b32-s0",), {"norms": "norms"})
    store.write_sweep(tmp_path, record)
    assert store.read_sweep(tmp_path) == record
    counted = SweepRecord("s", {}, ("k",), {}, {"train": 100_000, "val": 10_000})
    store.write_sweep(tmp_path, counted)
    assert store.read_sweep(tmp_path) == counted
    (tmp_path / "sweep.json").write_text('{"name": "s", "fingerprint": {}, "trials": ["k"]}')
    assert store.read_sweep(tmp_path) == SweepRecord("s", {}, ("k",), {}, {})  # launched before kinds and counts
    for text, why in [('{"name": "s", "trials": [', "Expecting value"), ("[1]", "a JSON object was expected"),
                      ('{"name": "s", "trials": [1]}', "'trials' must be a list of trial keys"),
                      ('{"name": "s", "images": {"val": true}}', "'images' must map dataset splits to positive"),
                      ('{"name": "s", "images": {"val": 0}}', "'images' must map dataset splits to positive")]:
        (tmp_path / "sweep.json").write_text(text)
        with pytest.raises(store.DamagedResults, match=f"sweep.json: not a sweep record written by gnsweep launch "
                                                       f"\\(.*{why}"):
            store.read_sweep(tmp_path)


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
