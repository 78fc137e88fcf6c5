"""Damaged results folders through the CLI: a file that is not a table of its schema, rows that make no sense (the
same epoch twice, epoch 0, an error beyond 0-100 %, an unknown status), or a broken sweep.json, makes ``status``,
``report`` and ``launch`` say one line naming the file, the field and what to do, exit 2, before Ray starts; a
foreign Parquet file never becomes rows of nulls."""
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_analysis import flat, write_trial

from results import store
from results.records import SweepRecord
from tests.support import cli
KEYS = ("bn-b128-s0", "gn-b128-g8-s0")


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(3000))


def zero_length(path: Path) -> None:
    path.write_bytes(b"")


def foreign_parquet(path: Path) -> None:
    pq.write_table(pa.table({"image": ["a.jpg", "b.jpg"], "label": [3, 7]}), path)


def broken_json(path: Path) -> None:
    path.write_text('{"name": "damaged", "fingerprint": {"model": ')


def changed(column: str, value, row: int = 0):
    """Rewrite the Parquet file with one value changed: the schema still fits, the row makes no sense."""
    def damage(path: Path) -> None:
        table = pq.read_table(path)
        values = table[column].to_pylist()
        values[row] = value
        pq.write_table(table.set_column(table.schema.get_field_index(column), column,
                                        pa.array(values, table.schema.field(column).type)), path)
    return damage


def copy_of(sibling: str):
    def damage(path: Path) -> None:
        path.write_bytes((path.parent / sibling).read_bytes())
    return damage


DAMAGES = {  # id: (file damaged, how, what the line says about it, the field it names)
    "epochs-random-bytes": ("epochs/bn-b128-s0.parquet", random_bytes, "not a table of epoch rows", ""),
    "epochs-zero-length": ("epochs/gn-b128-g8-s0.parquet", zero_length, "not a table of epoch rows", ""),
    "trials-foreign-parquet": ("trials/bn-b128-s0.parquet", foreign_parquet, "not a table of trial rows", ""),
    "sweep-json-broken": ("sweep.json", broken_json, "not a sweep record written by gnsweep launch", ""),
    "epochs-twice": ("epochs/zz-copy.parquet", copy_of("bn-b128-s0.parquet"), "not a table of epoch rows",
                     "trial_key, epoch: trial_key 'bn-b128-s0' epoch 1 is in bn-b128-s0.parquet too"),
    "epoch-zero": ("epochs/gn-b128-g8-s0.parquet", changed("epoch", 0, 2), "not a table of epoch rows",
                   "epoch: 0 in trial 'gn-b128-g8-s0'"),
    "error-over-100": ("epochs/bn-b128-s0.parquet", changed("val_err", 250.0, 3), "not a table of epoch rows",
                       "val_err: 250.0 in trial 'bn-b128-s0' epoch 4"),
    "error-negative": ("epochs/bn-b128-s0.parquet", changed("train_err", -3.0), "not a table of epoch rows",
                       "train_err: -3.0 in trial 'bn-b128-s0' epoch 1"),
    "error-infinite": ("epochs/bn-b128-s0.parquet", changed("val_err_top5", float("inf")),
                       "not a table of epoch rows", "val_err_top5: inf"),
    "trial-status-unknown": ("trials/bn-b128-s0.parquet", changed("status", "finished"), "not a table of trial rows",
                             "status: 'finished' of trial 'bn-b128-s0'"),
    "trial-error-over-100": ("trials/gn-b128-g8-s0.parquet", changed("final_val_err", 101.5),
                             "not a table of trial rows", "final_val_err: 101.5 of trial 'gn-b128-g8-s0'"),
}


def damaged_sweep(root: Path, damage: str) -> Path:
    """A two-trial sweep named ``damaged`` under ``root/results`` as a launch leaves it, with one file damaged."""
    sweep = root / "results" / "damaged"
    for key in KEYS:
        write_trial(sweep, key, key.split("-")[0], 128, flat(20.0), groups=8 if key.startswith("gn") else None,
                    studies=("s",))
    store.write_sweep(sweep, SweepRecord("damaged", {}, KEYS, {"s": "norms"}))
    name, how, _, _ = DAMAGES[damage]
    how(sweep / name)
    return sweep / name


def gnsweep(*args, cwd: Path):
    """The CLI with Ray's temp dir under ``cwd``, to see that it was never created."""
    return cli.gnsweep(*args, cwd=cwd, env={"RAY_TMPDIR": str(cwd / "ray-tmp")})


def assert_one_line_naming(run, path: Path, says: str, field: str = "") -> None:
    assert run.returncode == 2, (run.stdout[-2000:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.splitlines() == [run.stderr.strip()] and run.stderr.startswith(f"gnsweep: {path}: {says} (")
    assert field in run.stderr and "move the file out of the sweep's folder" in run.stderr


@pytest.mark.parametrize("damage", DAMAGES)
def test_status_and_report_name_the_damaged_file(damage, tmp_path):
    bad = damaged_sweep(tmp_path, damage)
    for command in ("status", "report"):
        run = gnsweep(command, "damaged", "--results", tmp_path / "results", cwd=tmp_path)
        assert_one_line_naming(run, bad, *DAMAGES[damage][2:])
    assert not (tmp_path / "results" / "damaged" / "report").exists()


@pytest.mark.parametrize("damage", DAMAGES)
def test_launch_names_the_damaged_file_before_ray_starts(damage, tmp_path, digits_dataset):
    bad = damaged_sweep(tmp_path, damage)
    before = {p: p.read_bytes() for p in bad.parent.parent.rglob("*") if p.is_file()}
    spec = tmp_path / "damaged.yaml"
    spec.write_text(f"name: damaged\ndataset: {digits_dataset}\nmodel: resnet8\ntrain: {{epochs: 2, base_batch: 32}}\n"
                    f"studies: {{s: {{norm: [bn, gn], batch_size: [128]}}}}\ndefaults: {{groups: 8}}\n")
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--no-dashboard", cwd=tmp_path)
    assert_one_line_naming(run, bad, *DAMAGES[damage][2:])
    assert not (tmp_path / "ray-tmp").exists() and "running" not in run.stdout
    assert {p: p.read_bytes() for p in bad.parent.parent.rglob("*") if p.is_file()} == before  # nothing written
