"""``gnsweep status NAME --watch`` as a real process writing to a pipe (no terminal): it exits at once on a finished
sweep, follows a running one until it ends, and prints plain tables with each trial's epoch, errors, speed and
time left."""
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.watch.tally import read_tally
from results import store
from results.records import EpochRow, TrialRow
from tests.support.cli import GNSWEEP, process_env
from tests.support.launches import held

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
    with held(sweep):  # this test process is the launch that runs the sweep
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


def killed_launch(sweep: Path) -> int:
    """A launch that claimed the sweep and was SIGKILLed: its claim stays, naming a pid that is gone."""
    code = ("import sys; from orchestrator.launch.lock import lock_sweep; from trainer.storage import Location; "
            "lock_sweep(Location.of(sys.argv[1]), 'w', print); print('claimed', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(sweep)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=process_env())
    assert proc.stdout.readline().strip() == "claimed"
    proc.kill()
    proc.wait()
    assert (sweep / "launch.json").exists()
    return proc.pid


@pytest.mark.parametrize("how", ["killed", "no claim", "expired lease"])
def test_watch_ends_when_no_launch_runs_the_sweep(tmp_path, how):
    """After the launch was SIGKILLed the watch went on for ever: trials stayed "running", "0:00:00 left". Now it
    ends, status 1, saying the launch is gone and the running trials are stale."""
    sweep = make_sweep(tmp_path, ["bn-b32-s0", "gn-b32-s0"], epochs=4)
    write_epochs(sweep, "bn-b32-s0", [50, 40])
    write_status(sweep, "bn-b32-s0", "running", 2)
    pid = None
    if how == "killed":
        pid = killed_launch(sweep)
    elif how == "expired lease":
        (sweep / "launch.json").write_text(json.dumps({
            "id": "e" * 32, "host": "node-b.example", "pid": 4242, "pid_started": None,
            "since": "2026-12-01T10:00:00+00:00", "heartbeat": time.time() - 600, "lease_seconds": 120.0}))
    out = tmp_path / "out.txt"
    proc = watch(tmp_path, out)
    try:
        assert proc.wait(60) == 1, out.read_text()
    finally:
        proc.kill()
    text = out.read_text()
    last = text.strip().splitlines()[-1]
    assert text.count("trials ended") == 1 and "0/2 trials ended, 1 running" in text
    who = {"killed": f"its launch (host {socket.gethostname()}, pid {pid}",
           "no claim": "no launch holds it", "expired lease": "its launch (host node-b.example, pid 4242"}[how]
    assert last.startswith(f"gnsweep: sweep w: {who}") and "2 trial(s) not ended" in last, last
    assert "the 1 shown as running are stale" in last and "Traceback" not in text


def test_trial_keys_and_errors_reach_the_terminal_escaped(tmp_path):
    """A trial key or error with Rich markup or terminal control characters (a forged results file) is shown as
    text: escapes visible, no colour, no cursor movement, one line per trial."""
    from orchestrator.watch.status import status_lines

    hostile = "bn-[bold red]x\x1b[2J\x9b31m\u202egnp-\nforged"
    sweep = make_sweep(tmp_path, [hostile], epochs=2)
    write_epochs(sweep, hostile, [50, 40])
    store.write_trial_row(sweep, TrialRow(**{**BASE, "sweep": "w", "trial_key": hostile, "status": "failed",
                                             "epochs": 2, "final_val_err": None, "best_val_err": None,
                                             "error": "boom\x1b]0;title\x07[link=x]y[/link]", "studies": ["s"],
                                             "attempts": 1, "started_at": None, "ended_at": None,
                                             "train_seconds": 1.0}))
    shown = "bn-[bold red]x\\x1b[2J\\x9b31m\\u202egnp-\\nforged"
    lines = status_lines(sweep)
    assert len(lines) == 3 and lines[1].startswith(shown), lines
    assert lines[1].endswith("boom\\x1b]0;title\\x07[link=x]y[/link]"), lines
    out = tmp_path / "out.txt"
    proc = watch(tmp_path, out)
    assert proc.wait(60) == 0, out.read_text()
    text = out.read_text()
    assert not any(c in text for c in "\x1b\x9b\u202e") and shown[:36] in text, text  # the cell may be cut
