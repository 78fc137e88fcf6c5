"""Corrupt data through the CLI: a damaged copy of the real Tiny ImageNet sample given to ``gnsweep data prepare``
(and to ``gnsweep launch`` as a raw source), and a prepared dataset whose shards were lost or changed. Each is one
line naming the file, exit status 2, no traceback, and nothing started or written."""
import json
import shutil
import time
from pathlib import Path

import pytest
from data_faults import cut_sample, one_line_error

from tests.support.cli import gnsweep, write_spec

TRAIN_PER_CLASS = 4
VAL_PER_CLASS = 2


@pytest.fixture
def sample_copy(tiny_sample, tmp_path) -> Path:
    """A copy of the real sample cut to 4 train and 2 val images of each of its 10 classes."""
    return cut_sample(tiny_sample, tmp_path / "tiny-imagenet-200", TRAIN_PER_CLASS, VAL_PER_CLASS)


def truncate_one_train_image(root: Path) -> Path:
    f = sorted((root / "train").glob("*/images/*.JPEG"))[5]
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    return f


def replace_one_val_image_with_text(root: Path) -> Path:
    f = sorted((root / "val" / "images").iterdir())[3]
    f.write_text("this is not an image\n")
    return f


@pytest.mark.slow  # gnsweep data prepare imports TensorFlow and checks every JPEG: tens of seconds
def test_unreadable_images_are_named_and_skip_bad_counts_them(sample_copy, tmp_path):
    truncated = truncate_one_train_image(sample_copy)
    not_jpeg = replace_one_val_image_with_text(sample_copy)
    out = tmp_path / "prepared"

    run = gnsweep("data", "prepare", sample_copy, "--out", out, cwd=tmp_path)
    line = one_line_error(run, truncated, not_jpeg, "--skip-bad")
    assert "2 unreadable images" in line and "corrupt or truncated JPEG" in line and "not a JPEG" in line
    assert not out.exists() and not list(tmp_path.glob(".prepared.partial-*"))

    run = gnsweep("data", "prepare", sample_copy, "--out", out, "--skip-bad", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    classes = 10
    train, val = classes * TRAIN_PER_CLASS - 1, classes * VAL_PER_CLASS - 1
    assert f"{train} train, {val} val images, {classes} classes" in run.stdout, run.stdout
    counts = json.loads((out / "dataset.json").read_text())["counts"]
    assert counts == {"train": train, "val": val, "skipped": 2}


def remove_annotations(root: Path) -> Path:
    f = root / "val" / "val_annotations.txt"
    f.unlink()
    return f


def empty_one_class(root: Path) -> Path:
    d = sorted((root / "train").iterdir())[2] / "images"
    for f in d.iterdir():
        f.unlink()
    return d


@pytest.mark.parametrize("damage", [remove_annotations, empty_one_class])
def test_broken_tree_is_named_even_with_skip_bad(sample_copy, tmp_path, damage):
    bad = damage(sample_copy)
    for extra in ((), ("--skip-bad",)):
        run = gnsweep("data", "prepare", sample_copy, "--out", tmp_path / "prepared", *extra, cwd=tmp_path)
        one_line_error(run, bad)
    assert not (tmp_path / "prepared").exists()


def assert_nothing_started(run, results: Path, seconds: float) -> None:
    assert "Ray dashboard" not in run.stdout and "running" not in run.stdout and "started" not in run.stdout
    assert not results.exists(), sorted(results.rglob("*"))
    assert seconds < 60, f"took {seconds:.0f} s: something heavier than a check ran"


@pytest.mark.slow  # gnsweep data prepare imports TensorFlow and checks every JPEG: tens of seconds
def test_launch_on_a_raw_sample_with_a_corrupt_image_names_it_before_ray(sample_copy, tmp_path):
    truncated = truncate_one_train_image(sample_copy)
    spec = write_spec(tmp_path / "raw.yaml", sample_copy, name="raw", studies="a: {norm: [bn], batch_size: [8]}")
    started = time.monotonic()
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--data-dir", tmp_path / "data",
                  "--no-dashboard", cwd=tmp_path)
    one_line_error(run, truncated)
    assert_nothing_started(run, tmp_path / "results", time.monotonic() - started)
    data_dir = tmp_path / "data"
    assert not data_dir.exists() or not list(data_dir.iterdir()), "a half-prepared dataset was left behind"


def lose_shard(shard: Path) -> None:
    shard.unlink()


def flip_a_bit(shard: Path) -> None:
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    shard.write_bytes(bytes(blob))


@pytest.mark.parametrize("damage, says", [(lose_shard, "shard missing"),
                                          (flip_a_bit, "does not match the sha256")])
def test_launch_refuses_a_damaged_prepared_dataset_before_ray(digits_dataset, tmp_path, damage, says):
    dataset = tmp_path / "digits"
    shutil.copytree(digits_dataset, dataset)
    info = json.loads((dataset / "dataset.json").read_text())
    shard = dataset / info["shards"]["val"][-1]["file"]
    damage(shard)
    spec = write_spec(tmp_path / "damaged.yaml", dataset, name="damaged",
                      studies="a: {norm: [bn, gn], batch_size: [128]}")
    started = time.monotonic()
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--no-dashboard", cwd=tmp_path)
    one_line_error(run, shard, says)
    assert_nothing_started(run, tmp_path / "results", time.monotonic() - started)


def fewer_classes(info: dict) -> None:
    info["num_classes"] -= 1
    info["classes"].pop()


def more_classes(info: dict) -> None:
    info["num_classes"] += 1
    info["classes"].append({"wnid": "digit10", "words": "ten"})


def larger_images(info: dict) -> None:
    info["image_size"] = [32, 32]


def nan_statistics(info: dict) -> None:
    info["normalize"]["std"][1] = float("nan")


def dropped_shard(info: dict) -> None:
    lost = info["shards"]["train"].pop()
    info["counts"]["train"] -= lost["examples"]


def more_examples(info: dict) -> None:
    info["shards"]["val"][0]["examples"] += 1
    info["counts"]["val"] += 1


@pytest.mark.parametrize("edit, field", [(fewer_classes, "'num_classes' is 9 but the train shards hold label 9"),
                                         (more_classes, "'num_classes' is 11 but the train shards hold 10 classes"),
                                         (larger_images, "'image_size' is [32, 32] but the images are [16, 16]"),
                                         (nan_statistics, "'normalize.std'"),
                                         (dropped_shard, "'shards.train'"),
                                         (more_examples, "'shards.val' says val-00000-of-00001.tfrecord holds")])
def test_launch_refuses_an_edited_dataset_json_before_ray(digits_dataset, tmp_path, edit, field):
    """Edits to dataset.json that keep every shard's sha256 (so only reading the shards shows them) would fail
    inside a trial, with a TensorFlow error naming neither the file nor the field."""
    dataset = tmp_path / "digits"
    shutil.copytree(digits_dataset, dataset)
    info = json.loads((dataset / "dataset.json").read_text())
    edit(info)
    (dataset / "dataset.json").write_text(json.dumps(info))
    spec = write_spec(tmp_path / "edited.yaml", dataset, name="edited", studies="a: {norm: [gn], batch_size: [32]}")
    started = time.monotonic()
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--no-dashboard", cwd=tmp_path)
    one_line_error(run, dataset / "dataset.json", field)
    assert_nothing_started(run, tmp_path / "results", time.monotonic() - started)
