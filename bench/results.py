"""The results store at thousands of rows (issue 18): recording an epoch, ``status``, the report's load, a
``status --watch`` redraw of a running sweep and the README's plain ``pd.read_parquet``, on a local folder and on an
S3 server (moto's ThreadedMotoServer on 127.0.0.1, in a process of its own so that it does not take the GIL from the
readers it serves).

Three ways side by side: "before" is the old layout (one file per epoch row) read and written as gnsweep did before
one file per trial (listed, then fetched one file after another; the writer re-read the trial's rows at each epoch),
rebuilt here from that code so both run in one process; "old layout" is the same files read by today's readers (a
sweep not yet folded by its next launch); "per trial" is today's layout and readers. Ratios are against "before".
The default sweep is 5 trials x 100 epochs (500 rows, a few minutes); ``--full`` measures 25 x 100 (2,500 rows) and
250 x 100 (25,000 rows), the sizes the targets are set for. At 25,000 rows on the S3 server only today's layout is
measured: the old one is 25,000 objects, which the moto server takes many minutes to store and each sequential read
of "before" as long again.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from bench.harness import Table, interleaved, median, ratios, spread

EPOCHS = 100
DEFAULT, FULL = (5,), (25, 250)  # trials of 100 epochs in the sweeps measured
BEFORE_AT_MOST = {"local": 250, "s3": 25}  # the largest sweep (trials) whose old layout is measured
RUNNING = 8  # trials still running in the --watch sweep (all of a smaller sweep)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "gnsweep-bench"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
METRICS = ("train_loss", "train_err", "val_loss", "val_err", "val_err_top5", "lr", "epoch_seconds",
           "images_per_second")
TARGETS = {  # (store, rows, measure) -> (seconds at most, what it says); local: no slower than before
    ("s3", 2_500, "status"): 2.0, ("s3", 25_000, "status"): 5.0,
    ("s3", 2_500, "watch redraw"): 1.0, ("s3", 25_000, "watch redraw"): 1.0,
    ("local", 2_500, "watch redraw"): 1.0, ("local", 25_000, "watch redraw"): 1.0,
}


# --- the code before one file per trial, as it was (results/store.py and the results writer) --------------------

def before_write_row(sweep, row) -> None:
    """The old ``store.write_epoch_row``: one file per (trial, epoch), the first write wins."""
    from results import folding
    from results.parquet_folder import write_file

    where = sweep / "epochs" / folding.row_file_name(row.trial_key, row.epoch)
    if not where.exists():
        write_file(_epoch_table([row]), where)


def _before_read(folder, schema, what, pattern: str = "*.parquet"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from results.parquet_folder import conform

    tables = [conform(pq.read_table(f.path, filesystem=f.fs), schema, f, what) for f in folder.files(pattern)]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def before_read_epochs(sweep, trial_key=None):
    from results.schema import EPOCH_SCHEMA

    pattern = f"{trial_key}-e*.parquet" if trial_key else "*.parquet"
    table = _before_read(sweep / "epochs", EPOCH_SCHEMA, "a table of epoch rows", pattern)
    return table.sort_by([("trial_key", "ascending"), ("epoch", "ascending")]).to_pandas()


def before_read_trials(sweep):
    from results.schema import TRIAL_SCHEMA

    return _before_read(sweep / "trials", TRIAL_SCHEMA, "a table of trial rows").sort_by("trial_key").to_pandas()


@contextmanager
def before_readers():
    """``store.read_epochs``/``read_trials`` as they were, for the callers (status, watch) to run on."""
    from results import store

    saved = store.read_epochs, store.read_trials
    store.read_epochs, store.read_trials = before_read_epochs, before_read_trials
    try:
        yield
    finally:
        store.read_epochs, store.read_trials = saved


def before_record_epoch(sweep, row, trial_row) -> None:
    """What the results writer did per epoch: write the row, re-read the trial's rows for its trials row, write it."""
    from results import store

    before_write_row(sweep, row)
    before_read_epochs(sweep, row.trial_key)
    store.write_trial_row(sweep, trial_row)


# --- sweeps --------------------------------------------------------------------------------------------------------

def _epoch_table(rows):
    import pyarrow as pa

    from results.schema import EPOCH_SCHEMA

    return pa.Table.from_pylist([r.to_dict() for r in rows], schema=EPOCH_SCHEMA)


def config(key: str) -> dict:
    return {"sweep": "bench", "trial_key": key, "model": "resnet50", "norm": "gn", "batch_size": 32, "groups": 32,
            "channels_per_group": None, "seed": 0}


def epoch_row(key: str, epoch: int, rng: random.Random):
    from results.records import EpochRow

    err = 90.0 * 0.97 ** epoch + rng.uniform(0, 3)
    return EpochRow(**config(key), epoch=epoch, train_loss=err / 20, train_err=err * 0.9, val_loss=err / 19,
                    val_err=err, val_err_top5=err / 3, lr=0.1, epoch_seconds=60.0, images_per_second=900.0, attempt=0,
                    node="n1", recorded_at=T0 + timedelta(minutes=epoch))


def trial_row(key: str, status: str, epochs: int):
    from results.records import TrialRow

    return TrialRow(**config(key), status=status, epochs=epochs, final_val_err=30.0, best_val_err=29.0, error=None,
                    studies=("norms",), attempts=1, started_at=T0, ended_at=None if status == "running" else T0,
                    train_seconds=60.0 * epochs)


def write_sweep(sweep, trials: int, *, per_row: bool, running: int = 0) -> None:
    """A sweep of ``trials`` x EPOCHS rows (the last ``running`` trials stop halfway, still running), in the old
    layout (``per_row``) or one file per trial; uploads in parallel."""
    from results import store
    from results.records import SweepRecord

    rng = random.Random(0)
    keys = [f"gn-b32-g32-s{i}" for i in range(trials)]
    jobs = []
    for i, key in enumerate(keys):
        n = EPOCHS // 2 if i >= trials - running else EPOCHS
        rows = [epoch_row(key, e, rng) for e in range(1, n + 1)]
        if per_row:
            jobs += [(lambda r=r: before_write_row(sweep, r)) for r in rows]
        else:
            jobs.append(lambda key=key, rows=rows: store.write_trial_epochs(sweep, key, rows))
        status = "running" if i >= trials - running else "completed"
        jobs.append(lambda key=key, n=n, status=status: store.write_trial_row(sweep, trial_row(key, status, n)))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: job(), jobs))
    store.write_sweep(sweep, SweepRecord("bench", {"train.epochs": EPOCHS}, tuple(keys), {"norms": "norms"}))


# --- the S3 server -------------------------------------------------------------------------------------------------

SERVER = ("import sys, time\nfrom moto.server import ThreadedMotoServer\n"
          "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\ns.start()\n"
          "print(s.get_host_and_port()[1], flush=True)\nsys.stdin.read()\n")


@contextmanager
def s3_server():
    """moto's S3 server in a child process (ended when stdin closes); yields the URI options that reach it."""
    import pyarrow.fs as pafs

    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL)
    try:
        port = int(proc.stdout.readline())
        pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                          allow_bucket_creation=True).create_dir(BUCKET)
        yield f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- measures ------------------------------------------------------------------------------------------------------

def fake_trial(key: str):
    return SimpleNamespace(config={"trial": {"key": key, "config": {k: v for k, v in config(key).items()
                                                                      if k not in ("sweep", "trial_key")}}},
                           error_file=None)


def recording(sweep_before, sweep_now, reps: int) -> dict[str, list[float]]:
    """Seconds the driver spends recording one epoch of a trial halfway through its 100 (TensorBoard's file left
    out of both)."""
    from orchestrator.tune.results_writer import ResultsWriter
    from results import store, tensorboard

    key = "gn-b32-g32-s0"
    rng = random.Random(1)
    half = [epoch_row(key, e, rng) for e in range(1, EPOCHS // 2 + 1)]
    store.write_trial_epochs(sweep_now, key, half)
    for r in half:
        before_write_row(sweep_before, r)
    writer = ResultsWriter(sweep_now, "bench", {key: ("norms",)}, {})
    writer.on_trial_start(0, [], fake_trial(key))
    tensorboard_writer, tensorboard.write_epoch_scalars = tensorboard.write_epoch_scalars, lambda *a: False
    epochs = iter(range(EPOCHS // 2 + 1, EPOCHS + 1))
    try:
        def now():
            e = next(epochs)
            t0 = time.perf_counter()
            writer.on_trial_result(0, [], fake_trial(key), {**epoch_row(key, e, rng).to_dict(), "node": "n1"})
            return time.perf_counter() - t0

        before_epochs = iter(range(EPOCHS // 2 + 1, EPOCHS + 1))

        def before():
            e = next(before_epochs)
            t0 = time.perf_counter()
            before_record_epoch(sweep_before, epoch_row(key, e, rng), trial_row(key, "running", e))
            return time.perf_counter() - t0

        return interleaved({"before": before, "per trial": now}, reps)
    finally:
        tensorboard.write_epoch_scalars = tensorboard_writer


def timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def measures(old, new, watched_old, watched_new, reps: int) -> dict[str, dict[str, list[float]]]:
    """Each measure's variants, interleaved ``reps`` times; without ``old`` (too large to measure before), today's
    layout alone."""
    import pandas as pd

    from orchestrator.watch.status import status_lines
    from results import store

    def before(f):
        def run():
            with before_readers():
                return timed(f)
        return run

    def load(sweep):
        store.read_epochs(sweep)
        store.read_trials(sweep)

    out = {
        "status": {"before": before(lambda: status_lines(old)), "old layout": lambda: timed(lambda: status_lines(old)),
                   "per trial": lambda: timed(lambda: status_lines(new))},
        "report load": {"before": before(lambda: load(old)), "old layout": lambda: timed(lambda: load(old)),
                        "per trial": lambda: timed(lambda: load(new))},
        "pd.read_parquet": {"before": lambda: timed(lambda: pd.read_parquet(str(old / "epochs"))),
                            "per trial": lambda: timed(lambda: pd.read_parquet(str(new / "epochs")))},
    }
    if old is None:
        out = {name: {"per trial": variants["per trial"]} for name, variants in out.items()}
    results = {name: interleaved(variants, reps) for name, variants in out.items()}
    results["watch redraw"] = watch_redraws(watched_old, watched_new, reps)
    return results


def watch_redraws(old, new, reps: int) -> dict[str, list[float]]:
    """A ``status --watch`` redraw of a running sweep after each running trial recorded one more epoch: before, a
    whole read of the sweep; now, a redraw from the tables kept since the last one."""
    from orchestrator.watch.tally import read_tally
    from results import store

    rng = random.Random(2)
    statuses = store.read_trials(new)
    running = statuses.loc[statuses["status"] == "running", "trial_key"].tolist()
    kept = store.SweepTables(new)
    read_tally(new, kept)
    done = {k: EPOCHS // 2 for k in running}
    rows_now = {k: store.read_epoch_rows(new, k) for k in running}

    def advance(sweep, per_row: bool):
        for k in running:
            row = epoch_row(k, done[k] + 1, rng)
            if per_row:
                before_write_row(sweep, row)
            else:
                rows_now[k].append(row)
                store.write_trial_epochs(sweep, k, rows_now[k])

    def before():
        advance(old, True)
        with before_readers():
            return timed(lambda: read_tally(old))

    def now():
        advance(new, False)
        return timed(lambda: read_tally(new, kept))

    variants = {"before": before, "per trial": now} if old is not None else {"per trial": now}
    out: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(reps):
        for name, f in list(variants.items())[:: 1 if r % 2 == 0 else -1]:
            out[name].append(f())
        for k in running:
            done[k] += 1
    return out


def run(ctx):
    from results import store
    from trainer.storage import Location

    reps = 3
    table = Table(f"results store: seconds; 'before' = one file per row, read as before ({reps} rounds, interleaved)",
                  ["store", "rows", "measure", "variant", "seconds", "vs before", "range", "target", "verdict"])
    with s3_server() as options:
        stores = {"local": lambda name: Location.of(ctx.scratch / "results-bench" / name),
                  "s3": lambda name: Location.of(f"s3://{BUCKET}/{name}?{options}")}
        for store_name, at in stores.items():
            recorded = recording(at("rec-old"), at("rec-new"), 5)
            add_rows(table, store_name, "-", {"record an epoch": recorded})
            for trials in FULL if ctx.full else DEFAULT:
                rows, with_before = trials * EPOCHS, trials <= BEFORE_AT_MOST[store_name]
                t0 = time.perf_counter()
                old, new = at(f"old-{rows}") if with_before else None, at(f"new-{rows}")
                watched_old, watched_new = at(f"watch-old-{rows}") if with_before else None, at(f"watch-new-{rows}")
                watched = min(RUNNING, trials)
                for sweep, per_row, running in ((old, True, 0), (new, False, 0), (watched_old, True, watched),
                                                (watched_new, False, watched)):
                    if sweep is not None:
                        write_sweep(sweep, trials, per_row=per_row, running=running)
                table.notes.append(f"{store_name}, {rows:,} rows: sweeps written in {time.perf_counter() - t0:.0f} s")
                add_rows(table, store_name, rows, measures(old, new, watched_old, watched_new, reps))
                if with_before:
                    table.notes.append(f"{store_name}, {rows:,} rows: folding the old layout (once, at the next "
                                       f"launch) took {timed(lambda: store.fold_sweep(old)):.1f} s")
    table.notes.append("record an epoch: the driver's results writer, an epoch halfway through a 100-epoch trial "
                       "(5 rounds; TensorBoard's file left out of both); watch redraw: after each running trial (8, or "
                       "all of a smaller sweep) recorded one more epoch")
    return [table]


def add_rows(table: Table, store_name: str, rows, results: dict[str, dict[str, list[float]]]) -> None:
    for measure, variants in results.items():
        base = variants.get("before")
        for variant, seconds in variants.items():
            got = median(seconds)
            r = ratios(seconds, base) if base and variant != "before" else None
            target = TARGETS.get((store_name, rows, measure))
            if target is not None and variant == "per trial":
                tgt, verdict = f"<= {target:g} s", "PASS" if got <= target else "MISS"
            elif store_name == "local" and variant == "per trial" and r is not None:
                tgt, verdict = "<= before", "PASS" if median(r) <= 1.0 else "MISS"
            else:
                tgt, verdict = "-", "-"
            table.add(store_name, f"{rows:,}" if rows != "-" else "-", measure, variant, f"{got:.3f}",
                      f"{median(r):.2f}x" if r else "-", spread(r) if r else "-", tgt, verdict)
