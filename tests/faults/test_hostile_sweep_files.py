"""Forged and damaged JSON files beside a sweep's tables (``launch.json``, ``plan.json``, ``sweep.json``): every field
is checked when read, like the Parquet files. A file that is not what gnsweep writes is named in one line with its
first wrong field (exit 2, left as it is); a well-formed claim no launch could have written (pid 0 or -1, a pid past
Linux's range, a heartbeat from the future) is stale, never a live launch."""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.launch.lock import lock_sweep
from orchestrator.watch.status import launch_gone, status_lines
from orchestrator.watch.tally import read_tally
from results import store
from results.records import PlanEntry, PlanRecord, SweepRecord
from tests.support.cli import GNSWEEP, process_env
from trainer.storage import Location

HERE = socket.gethostname()


def claim(**fields) -> dict:
    return {"id": "f" * 32, "host": "node-b.example", "pid": 4242, "pid_started": None,
            "since": "2026-12-01T10:00:00+00:00", "heartbeat": time.time(), "lease_seconds": 120.0, **fields}


def sweep_dir(root: Path) -> Path:
    sweep = root / "results" / "s"
    sweep.mkdir(parents=True)
    store.write_sweep(sweep, SweepRecord("s", {"train.epochs": 2}, ("bn-b32-s0",), {"a": "single"}))
    return sweep


IMPOSSIBLE = {  # each is stale: taken over at once
    "pid-0-here": claim(host=HERE, pid=0),  # os.kill(0, 0) signals this process group: "alive" before
    "pid-minus-1-here": claim(host=HERE, pid=-1),  # os.kill(-1, 0) reaches every process: "alive" before
    "pid-huge-here": claim(host=HERE, pid=2**70),  # os.kill raised OverflowError: a traceback before
    "pid-past-linux": claim(host=HERE, pid=2**31),
    "heartbeat-next-year-elsewhere": claim(heartbeat=time.time() + 365 * 86400),  # live for a year before
    "own-live-pid-heartbeat-ahead": claim(host=HERE, pid=os.getpid(), heartbeat=time.time() + 3600),
    "lease-of-years-elsewhere": claim(heartbeat=time.time() - 3600, lease_seconds=1e9),
}


@pytest.mark.parametrize("case", IMPOSSIBLE, ids=list(IMPOSSIBLE))
def test_an_impossible_claim_is_stale_and_taken_over(case, tmp_path):
    sweep = sweep_dir(tmp_path)
    (sweep / "launch.json").write_text(json.dumps(IMPOSSIBLE[case]))
    held = lock_sweep(Location.of(sweep), "s", print)
    try:
        assert json.loads((sweep / "launch.json").read_text())["pid"] == os.getpid()
    finally:
        held.release()
    assert not (sweep / "launch.json").exists()


DAMAGED_CLAIMS = {  # file text, the field named
    "pid-a-string": (json.dumps(claim(pid="4242")), "pid: input should be a valid integer, got the string '4242'"),
    "pid-a-bool": (json.dumps(claim(pid=True)), "pid: input should be a valid integer, got True"),
    "pid-a-float": (json.dumps(claim(pid=4242.5)), "pid: input should be a valid integer, got 4242.5"),
    "heartbeat-a-string": (json.dumps(claim(heartbeat="now")), "heartbeat: input should be a valid number"),
    "heartbeat-nan": (json.dumps(claim(heartbeat=float("nan"))), "heartbeat: input should be a finite number"),
    "lease-negative": (json.dumps(claim(lease_seconds=-1)), "lease_seconds: input should be greater than 0"),
    "no-host": (json.dumps({k: v for k, v in claim().items() if k != "host"}), "host: field required"),
    "a-list": ("[4242]", "(top level): input should be an object"),
    "not-json": ('{"pid": 42', "invalid JSON"),
    "binary": (b"\xff\xfe\x00".decode("latin-1"), "codec can't decode byte 0xff"),
}


@pytest.mark.parametrize("case", DAMAGED_CLAIMS, ids=list(DAMAGED_CLAIMS))
def test_a_damaged_claim_is_named_with_its_field_and_left_alone(case, tmp_path):
    sweep = sweep_dir(tmp_path)
    text, why = DAMAGED_CLAIMS[case]
    (sweep / "launch.json").write_text(text, encoding="latin-1")
    before = (sweep / "launch.json").read_bytes()
    for read in (lambda: lock_sweep(Location.of(sweep), "s", print),
                 lambda: launch_gone(Location.of(sweep), read_tally(sweep))):
        with pytest.raises(store.DamagedResults) as e:
            read()
        message = str(e.value)
        assert message.startswith(f"{sweep}/launch.json: not a launch claim written by gnsweep launch (")
        assert why in message and "\n" not in message, message
    assert (sweep / "launch.json").read_bytes() == before


def test_a_directory_where_the_claim_belongs_is_named(tmp_path):
    sweep = sweep_dir(tmp_path)
    (sweep / "launch.json").mkdir()
    with pytest.raises(store.DamagedResults, match=r"launch.json: not a launch claim .*is a directory\)"):
        lock_sweep(Location.of(sweep), "s", print)
    assert (sweep / "launch.json").is_dir()


def plan_text(**entry) -> str:
    good = PlanEntry(config={"model": "resnet8", "norm": "gn", "batch_size": 32, "groups": 8,
                             "channels_per_group": None, "seed": 0, "replicas": 1, "train": {"epochs": 2}},
                     studies=("a",), same_as=None, why=None, cpu=1.0, gpu=0.0, shape="resnet8/gn/b32/r1/float32",
                     train_seconds=10.0, other_seconds=1.0, startup_seconds=5.0, epochs=2, source="rough")
    data = PlanRecord("s", "CPU", "rough", ({"CPU": 2.0, "GPU": 0.0},), {"gn-b32-g8-s0": good}).to_json()
    data["trials"]["gn-b32-g8-s0"].update(entry)
    return json.dumps(data)


DAMAGED_PLANS = {
    "cpu-a-string": (plan_text(cpu="1"), "trials.gn-b32-g8-s0.cpu: input should be a valid number, got the string"),
    "seconds-negative": (plan_text(train_seconds=-5), "trials.gn-b32-g8-s0.train_seconds: input should be greater"),
    "epochs-a-float": (plan_text(epochs=2.5), "trials.gn-b32-g8-s0.epochs: input should be a valid integer"),
    "groups-a-string": (plan_text(config={"norm": "gn", "groups": "8"}), "config.groups: input should be a valid "
                                                                          "integer"),
    "same-as-a-number": (plan_text(same_as=7), "trials.gn-b32-g8-s0.same_as: input should be a valid string"),
    "trials-a-list": ('{"name": "s", "device": "CPU", "estimate": "", "nodes": [], "trials": []}',
                      "trials: input should be an object, got a list"),
    "node-infinite": (plan_text().replace('"CPU": 2.0', '"CPU": Infinity'), "nodes.0.CPU: input should be a finite"),
    "truncated": (plan_text()[:40], "invalid JSON"),
}


@pytest.mark.parametrize("case", DAMAGED_PLANS, ids=list(DAMAGED_PLANS))
def test_a_damaged_plan_is_named_with_its_field(case, tmp_path):
    """plan.json was read as {} when it could not be parsed (status then lost every shared run and time left) and
    not checked at all otherwise."""
    sweep = sweep_dir(tmp_path)
    text, why = DAMAGED_PLANS[case]
    (sweep / "plan.json").write_text(text)
    with pytest.raises(store.DamagedResults) as e:
        status_lines(sweep)
    message = str(e.value)
    assert message.startswith(f"{sweep}/plan.json: not a plan written by gnsweep launch (") and why in message, message


def test_a_plan_round_trips(tmp_path):
    store.write_plan(tmp_path, PlanRecord("s", "CPU", "rough", (), {}))
    (tmp_path / "plan.json").write_text(plan_text())
    plan = store.read_plan(tmp_path)
    assert plan.trials["gn-b32-g8-s0"].estimated and plan.nodes == ({"CPU": 2.0, "GPU": 0.0},)
    store.write_plan(tmp_path, plan)
    assert store.read_plan(tmp_path) == plan


@pytest.mark.parametrize("fingerprint,why", [
    ({"train.epochs": "ten"}, "fingerprint.train.epochs: input should be a valid integer, got the string 'ten'"),
    ({"train.epochs": 0}, "fingerprint.train.epochs: input should be greater than or equal to 1"),
    ({"replicas": 1.5}, "fingerprint.replicas: input should be a valid integer"),
    ({"train.base_lr": "fast"}, "fingerprint.train.base_lr: input should be a valid number"),
    ({"train.augment": "yes"}, "fingerprint.train.augment: input should be a valid boolean"),
], ids=["epochs-a-string", "epochs-0", "replicas-a-float", "lr-a-string", "augment-a-string"])
def test_a_sweep_record_with_a_non_number_where_a_number_belongs_is_named(fingerprint, why, tmp_path):
    """``status --watch`` took int() of train.epochs: a traceback on a string."""
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "fingerprint": fingerprint, "trials": ["bn-b32-s0"]}))
    for read in (read_tally, status_lines):
        with pytest.raises(store.DamagedResults) as e:
            read(Location.of(sweep))
        assert str(e.value).startswith(f"{sweep}/sweep.json: not a sweep record") and why in str(e.value)


@pytest.mark.parametrize("file,text,args,says", [
    ("sweep.json", '{"name": "s", "fingerprint": {"train.epochs": "ten"}, "trials": ["bn-b32-s0"]}',
     ["--watch"], "fingerprint.train.epochs"),
    ("launch.json", json.dumps(claim(pid="4242")), ["--watch"], "pid: input should be a valid integer"),
    ("plan.json", plan_text(cpu="1"), [], "trials.gn-b32-g8-s0.cpu"),
])
def test_status_names_the_damaged_file_in_one_line(file, text, args, says, tmp_path):
    sweep = sweep_dir(tmp_path)
    (sweep / file).write_text(text)
    proc = subprocess.run([*GNSWEEP, "status", "s", "--results", str(tmp_path / "results"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=process_env())
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"gnsweep: {sweep / file}: not ") and says in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr + proc.stdout
