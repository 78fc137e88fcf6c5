"""``gnsweep status NAME --watch`` as a real process writing to a pipe (no terminal): it exits at once on a finished
sweep, follows a running one until it ends, and prints plain tables with each trial's epoch, errors, speed and
time left."""
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.watch.tally import read_tally
from results import store
from results.records import EpochRow, TrialRow
from tests.support.cli import GNSWEEP, process_env
BASE = {"model": "resnet8", "norm": "bn", "batch_size": 32, "groups": None, "channels_per_group": None, "seed": 0}


def write_epochs(sweep: Path, key: str, errs: list[float], seconds: float = 2.0) -> None:
    for epoch, err in enumerate(errs, 1):
        store.write_epoch_row(sweep, EpochRow(**{**BASE, "sweep": sweep.name, "trial_key": key, "epoch": epoch,
                                      "train_loss": 1.0, "train_err": err - 5, "val_loss": 1.0, "val_err": err,
                                      "val_err_top5": 5.0, "lr": 0.1, "epoch_seconds": seconds,
                                      "images_per_second": 640.0, "attempt": 0, "node": "n",
                                      "recorded_at": datetime.now(timezone.utc)}))


def write_status(sweep: Path, key: str, status: str, epochs: int) -> None:
    store.write_trial_row(sweep, TrialRow(**{**BASE, "sweep": sweep.name, "trial_key": key, "status": status, "epochs": epochs,
                                  "final_val_err": None, "best_val_err": None, "error": None, "studies": ["s"],
                                  "attempts": 1, "started_at": None, "ended_at": None, "train_seconds": 1.0}))


def make_sweep(root: Path, keys: list[str], epochs: int = 4) -> Path:
    sweep = root / "results" / "w"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"name": "w", "fingerprint": {"train.epochs": epochs},
                                                  "trials": keys}))
    return sweep


def watch(root: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([*GNSWEEP, "status", "w", "--results", str(root / "results"), "--watch", "--interval",
                             "0.1"], cwd=root, stdout=out.open("w"), stderr=subprocess.STDOUT,
                            env=process_env())


def test_time_left_is_recent_epoch_seconds_times_epochs_left(tmp_path):
    sweep = make_sweep(tmp_path, ["a", "b", "c"])
    write_epochs(sweep, "a", [60, 50, 40, 30])
    write_status(sweep, "a", "completed", 4)
    write_epochs(sweep, "b", [70, 65], seconds=3.0)
    write_status(sweep, "b", "running", 2)
    tally = read_tally(sweep)
    got = {v.key: (v.status, v.epoch, v.latest, v.best, v.seconds_left) for v in tally.trials}
    assert tally.epochs == 4
    assert got == {"a": ("completed", 4, 30.0, 30.0, None), "b": ("running", 2, 65.0, 65.0, 6.0),
                   "c": ("pending", 0, None, None, 4 * 2.0)}  # c: the sweep's median epoch time x 4 epochs


def test_finished_sweep_prints_one_plain_table_and_exits(tmp_path):
    sweep = make_sweep(tmp_path, ["bn-b32-s0"], epochs=3)
    write_epochs(sweep, "bn-b32-s0", [50, 40, 45])
    write_status(sweep, "bn-b32-s0", "completed", 3)
    out = tmp_path / "out.txt"
    proc = watch(tmp_path, out)
    assert proc.wait(60) == 0, out.read_text()
    text = out.read_text()
    assert "\x1b[" not in text, "no colour or cursor codes into a pipe"
    assert text.count("trials ended") == 1 and "sweep w: 1/1 trials ended, 0 running" in text
    row = next(ln for ln in text.splitlines() if "bn-b32-s0" in ln)
    assert row.split("│")[1:-1] == [" bn-b32-s0 ", " completed ", "   3/3 ", "        45.00 ", "      40.00 ",
                                    "      640 ", "         - ", "      "], row


def test_running_sweep_is_followed_until_it_ends(tmp_path):
    sweep = make_sweep(tmp_path, ["bn-b32-s0"], epochs=2)
    write_epochs(sweep, "bn-b32-s0", [50])
    write_status(sweep, "bn-b32-s0", "running", 1)
    out = tmp_path / "out.txt"
    proc = watch(tmp_path, out)
    try:
        deadline = time.monotonic() + 60
        while "running" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, "a running sweep keeps the watch going"
        write_epochs(sweep, "bn-b32-s0", [50, 30])
        write_status(sweep, "bn-b32-s0", "completed", 2)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    text = out.read_text()
    tables = ["sweep w:" + t for t in text.split("sweep w:")[1:]]
    # one table per change, not one per redraw (a read between the test's two writes is a third, real state)
    assert len(tables) in (2, 3) and all(a != b for a, b in zip(tables, tables[1:])), text
    assert "0/1 trials ended" in text and "1/1 trials ended" in text and " 2 s " in text


def test_on_a_terminal_the_table_is_drawn_in_place(tmp_path):
    """Through a pseudo-terminal: Rich's live display (cursor codes, colours), ending at once on a finished sweep."""
    import pty

    sweep = make_sweep(tmp_path, ["bn-b32-s0"], epochs=1)
    write_epochs(sweep, "bn-b32-s0", [50])
    write_status(sweep, "bn-b32-s0", "completed", 1)
    master, slave = pty.openpty()
    proc = subprocess.Popen([*GNSWEEP, "status", "w", "--results", str(tmp_path / "results"), "--watch"],
                            cwd=tmp_path, stdout=slave, stderr=slave,
                            env=process_env(TERM="xterm-256color", COLUMNS="120"))
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert "\x1b[" in text and "sweep w: 1/1 trials ended, 0 running" in text and "bn-b32-s0" in text
