import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from raw_trees import fake_tree, zip_tree
from typer.testing import CliRunner

from orchestrator.cli import app
from trainer import data
from trainer.data import shards
from trainer.data import DataError, check_dataset, load_info, prepare, resolve_dataset, verify
from trainer.data.preparation import prepared_dir

REPO = Path(__file__).resolve().parents[2]


def records(dataset_dir: Path, split: str) -> list[dict]:
    """Every example of a split as {name, label, image (JPEG bytes)}, shard by shard."""
    info = load_info(dataset_dir)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
            "name": tf.io.FixedLenFeature([], tf.string)}
    out = []
    for shard in info.shards[split]:
        for raw in tf.data.TFRecordDataset(str(dataset_dir / shard["file"])):
            ex = tf.io.parse_single_example(raw, spec)
            out.append({"name": ex["name"].numpy().decode(), "label": int(ex["label"]),
                        "image": ex["image"].numpy()})
    return out


# --- digits -------------------------------------------------------------------------------------------------

def test_digits_is_the_real_sklearn_set_split_80_20(digits_dataset):
    info = load_info(digits_dataset)
    assert info.counts == {"train": 1437, "val": 360}
    assert info.num_classes == 10 and info.image_size == (16, 16)
    assert [c["wnid"] for c in info.classes] == [f"digit{d}" for d in range(10)]
    assert info.classes[3]["words"] == "three"
    assert info.augment == {"pad": 2, "flip": False}  # pad: 1/8 of the side
    assert (len(info.shards["train"]), len(info.shards["val"])) == (4, 1)
    verify(digits_dataset, info)
    val = records(digits_dataset, "val")
    assert all(34 <= n <= 37 for n in np.bincount([r["label"] for r in val], minlength=10))
    assert tf.io.decode_jpeg(val[0]["image"]).shape == (16, 16, 1)


# --- the real Tiny ImageNet sample --------------------------------------------------------------------------

def test_sample_from_directory_keeps_bytes_labels_and_checksums(sample_dataset, tiny_sample):
    info = load_info(sample_dataset)
    wnids = sorted((tiny_sample / "wnids.txt").read_text().split())
    assert info.counts == {"train": 1000, "val": 500}
    assert info.num_classes == 10 and info.image_size == (64, 64)
    assert [c["wnid"] for c in info.classes] == wnids
    assert info.classes[0]["words"] and info.label_rule == data.LABEL_RULE
    assert info.augment == {"pad": 8, "flip": True}
    for s in info.shards["train"] + info.shards["val"]:
        assert hashlib.sha256((sample_dataset / s["file"]).read_bytes()).hexdigest() == s["sha256"]
    verify(sample_dataset, info)

    train = records(sample_dataset, "train")
    assert len({r["name"] for r in train}) == 1000
    for r in train:
        wnid = r["name"].split("_")[0]
        assert r["label"] == wnids.index(wnid)
        assert r["image"] == (tiny_sample / "train" / wnid / "images" / r["name"]).read_bytes()
    labels = [r["label"] for r in train]
    assert labels[:250] != sorted(labels[:250]), "shards must be written in a shuffled order"

    annotations = dict(line.split("\t")[:2] for line in
                       (tiny_sample / "val" / "val_annotations.txt").read_text().splitlines() if line)
    val = records(sample_dataset, "val")
    assert sorted(r["name"] for r in val) == sorted(annotations)
    for r in val:
        assert r["label"] == wnids.index(annotations[r["name"]])
        assert r["image"] == (tiny_sample / "val" / "images" / r["name"]).read_bytes()


def test_sample_from_zip_gives_the_same_shards(sample_dataset, tiny_sample, tmp_path):
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for rel in ["wnids.txt", "words.txt", "val/val_annotations.txt"]:
            zf.write(tiny_sample / rel, f"tiny-imagenet-200/{rel}")
        for f in sorted((tiny_sample / "train").rglob("*.JPEG")) + sorted((tiny_sample / "val").rglob("*.JPEG")):
            zf.write(f, "tiny-imagenet-200/" + f.relative_to(tiny_sample).as_posix())
    info = prepare(str(archive), tmp_path / "from-zip", progress=False)
    assert info.counts == {"train": 1000, "val": 500} and info.source == str(archive.resolve())
    assert info.shards == load_info(sample_dataset).shards
    assert info.normalize == load_info(sample_dataset).normalize


# --- idempotence, atomicity, bad input ----------------------------------------------------------------------

def test_prepare_again_returns_the_existing_dataset_and_refuses_others(tmp_path):
    tree = fake_tree(tmp_path / "tree")
    out = tmp_path / "out"
    first = prepare(str(tree), out, progress=False)
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert prepare(str(tree), out, progress=False) == first
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    other = fake_tree(tmp_path / "other")
    with pytest.raises(DataError, match="already holds a dataset prepared from"):
        prepare(str(other), out, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        prepare(str(tree), tmp_path / "busy", progress=False)
    (tmp_path / "empty").mkdir()
    assert prepare(str(tree), tmp_path / "empty", progress=False).counts == {"train": 6, "val": 4}


def test_interrupted_prepare_leaves_nothing(tmp_path, monkeypatch):
    tree = fake_tree(tmp_path / "tree", train_per_class=300)
    real, calls = shards.write_shard, []

    def write_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(shards, "write_shard", write_then_interrupt)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare(str(tree), out, progress=False)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


def _truncate(tree):
    f = tree / "train" / "n00000001" / "images" / "n00000001_1.JPEG"
    f.write_bytes(f.read_bytes()[:200])
    return f


def _not_jpeg(tree):
    f = tree / "val" / "images" / "val_3.JPEG"
    f.write_bytes(tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy())
    return f


def _no_annotations(tree):
    f = tree / "val" / "val_annotations.txt"
    f.unlink()
    return f


def _empty_class(tree):
    d = tree / "train" / "n00000002" / "images"
    for f in d.iterdir():
        f.unlink()
    return d


def _missing_val_image(tree):
    f = tree / "val" / "images" / "val_0.JPEG"
    f.unlink()
    return f


@pytest.mark.parametrize("damage", [_truncate, _not_jpeg, _no_annotations, _empty_class, _missing_val_image])
def test_bad_source_names_the_file_and_writes_nothing(tmp_path, damage):
    tree = fake_tree(tmp_path / "tree")
    bad = damage(tree)
    with pytest.raises(DataError) as e:
        prepare(str(tree), tmp_path / "out", progress=False)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


def test_bad_member_of_a_zip_is_named_by_archive_and_member(tmp_path):
    tree = fake_tree(tmp_path / "tree")
    _truncate(tree)
    archive = zip_tree(tree, tmp_path / "t.zip")
    with pytest.raises(DataError, match=r"t\.zip:tiny-imagenet-200/train/n00000001/images/n00000001_1\.JPEG"):
        prepare(str(archive), tmp_path / "out", progress=False)


def test_skip_bad_leaves_bad_images_out_and_counts_them(tmp_path):
    tree = fake_tree(tmp_path / "tree")
    _truncate(tree)
    _not_jpeg(tree)
    info = prepare(str(tree), tmp_path / "out", skip_bad=True, progress=False)
    assert info.counts == {"train": 5, "val": 3, "skipped": 2}
    assert "n00000001_1.JPEG" not in {r["name"] for r in records(tmp_path / "out", "train")}
    verify(tmp_path / "out", load_info(tmp_path / "out"))


def test_many_bad_images_are_listed_briefly(tmp_path):
    tree = fake_tree(tmp_path / "tree", train_per_class=8)
    for f in (tree / "train" / "n00000001" / "images").iterdir():
        f.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"8 unreadable images: .* and 3 more \(use --skip-bad"):
        prepare(str(tree), tmp_path / "out", progress=False)


def test_verify_names_a_changed_or_missing_shard(digits_dataset, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(digits_dataset, copy)
    info = load_info(copy)
    shard = copy / info.shards["train"][2]["file"]
    blob = bytearray(shard.read_bytes())
    blob[100] ^= 1
    shard.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=f"{shard}: shard does not match the sha256"):
        verify(copy, info)
    shard.unlink()
    with pytest.raises(DataError, match=f"{shard}: shard missing"):
        verify(copy, info)


def test_load_info_names_the_file_and_field(digits_dataset, tmp_path):
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"dataset\.json: not valid JSON"):
        load_info(tmp_path)
    raw = json.loads((digits_dataset / "dataset.json").read_text())
    raw["counts"]["train"] += 1
    (tmp_path / "dataset.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"dataset\.json: field 'counts\.train'"):
        load_info(tmp_path)
    with pytest.raises(DataError, match="missing"):
        load_info(tmp_path / "nowhere")


# --- the CLI ------------------------------------------------------------------------------------------------

def test_cli_prepare_bad_source_exits_2_with_one_line(tmp_path):
    tree = fake_tree(tmp_path / "tree")
    _no_annotations(tree)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "data", "prepare", str(tree), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gnsweep: ")
    assert "val_annotations.txt" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_prepare_corrupt_image_and_success(tmp_path):
    tree = fake_tree(tmp_path / "tree")
    bad = _truncate(tree)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "prepare", str(tree), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and str(bad) in result.stderr and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["data", "prepare", str(tree), "--out", str(tmp_path / "out"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "5 train, 4 val images, 2 classes" in result.stdout


# --- spec values --------------------------------------------------------------------------------------------

def test_check_dataset_is_fast_and_needs_no_tensorflow(digits_dataset, tmp_path):
    tree = fake_tree(tmp_path / "tree")
    archive = zip_tree(tree, tmp_path / "t.zip")
    (tmp_path / "notes.txt").write_text("x")
    cases = {"builtin:digits": None, str(digits_dataset): None, str(tree): None, str(archive): None,
             str(tmp_path / "nowhere"): "does not exist", str(tmp_path / "notes.txt"): "not a directory or",
             str(tree / "train"): "neither a prepared dataset"}
    script = ("import json, sys; from trainer.data import check_dataset; "
              "print(json.dumps([check_dataset(s) for s in json.loads(sys.argv[1])])); "
              "assert 'tensorflow' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(list(cases))], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for (value, expected), got in zip(cases.items(), json.loads(proc.stdout)):
        assert (got is None) if expected is None else (expected in got), (value, got)
    assert check_dataset(str(tmp_path / "nowhere")) is not None


def test_resolve_dataset_prepares_raw_sources_once(digits_dataset, tmp_path):
    assert resolve_dataset(str(digits_dataset), tmp_path / "data") == digits_dataset
    assert resolve_dataset("builtin:digits", digits_dataset.parent) == digits_dataset
    archive = zip_tree(fake_tree(tmp_path / "tree"), tmp_path / "tiny.zip")
    assert prepared_dir(str(archive), tmp_path / "data") == tmp_path / "data" / "tiny-shards"  # said before preparing
    out = resolve_dataset(str(archive), tmp_path / "data")
    assert out == tmp_path / "data" / "tiny-shards" and load_info(out).counts["train"] == 6
    assert resolve_dataset(str(archive), tmp_path / "data") == out
    assert resolve_dataset(str(tmp_path / "tree"), tmp_path / "data") == tmp_path / "data" / "tree-shards"
    with pytest.raises(DataError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nowhere"), tmp_path / "data")
