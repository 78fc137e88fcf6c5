"""The paper's figures for the studies a sweep has, as PNGs: Fig. 4 (error against epoch per norm), Fig. 1 (error
against batch size), Fig. 5 (error against epoch per batch size) and Table 3 (error against groups).

Each norm keeps one colour in every figure; several seeds are drawn as their mean with a min-max band. Figures are
built on ``matplotlib.figure.Figure`` (Agg), so no pyplot state or display is involved.
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from results.frames import epoch_curves, study_table
from results.studies import Study
from results.paper import NORM_ORDER, PAPER
from results.text import plain
from trainer.config import FINAL_EPOCHS
from trainer.storage import Location

NORM_COLOURS = {"bn": "#1f77b4", "gn": "#e6550d", "ln": "#2ca02c", "in": "#8e44ad", "none": "#7f7f7f"}
NORM_SHADES = {"bn": "Blues", "gn": "Oranges", "ln": "Greens", "in": "Purples", "none": "Greys"}
ERROR_LABEL = "top-1 val error (%)"


def _text(value, limit: int = 60) -> str:
    """Text from results files as a figure label: one short line, its dollar signs literal (matplotlib reads a pair
    of them as mathtext, which can fail to parse and stop the report)."""
    return plain(value, limit).replace("$", r"\$")


def _norm(norm: str) -> str:
    return _text(norm.upper())


def _colour(norm: str) -> str:
    return NORM_COLOURS.get(norm, "black")


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG whole (a hidden name renamed into place), so a reader never sees half a figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    Location.of(path).write_bytes(buffer.getvalue())
    return path


def _line(ax, x, mean, low, high, n, **style) -> None:
    seeds = int(np.nanmax(np.asarray(n, dtype=float), initial=0))
    if seeds > 1 and "label" in style:
        style["label"] += f", mean of {seeds} seeds, band min-max"
    ax.plot(x, mean, **style)
    if seeds > 1:
        ax.fill_between(x, np.asarray(low, dtype=float), np.asarray(high, dtype=float), alpha=0.18,
                        color=style.get("color"), linewidth=0)


def _mark_incomplete(ax, rows: pd.DataFrame, x: str) -> None:
    """Hollow rings on points whose trials have not completed FINAL_EPOCHS epochs: they are provisional."""
    rows = rows[~rows["complete"].astype(bool)]
    label = "not completed (provisional)"
    if len(rows):
        first = label not in [c.get_label() for c in ax.collections]
        ax.scatter(rows[x], rows["final_val_err"], s=110, facecolors="white", edgecolors="black", zorder=3,
                   label=label if first else "_nolegend_")


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


def plot_norm_curves(curves: pd.DataFrame, study: Study, path: Path) -> Path:
    """Paper Fig. 4: train error (left) and val error (right) against epoch, one line per norm."""
    fig = Figure(figsize=(11, 4.3))
    axes = fig.subplots(1, 2, sharey=True)
    for norm in _norms_in(curves):
        c = curves[curves["norm"] == norm].sort_values("epoch")
        for ax, kind in zip(axes, ("train", "val")):
            _line(ax, c["epoch"], c[f"{kind}_mean"], c[f"{kind}_min"], c[f"{kind}_max"], c["n"],
                  color=_colour(norm), label=_norm(norm), linewidth=1.8)
    for ax, kind in zip(axes, ("train", "val")):
        ax.set_title(f"{kind} error")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="norm")
    axes[0].set_ylabel("top-1 error (%)")
    fig.suptitle(_title(study, "Error against epoch per normalization (paper Fig. 4)"))
    return _save(fig, path)


def plot_batch_errors(table: pd.DataFrame, study: Study, path: Path) -> Path:
    """Paper Fig. 1 / Table 2: final val error against images per GPU, log2 axis, with the paper's numbers
    dashed (labelled with their source; for another model they give direction only)."""
    fig = Figure(figsize=(7, 4.6))
    ax = fig.subplots()
    for norm in _norms_in(table):
        t = table[table["norm"] == norm].dropna(subset=["final_val_err"]).sort_values("batch_size")
        if len(t):
            _line(ax, t["batch_size"], t["final_val_err"], t["err_min"], t["err_max"], t["n_seeds"],
                  color=_colour(norm), marker="o", linewidth=2, label=f"{_norm(norm)} (this sweep)")
            _mark_incomplete(ax, t, "batch_size")
        ref = PAPER.batch.get(norm)
        if ref:
            xs = sorted(ref)
            ax.plot(xs, [ref[x] for x in xs], linestyle="--", marker="x", color=_colour(norm), alpha=0.7,
                    label=f"{_norm(norm)}, {PAPER.label}")
    _log2_axis(ax, list(table["batch_size"].dropna()) + list(PAPER.batch["bn"]), "images per GPU (batch size)")
    ax.set_ylabel(f"{ERROR_LABEL}, median of last {FINAL_EPOCHS} epochs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_title(study, "Val error against batch size (paper Fig. 1)"), fontsize=10)
    return _save(fig, path)


def plot_batch_curves(curves: pd.DataFrame, study: Study, path: Path) -> Path:
    """Paper Fig. 5: val error against epoch for each batch size, BN and GN side by side (darker = larger)."""
    norms = [n for n in _norms_in(curves) if n in ("bn", "gn")] or _norms_in(curves)
    fig = Figure(figsize=(5.5 * len(norms), 4.3))
    axes = np.atleast_1d(fig.subplots(1, len(norms), sharey=True))
    for ax, norm in zip(axes, norms):
        c = curves[curves["norm"] == norm]
        batches = sorted(c["batch_size"].dropna().unique(), reverse=True)
        cmap = matplotlib.colormaps[NORM_SHADES.get(norm, "Greys")]
        for i, b in enumerate(batches):
            cb = c[c["batch_size"] == b].sort_values("epoch")
            shade = cmap(0.95 - 0.6 * i / max(len(batches) - 1, 1))
            _line(ax, cb["epoch"], cb["val_mean"], cb["val_min"], cb["val_max"], cb["n"], color=shade,
                  linewidth=1.8, label=f"batch {int(b)}")
        ax.set_title(_norm(norm))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="images per GPU")
    axes[0].set_ylabel(ERROR_LABEL)
    fig.suptitle(_title(study, "Val error against epoch per batch size (paper Fig. 5)"))
    return _save(fig, path)


def plot_group_errors(table: pd.DataFrame, study: Study, path: Path) -> Path:
    """Paper Table 3: final val error against the group count or channels per group (log2 axis), paper dashed."""
    kind = study.kind
    t = table[table["norm"] == "gn"].dropna(subset=["final_val_err", kind]).sort_values(kind)
    ref = PAPER.groups if kind == "groups" else PAPER.channels_per_group
    fig = Figure(figsize=(7, 4.6))
    ax = fig.subplots()
    _line(ax, t[kind], t["final_val_err"], t["err_min"], t["err_max"], t["n_seeds"], color=_colour("gn"),
          marker="o", linewidth=2, label="GN (this sweep)")
    _mark_incomplete(ax, t, kind)
    xs = sorted(ref)
    ax.plot(xs, [ref[x] for x in xs], linestyle="--", marker="x", color=_colour("gn"), alpha=0.7,
            label=f"GN, {PAPER.label}")
    label = "groups G (1 = LN)" if kind == "groups" else "channels per group (1 = IN)"
    _log2_axis(ax, list(t[kind]) + xs, label)
    ax.set_ylabel(f"{ERROR_LABEL}, median of last {FINAL_EPOCHS} epochs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    what = "groups" if kind == "groups" else "channels per group"
    ax.set_title(_title(study, f"Val error against {what} (paper Table 3)"), fontsize=10)
    return _save(fig, path)


def _slug(name: str) -> str:
    """A study's name as part of a file name: letters, digits, ``_`` and ``-`` only (no dot, so never ``..`` nor a
    hidden file), and a long one cut and told apart by a hash, since study names are read from results files."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return slug if len(slug) <= 60 else f"{slug[:50]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def draw_figures(epochs: pd.DataFrame, results: pd.DataFrame, studies: list[Study],
                 out_dir: Path) -> dict[str, list[tuple[str, Path]]]:
    """Draw the figures each study calls for into ``out_dir``; returns study name -> [(caption, png path)].
    Studies with nothing to draw (no epochs yet, or a kind without a paper figure) get none."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[tuple[str, Path]]] = {}
    for study in studies:
        curves = epoch_curves(epochs, study.trial_keys)
        if curves.empty:
            continue
        table = study_table(results, study)
        slug = _slug(study.name)
        drawn = []
        if study.kind == "norms":
            drawn.append(("Train and val error against epoch per norm (paper Fig. 4)",
                          plot_norm_curves(curves, study, out_dir / f"{slug}_epochs.png")))
        elif study.kind == "batch_size":
            if table["final_val_err"].notna().any():
                drawn.append(("Val error against batch size (paper Fig. 1, Table 2)",
                              plot_batch_errors(table, study, out_dir / f"{slug}_batch.png")))
            drawn.append(("Val error against epoch per batch size (paper Fig. 5)",
                          plot_batch_curves(curves, study, out_dir / f"{slug}_epochs.png")))
        elif study.kind in ("groups", "channels_per_group") and table["final_val_err"].notna().any():
            drawn.append(("Val error against " + ("groups" if study.kind == "groups" else "channels per group")
                          + " (paper Table 3)", plot_group_errors(table, study, out_dir / f"{slug}_groups.png")))
        if drawn:
            figures[study.name] = drawn
    return figures

