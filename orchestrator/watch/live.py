"""``gnsweep status NAME --watch``: a table of the sweep's trials, redrawn in place (Rich) until every planned trial
has ended; read from the results store, so it works from any machine that sees the results, beside any launch.

Each redraw lists the sweep's folders and fetches only the files written since the last one
(``results.store.SweepTables``): the running trials' files, not the whole sweep.

Time left per trial is its recent epoch seconds times the epochs it has left; a trial that has not started yet uses
the sweep's median epoch time (shown with a ~). Without a terminal (a pipe, a log file) the table is printed again
whenever it changes, without colour codes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from results import store
from results.schema import ENDED_STATUSES
from trainer.storage import Location

RECENT_EPOCHS = 3
PLAIN_WIDTH = 120  # a pipe has no width; Rich would assume 80 and cut the columns


class WatchError(Exception):
    pass


@dataclass
class TrialView:
    key: str
    status: str
    epoch: int
    latest: float | None
    best: float | None
    images_per_second: float | None
    seconds_left: float | None


def _clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def read_views(sweep_dir: Location, tables: store.SweepTables | None = None) -> tuple[list[TrialView], int]:
    """Every planned trial's view, and the epochs each trial runs. ``tables`` kept from the last redraw fetches
    only the files written since."""
    record = store.read_sweep(sweep_dir)
    if record is None:
        raise WatchError(f"{sweep_dir}: no sweep here (no sweep.json); check the name and --results")
    tables = tables or store.SweepTables(sweep_dir)
    total = int(record.fingerprint.get("train.epochs") or 0)
    trials = tables.trials().to_pandas().set_index("trial_key")
    epochs = tables.epochs().to_pandas()
    by_trial = dict(tuple(epochs.groupby("trial_key"))) if len(epochs) else {}
    typical = float(epochs["epoch_seconds"].median()) if len(epochs) else None
    views = []
    for key in dict.fromkeys([*record.trials, *trials.index]):
        status = str(trials.loc[key, "status"]) if key in trials.index else "pending"
        ep = by_trial.get(key, pd.DataFrame(columns=epochs.columns))
        done = int(ep["epoch"].max()) if len(ep) else 0
        recent = ep.tail(RECENT_EPOCHS)
        per_epoch = float(recent["epoch_seconds"].mean()) if len(recent) else typical
        left = None if status in ENDED_STATUSES or per_epoch is None else per_epoch * max(total - done, 0)
        val = ep["val_err"].astype(float)
        views.append(TrialView(key, status, done, float(val.iloc[-1]) if len(val) else None,
                               float(val.min()) if val.notna().any() else None,
                               float(ep["images_per_second"].iloc[-1]) if len(ep) else None, left))
    return views, total


def render(views: list[TrialView], total: int, name: str):
    from rich.table import Table

    def pct(v):
        return "-" if v is None or v != v else f"{v:.2f}"

    ended = sum(v.status in ENDED_STATUSES for v in views)
    running = sum(v.status == "running" for v in views)
    table = Table(title=f"sweep {name}: {ended}/{len(views)} trials ended, {running} running", title_justify="left")
    for header, justify in (("trial", "left"), ("status", "left"), ("epoch", "right"), ("latest val %", "right"),
                            ("best val %", "right"), ("images/s", "right"), ("time left", "right")):
        table.add_column(header, justify=justify, no_wrap=True)
    colours = {"completed": "green", "failed": "red", "diverged": "yellow", "running": "cyan"}
    for v in views:
        table.add_row(v.key, f"[{colours.get(v.status, 'white')}]{v.status}[/]", f"{v.epoch}/{total}",
                      pct(v.latest), pct(v.best), "-" if v.images_per_second is None else f"{v.images_per_second:.0f}",
                      ("~" if v.status == "pending" and v.seconds_left is not None else "") + _clock(v.seconds_left))
    return table


def watch(sweep_dir: store.Where, *, interval: float = 2.0, console=None) -> None:
    """Redraw until every planned trial has ended (at once for a finished sweep); Ctrl-C stops watching only."""
    from rich.console import Console
    from rich.live import Live

    sweep_dir = Location.of(sweep_dir)
    console = console or Console()
    tables = store.SweepTables(sweep_dir)
    views, total = read_views(sweep_dir, tables)
    if not console.is_terminal:
        console.width = max(console.width, PLAIN_WIDTH)
        last = None
        while True:
            text = _plain(console, render(views, total, sweep_dir.name))
            if text != last:
                console.print(text, markup=False, highlight=False, end="")
                last = text
            if all(v.status in ENDED_STATUSES for v in views):
                return
            time.sleep(interval)
            views, total = read_views(sweep_dir, tables)
    try:
        with Live(render(views, total, sweep_dir.name), console=console, auto_refresh=False) as live:
            while not all(v.status in ENDED_STATUSES for v in views):
                time.sleep(interval)
                views, total = read_views(sweep_dir, tables)
                live.update(render(views, total, sweep_dir.name), refresh=True)
    except KeyboardInterrupt:
        pass


def _plain(console, table) -> str:
    with console.capture() as capture:
        console.print(table)
    return capture.get()
