"""``gnsweep status NAME --watch``: a table of the sweep's trials, redrawn in place (Rich) until every planned trial,
shared or not, has ended, or no launch runs the sweep any more; read from the results store, so it works from any
machine that sees the results, beside any launch. Its counts and time left are ``tally``'s, as in ``status`` and the
launch's progress line.

Each redraw lists the sweep's folders and fetches only the files written since the last one
(``results.store.SweepTables``): the running trials' files, not the whole sweep. Without a terminal (a pipe, a log
file) the table is printed again whenever it changes, without colour codes.
"""
from __future__ import annotations

import time

from orchestrator.cost.estimate import fmt_seconds
from orchestrator.watch.status import launch_gone
from orchestrator.watch.tally import Tally, read_tally
from results import store
from results.schema import TrialStatus
from results.terminal import terminal_text
from trainer.storage import Location

PLAIN_WIDTH = 120  # a pipe has no width; Rich would assume 80 and cut the columns


def render(tally: Tally, name: str):
    """The table: one row per planned trial (a time left marked ~ is estimated: that trial has not started)."""
    from rich.table import Table

    def escape(text: str) -> str:
        return terminal_text(text, markup=True)

    def pct(v):
        return "-" if v is None or v != v else f"{v:.2f}"

    table = Table(title=f"sweep {escape(name)}: {tally.summary()}", title_justify="left",
                  caption=escape(tally.basis) or None, caption_justify="left")
    for header, justify in (("trial", "left"), ("status", "left"), ("epoch", "right"), ("latest val %", "right"),
                            ("best val %", "right"), ("images/s", "right"), ("time left", "right"),
                            ("note", "left")):
        table.add_column(header, justify=justify, no_wrap=True)
    colours = {TrialStatus.COMPLETED: "green", TrialStatus.FAILED: "red", TrialStatus.DIVERGED: "yellow",
               TrialStatus.RUNNING: "cyan"}
    for t in tally.trials:
        left = "-" if t.seconds_left is None else ("" if t.started else "~") + fmt_seconds(t.seconds_left)
        table.add_row(escape(t.key), f"[{colours.get(t.status, 'white')}]{escape(t.status)}[/]",
                      f"{t.epoch}/{tally.epochs}", pct(t.latest), pct(t.best),
                      "-" if t.images_per_second is None else f"{t.images_per_second:.0f}", left,
                      escape(f"shares the run of {t.same_as}") if t.same_as else "")
    return table


def watch(sweep_dir: store.Where, *, interval: float = 2.0, console=None) -> str | None:
    """Redraw until every planned trial has ended (at once for a finished sweep), or until no launch runs the sweep
    any more (then returns why, ``launch_gone``); Ctrl-C stops watching only."""
    from rich.console import Console
    from rich.live import Live

    sweep_dir = Location.of(sweep_dir)
    console = console or Console()
    tables = store.SweepTables(sweep_dir)
    tally = read_tally(sweep_dir, tables)
    if not console.is_terminal:
        console.width = max(console.width, PLAIN_WIDTH)
        last = None
        while True:
            text = _plain(console, render(tally, sweep_dir.name))
            if text != last:
                console.print(text, markup=False, highlight=False, end="")
                last = text
            if tally.finished or (gone := launch_gone(sweep_dir, tally)):
                return None if tally.finished else gone
            time.sleep(interval)
            tally = read_tally(sweep_dir, tables)
    gone = None
    try:
        with Live(render(tally, sweep_dir.name), console=console, auto_refresh=False) as live:
            while not tally.finished and not (gone := launch_gone(sweep_dir, tally)):
                time.sleep(interval)
                tally = read_tally(sweep_dir, tables)
                live.update(render(tally, sweep_dir.name), refresh=True)
    except KeyboardInterrupt:
        pass
    return gone


def _plain(console, table) -> str:
    with console.capture() as capture:
        console.print(table)
    return capture.get()
