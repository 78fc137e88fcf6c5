"""dataset.json against its shards: the check a launch runs before Ray starts reads the shards without TensorFlow."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.data.manifest import DataError, load_info, verify

REPO = Path(__file__).resolve().parents[2]


def test_verify_reads_the_real_sample_without_tensorflow(sample_dataset):
    script = ("import sys, time; from trainer.data.manifest import load_info, verify; t = time.perf_counter(); "
              "verify(sys.argv[1], load_info(sys.argv[1])); print(time.perf_counter() - t); "
              "assert 'tensorflow' not in sys.modules, 'verify imported TensorFlow'")
    proc = subprocess.run([sys.executable, "-c", script, str(sample_dataset)], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0])
def test_statistics_must_be_finite_and_positive(digits_dataset, tmp_path, value):
    info = json.loads((digits_dataset / "dataset.json").read_text())
    info["normalize"]["std"][2] = value
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match=r"dataset\.json: field 'normalize\.std' must be finite"):
        load_info(tmp_path)


def test_a_shard_that_is_not_a_record_file_is_named(digits_dataset, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(digits_dataset, copy)
    info = json.loads((copy / "dataset.json").read_text())
    shard = copy / info["shards"]["val"][0]["file"]
    shard.write_bytes(b"\x05" + shard.read_bytes()[1:])
    info["shards"]["val"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    (copy / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match=f"{shard}: not a shard gnsweep wrote"):
        verify(copy, load_info(copy))
