"""``gnsweep calibrate``: a real calibration of resnet8 on the built-in digits, written as Parquet, read back with
pandas, and used by the next dry run instead of the FLOP count."""
import pandas as pd
import pytest

from orchestrator.cost.devices import local_device, slug
from tests.support.cli import gnsweep

SPEC = """name: cal
dataset: builtin:digits
model: resnet8
train: {epochs: 3, base_lr: 0.1, base_batch: 32, augment: false}
studies:
  norms: {norm: [bn], batch_size: [32]}
  shared: {norm: [gn], groups: [8], batch_size: [32]}
seeds: [0, 1]
defaults: {groups: 8}
resources: {cpu: 1}
"""


@pytest.mark.slow
def test_calibrate_writes_a_table_that_the_dry_run_uses(tmp_path):
    (tmp_path / "cal.yaml").write_text(SPEC)
    run = gnsweep("calibrate", "cal.yaml", "--steps", "10", cwd=tmp_path, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == "", "gnsweep's own lines only (a tf.function retracing warning leaked): " + run.stderr
    path = tmp_path / "results" / "calibration" / f"{slug(local_device())}.parquet"
    assert f"calibration: {path}" in run.stdout
    table = pd.read_parquet(path)
    # one row per distinct (model, norm, batch, replicas, precision): two seeds are one shape
    assert sorted(table["norm"]) == ["bn", "gn"] and len(table) == 2
    assert set(table["device"]) == {local_device()}
    assert (table[["height", "width"]] == 16).all().all() and (table["batch_size"] == 32).all()
    assert (table["steps_per_second"] > 1).all() and (table["steps_timed"] >= 10).all()
    assert list(table["images_per_second"]) == pytest.approx(list(32 * table["steps_per_second"]))
    assert (table["val_seconds_per_image"] > 0).all() and (table["startup_seconds"] > 0).all()
    assert (table["import_seconds"] > 0).all() and (table["checkpoint_seconds"] > 0).all()
    assert set(table["memory_kind"]) <= {"RSS peak growth", "device peak", "not measured"}
    assert table["data"].str.startswith("real").all()

    dry = gnsweep("launch", "cal.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"device: {local_device()}: calibrated (2 shapes measured by gnsweep calibrate)" in dry.stdout
    assert "wall time on this machine" in dry.stdout and "longest first" in dry.stdout


def test_a_dataset_too_small_for_the_steps_names_steps(tmp_path):
    """1,437 digits make 44 steps of batch 32 an epoch; 60 timed steps need 62 with the warm-up. The error said
    'calibrating needs 62' without naming the option that sets it. The digits' sizes are known: the steps are
    refused before the digits are prepared (or TensorFlow imported)."""
    (tmp_path / "cal.yaml").write_text(SPEC)
    run = gnsweep("calibrate", "cal.yaml", "--steps", "60", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gnsweep: --steps 60: "), run.stderr
    assert "1437 training images, 44 steps of batch 32 an epoch" in lines[0]
    assert lines[0].endswith("; pass --steps 42 or fewer"), lines[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
