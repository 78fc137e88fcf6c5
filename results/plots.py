"""The paper's figures for the studies a sweep has, each as PNG and SVG named ``<study>_<what>`` by what it holds:
``error_vs_epoch`` (Fig. 4 per norm, Fig. 5 per batch size), ``error_vs_batch`` (Fig. 1), ``error_vs_groups`` and
``error_vs_channels`` (Table 3).

Intervals come from ``results.intervals.error_interval`` (seeds and the validation set's sampling error) and are
drawn as bars or bands. The paper's numbers get their own panel beside the sweep's, since a sweep's errors can lie
far from ImageNet's (digits or Tiny ImageNet against ResNet-50 on ImageNet): on one axis both curves look flat. Colours
are Okabe and Ito's colour-blind-safe set: one per norm in every figure, one per batch size. Configurations whose
trials have not all completed FINAL_EPOCHS epochs get open markers (or one note when that is all of them). Figures
are built on ``matplotlib.figure.Figure`` (Agg), so no pyplot state or display is involved.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from results.figure_data import FigureSettings, config_intervals, epoch_bands, figure_name
from results.intervals import describe
from results.paper import NORM_ORDER, PAPER
from results.studies import Study
from results.text import plain
from trainer.config import FINAL_EPOCHS
from trainer.storage import Location

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442")
NORM_COLOURS = {"bn": "#0072B2", "gn": "#D55E00", "ln": "#009E73", "in": "#CC79A7", "none": "#000000"}
BATCH_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
ERROR_LABEL = "top-1 val error (%)"
FINAL_LABEL = f"{ERROR_LABEL}, median of last {FINAL_EPOCHS} epochs"


def _text(value, limit: int = 60) -> str:
    """Text from results files as a figure label: one short line, its dollar signs literal (matplotlib reads a pair
    of them as mathtext, which can fail to parse and stop the report)."""
    return plain(value, limit).replace("$", r"\$")


def _norm(norm: str) -> str:
    return _text(norm.upper())


def _colour(norm: str) -> str:
    return NORM_COLOURS.get(norm, "#000000")


def _figure(figsize: tuple[float, float]) -> Figure:
    """A new Agg figure; matplotlib is imported on the first one (a second of start-up that a command refusing a
    damaged file before drawing should not pay)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG and an SVG beside it, each whole (a hidden name renamed into place), so a reader never sees
    half a figure; returns the PNG's path."""
    for fmt, target in (("png", path), ("svg", path.with_suffix(".svg"))):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight", metadata={"Date": None} if fmt == "svg"
                    else None)
        Location.of(target).write_bytes(buffer.getvalue())
    return path


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _log2_axis(ax, values, label: str) -> None:
    values = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.minorticks_off()
    ax.set_xlabel(label)


def _norms_in(df: pd.DataFrame) -> list[str]:
    present = set(df["norm"])
    return [n for n in NORM_ORDER if n in present] + sorted(present - set(NORM_ORDER))


def _title(study: Study, what: str) -> str:
    batch = f", batch {study.batch_size}" if study.batch_size else ""
    return f"{what}: study '{_text(study.name)}' ({_text(study.model)}{batch})"


def _note(fig: Figure, text: str) -> None:
    fig.text(0.01, -0.02, text, fontsize=8, color="#444444", ha="left", va="top")


def _band(ax, c: pd.DataFrame, colour: str, alpha: float = 0.18, **style) -> None:
    ax.plot(c["epoch"], c["mean"], color=colour, **style)
    if c["low"].notna().any():
        ax.fill_between(c["epoch"], c["low"], c["high"], color=colour, alpha=alpha, linewidth=0)


OPEN_LABEL = "open marker: not all trials completed (provisional)"


def _points(ax, t: pd.DataFrame, x: str, colour: str, label: str, mark_open: bool, dodge: float = 0.0) -> None:
    """A sweep's final errors against ``x`` (a log2 axis, shifted by ``dodge`` octaves so bars of several norms at
    one x stay apart) with interval bars; open markers on configurations not complete."""
    t = t.sort_values(x)
    xs = t[x].astype(float) * 2.0 ** dodge
    below = (t["final_val_err"] - t["low"]).clip(lower=0).fillna(0)
    above = (t["high"] - t["final_val_err"]).clip(lower=0).fillna(0)
    ax.errorbar(xs, t["final_val_err"], yerr=[below, above], color=colour, marker="o", linewidth=2, capsize=3,
                markersize=6, label=label)
    open_ = ~t["complete"].astype(bool).to_numpy() if mark_open else np.zeros(len(t), dtype=bool)
    if open_.any():
        ax.scatter(xs[open_], t.loc[open_, "final_val_err"], s=40, facecolors="white", edgecolors=colour,
                   linewidths=1.5, zorder=3)
        if OPEN_LABEL not in ax.get_legend_handles_labels()[1]:
            ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="#444444",
                    label=OPEN_LABEL)


def _provisional(tables: list[pd.DataFrame]) -> tuple[bool, str]:
    """Whether to mark incomplete configurations one by one, and the note when all of them are: a mark on every
    point says nothing a sentence cannot."""
    complete = pd.concat([t["complete"] for t in tables]).astype(bool) if tables else pd.Series(dtype=bool)
    if len(complete) and not complete.any():
        return False, f"All points provisional: no configuration has all its trials completed with {FINAL_EPOCHS}+ " \
                      f"epochs."
    return True, ""


def _interval_note(seeds: int, settings: FigureSettings, what: str = "Bars") -> str:
    """The note under a figure of final errors: its bars are the report's 95% intervals (results.uncertainty)."""
    images = f"{settings.val_images:,} val images" if settings.val_images else "val size unknown"
    return (f"{what}: 95% interval of the final error, as in the report's tables and verdicts (over {seeds} "
            f"seed{'s' if seeds != 1 else ''}, {images}, and the last epochs' spread).")


def plot_norm_curves(epochs: pd.DataFrame, study: Study, settings: FigureSettings) -> Figure:
    """Paper Fig. 4: train error (left) and val error (right) against epoch, one line per norm, bands from
    ``error_interval`` (seeds only for the train error)."""
    fig = _figure(figsize=(11, 4.3))
    axes = fig.subplots(1, 2)
    seeds = 1
    for ax, column, kind in zip(axes, ("train_err", "val_err"), ("train", "val")):
        curves = epoch_bands(epochs, column, settings.val_images)
        seeds = max(seeds, int(curves["seeds"].max())) if len(curves) else seeds
        norms = _norms_in(curves)
        for norm in norms:
            _band(ax, curves[curves["norm"] == norm], _colour(norm), alpha=0.18 if len(norms) <= 2 else 0.1,
                  label=_norm(norm), linewidth=1.8)
        ax.set_title(f"{kind} error")
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(title="norm")
        ax.set_ylabel("top-1 error (%)")
    fig.suptitle(_title(study, "Error against epoch per normalization (paper Fig. 4)"))
    train = f"range over {seeds} seeds" if seeds > 1 else "none (one seed)"
    _note(fig, f"Bands: train error, {train}; val error, {describe(seeds, settings.val_images)}.")
    return fig


def plot_batch_curves(epochs: pd.DataFrame, study: Study, settings: FigureSettings) -> Figure:
    """Paper Fig. 5: val error against epoch for each batch size, BN and GN side by side, one colour and marker per
    batch size in both panels."""
    curves = epoch_bands(epochs, "val_err", settings.val_images)
    norms = [n for n in _norms_in(curves) if n in ("bn", "gn")] or _norms_in(curves)
    batches = sorted(curves["batch_size"].dropna().unique(), reverse=True)
    style = {b: (OKABE_ITO[i % len(OKABE_ITO)], BATCH_MARKERS[i % len(BATCH_MARKERS)]) for i, b in enumerate(batches)}
    fig = _figure(figsize=(5.5 * len(norms), 4.3))
    axes = np.atleast_1d(fig.subplots(1, len(norms), sharey=True))
    for ax, norm in zip(axes, norms):
        c = curves[curves["norm"] == norm]
        for b in batches:
            cb = c[c["batch_size"] == b].sort_values("epoch")
            if len(cb):
                colour, marker = style[b]
                _band(ax, cb, colour, alpha=0.18 if len(batches) <= 2 else 0.09, linewidth=1.8, marker=marker,
                      markersize=4,
                      markevery=max(1, len(cb) // 10), label=f"{int(b)}")
        ax.set_title(_norm(norm))
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(title=settings.batch_unit)
    axes[0].set_ylabel(ERROR_LABEL)
    fig.suptitle(_title(study, "Val error against epoch per batch size (paper Fig. 5)"))
    _note(fig, _interval_note(int(curves["seeds"].max()) if len(curves) else 1, settings, "Bands"))
    return fig


def _paper_panel(ax, reference: dict, norms: list[str], x_label: str, xs_axis) -> None:
    """The paper's numbers on their own axis: dashed, the same colours, its own y range."""
    for norm in norms:
        ref = reference.get(norm)
        if ref:
            xs = sorted(ref)
            ax.plot(xs, [ref[x] for x in xs], linestyle="--", marker="x", color=_colour(norm),
                    label=_norm(norm))
    _log2_axis(ax, xs_axis, x_label)
    ax.set_title(f"{PAPER.label}: its own scale, for direction only", fontsize=10)
    ax.set_ylabel(ERROR_LABEL)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_batch_errors(table: pd.DataFrame, study: Study, settings: FigureSettings) -> Figure:
    """Paper Fig. 1 / Table 2: final val error against batch size (log2 axis) with interval bars, the paper's numbers
    in a panel of their own (for another model or dataset they give direction only)."""
    fig = _figure(figsize=(11, 4.6))
    ours, paper = fig.subplots(1, 2)
    norms = _norms_in(table)
    drawn = [table[table["norm"] == n].dropna(subset=["final_val_err"]) for n in norms]
    mark, note = _provisional(drawn)
    shown = [(norm, t) for norm, t in zip(norms, drawn) if len(t)]
    for i, (norm, t) in enumerate(shown):
        _points(ours, t, "batch_size", _colour(norm), _norm(norm), mark, dodge=0.06 * (i - (len(shown) - 1) / 2))
    axis_label = f"{settings.batch_unit} (batch size)"
    ticks = list(table["batch_size"].dropna()) + list(PAPER.batch["bn"])
    _log2_axis(ours, ticks, axis_label)
    ours.set_ylabel(FINAL_LABEL)
    ours.set_title("this sweep", fontsize=10)
    ours.grid(alpha=0.3)
    _dedupe_legend(ours)
    _paper_panel(paper, {n: PAPER.batch.get(n) for n in norms}, norms, axis_label, ticks)
    fig.suptitle(_title(study, "Val error against batch size (paper Fig. 1)"))
    _note(fig, " ".join(x for x in (_interval_note(int(table["n_seeds"].max()), settings), note) if x))
    return fig


def plot_group_errors(table: pd.DataFrame, study: Study, settings: FigureSettings) -> Figure:
    """Paper Table 3: final val error against the group count or channels per group (log2 axis) with interval bars,
    the paper's numbers in a panel of their own."""
    kind = study.kind
    t = table[table["norm"] == "gn"].dropna(subset=["final_val_err", kind])
    ref = PAPER.groups if kind == "groups" else PAPER.channels_per_group
    fig = _figure(figsize=(11, 4.6))
    ours, paper = fig.subplots(1, 2)
    mark, note = _provisional([t])
    _points(ours, t, kind, _colour("gn"), "GN", mark)
    label = "groups G (1 = LN)" if kind == "groups" else "channels per group (1 = IN)"
    _log2_axis(ours, list(t[kind]) + list(ref), label)
    ours.set_ylabel(FINAL_LABEL)
    ours.set_title("this sweep", fontsize=10)
    ours.grid(alpha=0.3)
    _dedupe_legend(ours)
    _paper_panel(paper, {"gn": ref}, ["gn"], label, list(t[kind]) + list(ref))
    what = "groups" if kind == "groups" else "channels per group"
    fig.suptitle(_title(study, f"Val error against {what} (paper Table 3)"))
    _note(fig, " ".join(x for x in (_interval_note(int(table["n_seeds"].max()), settings), note) if x))
    return fig


def _dedupe_legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), fontsize=8)


def draw_figures(epochs: pd.DataFrame, results: pd.DataFrame, studies: list[Study], out_dir: Path,
                 settings: FigureSettings | None = None) -> dict[str, list[tuple[str, Path]]]:
    """Draw the figures each study calls for into ``out_dir`` (each a PNG with an SVG beside it); returns study
    name -> [(caption, png path)]. Studies with nothing to draw (no epochs yet, or a kind without a paper figure)
    get none."""
    settings = settings or FigureSettings()
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[tuple[str, Path]]] = {}
    for study in studies:
        ep = epochs[epochs["trial_key"].isin(list(study.trial_keys))].drop_duplicates(["trial_key", "epoch"])
        if ep.empty:
            continue
        table = config_intervals(results, study, settings.val_images)
        made = []
        if study.kind == "norms":
            made.append(("error_vs_epoch", "Train and val error against epoch per norm (paper Fig. 4)",
                         plot_norm_curves(ep, study, settings)))
        elif study.kind == "batch_size":
            if table["final_val_err"].notna().any():
                made.append(("error_vs_batch", "Val error against batch size (paper Fig. 1, Table 2)",
                             plot_batch_errors(table, study, settings)))
            made.append(("error_vs_epoch", "Val error against epoch per batch size (paper Fig. 5)",
                         plot_batch_curves(ep, study, settings)))
        elif study.kind in ("groups", "channels_per_group") and table["final_val_err"].notna().any():
            what = "groups" if study.kind == "groups" else "channels per group"
            made.append(("error_vs_groups" if study.kind == "groups" else "error_vs_channels",
                         f"Val error against {what} (paper Table 3)", plot_group_errors(table, study, settings)))
        drawn = [(caption, _save(fig, out_dir / figure_name(study, name))) for name, caption, fig in made]
        if drawn:
            figures[study.name] = drawn
    return figures
