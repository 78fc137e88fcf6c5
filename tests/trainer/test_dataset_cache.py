"""Datasets in object storage, against a real S3 server (moto's on 127.0.0.1): ``data prepare --out s3://...``, the
checks a launch makes from the bucket, and a node's cache (trainer/data/cache.py): one download per shard whatever
the number of processes, a damaged copy fetched again, a killed download never used, eviction beyond the bound."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from object_store import opened, watched

from trainer.data import DataError, check_dataset, check_prepared, load_info, resolve_dataset
from trainer.data.cache import CACHE_ENV, LIMIT_ENV, LOCKS, CacheSettings, dataset_key, evict, local_dataset
from trainer.data.manifest import INFO_FILE
from trainer.data.remote import upload
from trainer.storage import Location, file_digest

HELPER = Path(__file__).with_name("object_store.py")


def shard_names(info) -> list[str]:
    return [s["file"] for split in ("train", "val") for s in info.shards[split]]


def downloads(log: Path) -> list[str]:
    """The shards opened for reading (each trial start also reads dataset.json), in order."""
    return [Path(p).name for _, p in opened(log) if p.endswith(".tfrecord")]


def publish(local: Path, uri: str) -> str:
    upload(local, Location.of(uri), load_info(local))
    return uri


@pytest.fixture(scope="module")
def remote_digits(bucket, digits_dataset) -> str:
    """The session's prepared digits, uploaded as ``data prepare --out`` would."""
    return publish(digits_dataset, bucket.uri("datasets/digits"))


def renamed(local: Path, tmp: Path, name: str) -> Path:
    """A copy of a prepared dataset whose dataset.json names it ``name``: another dataset for the cache."""
    copy = tmp / name
    shutil.copytree(local, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    (copy / INFO_FILE).write_text(json.dumps({**info, "name": name}))
    return copy


def test_prepare_out_uri_writes_to_the_bucket_not_to_a_local_folder(bucket, tmp_path):
    uri = bucket.uri("prepared/digits")
    run = subprocess.run([sys.executable, "-m", "orchestrator.cli", "data", "prepare", "digits", "--out", uri],
                         cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []  # no local 's3:' folder
    info = load_info(uri)
    where = Location.of(uri)
    assert sorted(f.name for f in where.files()) == sorted([INFO_FILE, *shard_names(info)])
    assert check_dataset(uri) is None and check_prepared(resolve_dataset(uri, tmp_path)) == info
    again = subprocess.run([sys.executable, "-m", "orchestrator.cli", "data", "prepare", "digits", "--out", uri],
                           cwd=tmp_path, env=os.environ, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "prepared digits" in again.stdout, again.stderr[-3000:]


def test_an_upload_cut_short_is_no_dataset_and_the_next_one_replaces_it(bucket, digits_dataset, tmp_path):
    uri = bucket.uri("cut/digits")
    where = Location.of(uri)
    info = load_info(digits_dataset)
    first = shard_names(info)[0]
    (where / first).write_bytes((digits_dataset / first).read_bytes()[:1000])  # what a killed upload leaves
    (where / "train-00007-of-00008.tfrecord").write_bytes(b"x")  # a leftover of another shard count
    assert "missing (not a prepared dataset" in check_dataset(uri)
    upload(digits_dataset, where, info)
    assert sorted(f.name for f in where.files()) == sorted([INFO_FILE, *shard_names(info)])
    check_prepared(where)
    with local_dataset(uri, CacheSettings(tmp_path / "cache", 1 << 30)) as folder:
        assert (folder / first).read_bytes() == (digits_dataset / first).read_bytes()


def test_a_bad_uri_is_one_line_and_exit_2(bucket, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f'name: x\ndataset: "{bucket.uri("no/dataset")}"\nmodel: resnet8\n'
                    f'studies:\n  a: {{norm: [bn], batch_size: [32]}}\n')
    cases = [(["data", "prepare", "digits", "--out", "nosuch://x/y"], "--out nosuch://x/y: cannot open this location"),
             (["data", "prepare", "digits", "--out", bucket.uri("x").replace(bucket.name, "no-such-bucket")],
              "--out s3://no-such-bucket/x: no bucket no-such-bucket"),
             (["launch", str(spec), "--no-dashboard"],
              f"{spec}: dataset: s3://gnsweep-data/no/dataset/dataset.json: missing (not a prepared dataset")]
    for args, words in cases:
        run = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=tmp_path, env=os.environ,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and run.stderr.startswith(f"gnsweep: {words}"), run.stderr[-2000:]
        assert run.stderr.count("\n") == 1, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_prepare_refuses_a_prefix_holding_other_files(bucket, tmp_path):
    from trainer.data import prepare

    uri = bucket.uri("busy/place")
    (Location.of(uri) / "notes.txt").write_text("someone's")
    with pytest.raises(DataError, match=r"exists and holds other files \(notes.txt\); choose another --out"):
        prepare("digits", uri, progress=False)


def test_the_checks_before_ray_read_the_bucket(bucket, digits_dataset, tmp_path):
    missing = bucket.uri("nothing/here")
    problem = check_dataset(missing)
    assert problem.startswith("s3://gnsweep-data/nothing/here/dataset.json") and "missing" in problem
    assert "\n" not in problem
    uri = publish(digits_dataset, bucket.uri("check/digits"))
    lost = shard_names(load_info(uri))[-1]
    Location.of(uri).fs.delete_file((Location.of(uri) / lost).path)
    with pytest.raises(DataError, match=f"^s3://gnsweep-data/check/digits/{lost}: shard missing"):
        check_prepared(resolve_dataset(uri, tmp_path))


def test_a_local_path_is_used_as_it_is(digits_dataset, tmp_path):
    with local_dataset(str(digits_dataset), CacheSettings(tmp_path / "cache", 0)) as folder:
        assert folder == digits_dataset
    assert not (tmp_path / "cache").exists()


def test_a_damaged_copy_is_fetched_again_and_only_it(remote_digits, tmp_path):
    log, settings = tmp_path / "opened.log", CacheSettings(tmp_path / "cache", 1 << 30)
    source = watched(remote_digits, log=log)
    with local_dataset(source, settings) as folder:
        info = load_info(folder)
    names = shard_names(info)
    assert sorted(downloads(log)) == sorted(names)
    shard = info.shards["train"][1]
    blob = bytearray((folder / shard["file"]).read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size, one byte changed
    (folder / shard["file"]).write_bytes(bytes(blob))
    with local_dataset(source, settings) as again:
        assert again == folder and file_digest(folder / shard["file"], "sha256") == shard["sha256"]
    assert downloads(log)[len(names):] == [shard["file"]]


def test_two_processes_fetching_one_dataset_download_each_shard_once(remote_digits, tmp_path):
    log, cache = tmp_path / "opened.log", tmp_path / "cache"
    start = time.time() + 3  # both start together, past their imports
    procs = [subprocess.Popen([sys.executable, str(HELPER), remote_digits, str(cache), "--log", str(log), "--delay",
                               "0.02", "--start-at", str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    (folder_a, start_a, end_a), (folder_b, start_b, end_b) = [out.split() for out, _ in outs]
    assert folder_a == folder_b and float(start_a) < float(end_b) and float(start_b) < float(end_a)  # overlapped
    info = load_info(folder_a)
    assert sorted(downloads(log)) == sorted(shard_names(info))  # every shard downloaded once, by one or the other
    for s in info.shards["train"] + info.shards["val"]:
        assert file_digest(Path(folder_a) / s["file"], "sha256") == s["sha256"]


def test_a_killed_download_leaves_nothing_that_is_used(remote_digits, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, str(HELPER), remote_digits, str(cache), "--stall-after", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob("*/.*.part-*")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        parts = list(cache.glob("*/.*.part-*"))
        assert parts and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "no partial file"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = parts[0].parent
    assert 0 < parts[0].stat().st_size < load_info(remote_digits).shards["train"][0]["bytes"]
    assert sorted(p.name for p in folder.iterdir()) == [parts[0].name]  # no shard under its name, no dataset.json
    with local_dataset(remote_digits, CacheSettings(cache, 1 << 30)) as again:
        assert again == folder and not list(folder.glob(".*"))  # the part file is gone
        assert sorted(p.name for p in folder.iterdir()) == sorted([INFO_FILE, *shard_names(load_info(again))])


def test_eviction_removes_least_recently_used_whole_datasets_and_never_one_in_use(bucket, digits_dataset,
                                                                                 tmp_path):
    uris = {n: publish(renamed(digits_dataset, tmp_path, n), bucket.uri(f"evict/{n}")) for n in ("a", "b", "c")}
    size = sum(p.stat().st_size for p in digits_dataset.iterdir())
    settings = CacheSettings(tmp_path / "cache", int(2.5 * size))
    keys = {}
    for n in ("a", "b", "c"):
        with local_dataset(uris[n], settings) as folder:
            keys[n] = folder.name
        time.sleep(0.05)  # distinct last-use times
    cached = lambda: sorted(p.name for p in settings.root.iterdir() if not p.name.startswith("."))  # noqa: E731
    assert cached() == sorted([keys["b"], keys["c"]])  # a, the least recently used, went whole
    with local_dataset(uris["b"], settings) as in_use:
        os.utime(in_use, (0, 0))  # b is now the least recently used, but in use
        with local_dataset(uris["a"], settings):
            pass
        assert cached() == sorted([keys["a"], keys["b"]]) and (in_use / INFO_FILE).is_file()
    assert evict(CacheSettings(settings.root, 0)) == [keys["b"], keys["a"]]  # by last use
    assert cached() == [] and sorted(p.name for p in settings.root.iterdir()) == [LOCKS]


def test_cache_settings_come_from_the_nodes_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "here"))
    monkeypatch.setenv(LIMIT_ENV, "1.5")
    assert CacheSettings.from_env() == CacheSettings(tmp_path / "here", int(1.5 * 2**30))
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.delenv(LIMIT_ENV)
    assert CacheSettings.from_env() == CacheSettings(Path.home() / ".cache/gnsweep/datasets", 50 * 2**30)
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv(LIMIT_ENV, bad)
        with pytest.raises(DataError, match=f"^{LIMIT_ENV}='{bad}': give the dataset cache's size bound in GiB"):
            CacheSettings.from_env()


def test_the_cache_folder_is_named_by_the_manifest_never_by_a_path_in_it(digits_dataset):
    info = load_info(digits_dataset)
    info.name = "../../etc/passwd"
    key = dataset_key(info, b"{}")
    assert "/" not in key and not key.startswith(".") and key.endswith("-44136fa355b3678a")
