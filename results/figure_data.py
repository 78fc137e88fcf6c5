"""What each report figure holds, apart from how it is drawn: its file name (``<study>_<what>.png``), the numbers it
draws (per-epoch means with their intervals, or a study's table with each configuration's interval), and what it
needs to know of the sweep (``FigureSettings``). ``results.html`` finds a figure's data here by its file name."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from results.frames import study_table
from results.intervals import error_interval
from results.studies import DIMS, Study

FIGURE_KINDS = {  # file name suffix -> what its data is: per-epoch curves or the study's table
    "error_vs_epoch": "curves", "error_vs_batch": "table", "error_vs_groups": "table", "error_vs_channels": "table"}


@dataclass(frozen=True)
class FigureSettings:
    """What the figures need to know of the sweep beyond its tables: the validation set's size (for the sampling
    error) and what a batch size counts (images per replica; per device on a GPU sweep)."""

    val_images: int | None = None
    batch_unit: str = "images per replica"


def slug(name: str) -> str:
    """A study's name as part of a file name: letters, digits, ``_`` and ``-`` only (no dot, so never ``..`` nor a
    hidden file), and a long one cut and told apart by a hash, since study names are read from results files."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return cleaned if len(cleaned) <= 60 else f"{cleaned[:50]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def figure_name(study: Study, what: str) -> str:
    """``<study>_<what>.png``, e.g. ``groups_error_vs_groups.png``; ``what`` is a key of FIGURE_KINDS."""
    return f"{slug(study.name)}_{what}.png"


def figure_kind(name: str, studies: list[Study]) -> tuple[Study, str] | None:
    """The study a figure file name belongs to and what its data is (``curves`` or ``table``), or None."""
    for study in studies:
        for what, kind in FIGURE_KINDS.items():
            if name == figure_name(study, what):
                return study, kind
    return None


def epoch_bands(epochs: pd.DataFrame, column: str, val_images: int | None) -> pd.DataFrame:
    """Per configuration (DIMS) and epoch: the mean over seeds of ``column`` and its interval (seeds only for the
    training error, which is not measured on the validation set)."""
    rows = []
    for key, g in epochs.groupby(list(DIMS) + ["epoch"], dropna=False, sort=True):
        values = g[column].astype(float).tolist()
        interval = error_interval(values, val_images if column == "val_err" else None)
        rows.append({**dict(zip(list(DIMS) + ["epoch"], key)), "mean": float(np.nanmean(values)),
                     "low": interval.low if interval else np.nan, "high": interval.high if interval else np.nan,
                     "seeds": g["trial_key"].nunique()})
    return pd.DataFrame(rows, columns=list(DIMS) + ["epoch", "mean", "low", "high", "seeds"])


def config_intervals(results: pd.DataFrame, study: Study, val_images: int | None) -> pd.DataFrame:
    """The study's table (``frames.study_table``) with each configuration's interval (``low``, ``high``): the same
    95% interval of its final error (``results.uncertainty``) that the report's table and verdicts use, so a figure
    never shows a narrower bar than the claim it illustrates."""
    table = study_table(results, study, val_images)
    return table.assign(low=table["err_low"].clip(lower=0.0), high=table["err_high"].clip(upper=100.0))


def figure_data(name: str, epochs: pd.DataFrame, results: pd.DataFrame, studies: list[Study],
                settings: FigureSettings | None = None) -> pd.DataFrame | None:
    """The numbers a figure of ``draw_figures`` draws, found by its file name: per configuration and epoch the mean
    train and val error and the val error's interval, or the study's table with each configuration's interval."""
    found = figure_kind(name, studies)
    if found is None:
        return None
    settings = settings or FigureSettings()
    study, kind = found
    if kind == "table":
        return config_intervals(results, study, settings.val_images)
    ep = epochs[epochs["trial_key"].isin(list(study.trial_keys))].drop_duplicates(["trial_key", "epoch"])
    keys = list(DIMS) + ["epoch"]
    val = epoch_bands(ep, "val_err", settings.val_images)
    train = epoch_bands(ep, "train_err", None).drop(columns="seeds")
    return val.rename(columns={"mean": "val_mean", "low": "val_low", "high": "val_high"}).merge(
        train.rename(columns={"mean": "train_mean", "low": "train_low", "high": "train_high"}), on=keys, how="left")
