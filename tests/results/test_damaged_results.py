"""Damaged results folders through the CLI: a file that is not a table of its schema, or a broken sweep.json, makes
``status``, ``report`` and ``launch`` say one line naming the file and what to do, exit 2, before Ray starts; a
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


DAMAGES = {  # id: (file damaged, how, what the line says about it)
    "epochs-random-bytes": ("epochs/bn-b128-s0.parquet", random_bytes, "not a table of epoch rows"),
    "epochs-zero-length": ("epochs/gn-b128-g8-s0.parquet", zero_length, "not a table of epoch rows"),
    "trials-foreign-parquet": ("trials/bn-b128-s0.parquet", foreign_parquet, "not a table of trial rows"),
    "sweep-json-broken": ("sweep.json", broken_json, "not a sweep record written by gnsweep launch"),
}


def damaged_sweep(root: Path, damage: str) -> Path:
    """A two-trial sweep named ``damaged`` under ``root/results`` as a launch leaves it, with one file damaged."""
    sweep = root / "results" / "damaged"
    for key in KEYS:
        write_trial(sweep, key, key.split("-")[0], 128, flat(20.0), groups=8 if key.startswith("gn") else None,
                    studies=("s",))
    store.write_sweep(sweep, SweepRecord("damaged", {}, KEYS, {"s": "norms"}))
    name, how, _ = DAMAGES[damage]
    how(sweep / name)
    return sweep / name


def gnsweep(*args, cwd: Path):
    """The CLI with Ray's temp dir under ``cwd``, to see that it was never created."""
    return cli.gnsweep(*args, cwd=cwd, env={"RAY_TMPDIR": str(cwd / "ray-tmp")})


def assert_one_line_naming(run, path: Path, says: str) -> None:
    assert run.returncode == 2, (run.stdout[-2000:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.splitlines() == [run.stderr.strip()] and run.stderr.startswith(f"gnsweep: {path}: {says} (")
    assert "move the file out of the sweep's folder" in run.stderr


@pytest.mark.parametrize("damage", DAMAGES)
def test_status_and_report_name_the_damaged_file(damage, tmp_path):
    bad = damaged_sweep(tmp_path, damage)
    for command in ("status", "report"):
        run = gnsweep(command, "damaged", "--results", tmp_path / "results", cwd=tmp_path)
        assert_one_line_naming(run, bad, DAMAGES[damage][2])
    assert not (tmp_path / "results" / "damaged" / "report").exists()


@pytest.mark.parametrize("damage", DAMAGES)
def test_launch_names_the_damaged_file_before_ray_starts(damage, tmp_path, digits_dataset):
    bad = damaged_sweep(tmp_path, damage)
    before = {p: p.read_bytes() for p in bad.parent.parent.rglob("*") if p.is_file()}
    spec = tmp_path / "damaged.yaml"
    spec.write_text(f"name: damaged\ndataset: {digits_dataset}\nmodel: resnet8\ntrain: {{epochs: 2, base_batch: 32}}\n"
                    f"studies: {{s: {{norm: [bn, gn], batch_size: [128]}}}}\ndefaults: {{groups: 8}}\n")
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--no-dashboard", cwd=tmp_path)
    assert_one_line_naming(run, bad, DAMAGES[damage][2])
    assert not (tmp_path / "ray-tmp").exists() and "running" not in run.stdout
    assert {p: p.read_bytes() for p in bad.parent.parent.rglob("*") if p.is_file()} == before  # nothing written
