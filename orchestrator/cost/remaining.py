"""What is left of a sweep, with measured epoch times replacing the estimate as trials report epochs.

A trial's own epochs give its epoch time (the median time between consecutive recorded epochs of one attempt:
training, validation and checkpoint; with a single epoch, its training seconds plus the estimated rest). A trial
not started yet takes the time measured on a trial of the same shape, else its estimate scaled by how far the
measured trials were from theirs (the median ratio). Pure pandas: ``gnsweep status`` and the launch use it.
"""
from __future__ import annotations

import statistics
from dataclasses import replace

import pandas as pd

from orchestrator.cost.estimate import TrialEstimate
from results.schema import ENDED, TrialStatus


def measured_epoch_seconds(epochs: pd.DataFrame, other: dict[str, float]) -> dict[str, float]:
    """Per trial with recorded epochs: its measured seconds per epoch. ``other[key]`` is the estimated
    non-training part of an epoch, added when only one epoch (hence no interval) is known."""
    out: dict[str, float] = {}
    if epochs is None or epochs.empty:
        return out
    for key, rows in epochs.sort_values(["trial_key", "epoch"]).groupby("trial_key"):
        gaps = []
        for _, attempt in rows.groupby("attempt"):
            at = pd.to_datetime(attempt["recorded_at"])
            t = (at - at.iloc[0]).dt.total_seconds().to_numpy()
            e = attempt["epoch"].to_numpy()
            gaps += [(t[i] - t[i - 1]) / (e[i] - e[i - 1]) for i in range(1, len(t)) if e[i] > e[i - 1]]
        if gaps:
            out[key] = statistics.median(gaps)
        elif rows["epoch_seconds"].notna().any():
            out[key] = float(rows["epoch_seconds"].median()) + other.get(key, 0.0)
    return out


def remaining(estimates: dict[str, TrialEstimate], shapes: dict[str, str], epochs: pd.DataFrame,
              statuses: dict[str, str]) -> tuple[dict[str, TrialEstimate], str]:
    """What is left of each trial (``estimates`` are of whole trials; ``shapes`` name each trial's calibration shape;
    ``statuses`` are the trials table's), and a phrase saying what the figures rest on."""
    done = epochs.groupby("trial_key")["epoch"].max().to_dict() if epochs is not None and len(epochs) else {}
    measured = measured_epoch_seconds(epochs, {k: e.other_seconds for k, e in estimates.items()})
    measured = {k: v for k, v in measured.items() if k in estimates}
    ratios = [measured[k] / estimates[k].epoch_seconds for k in measured if estimates[k].epoch_seconds > 0]
    ratio = statistics.median(ratios) if ratios else 1.0
    by_shape: dict[str, list[float]] = {}
    for k, v in measured.items():
        by_shape.setdefault(shapes.get(k, k), []).append(v)
    out = {}
    for key, est in estimates.items():
        left = 0 if statuses.get(key) in ENDED else max(0, est.epochs - int(done.get(key, 0)))
        startup = est.startup_seconds if not done.get(key) and statuses.get(key) != TrialStatus.RUNNING else 0.0
        if key in measured:
            epoch, source = measured[key], "measured"
        elif shapes.get(key) in by_shape:
            epoch, source = statistics.median(by_shape[shapes[key]]), "measured (same shape)"
        elif ratios:
            epoch, source = est.epoch_seconds * ratio, f"{est.source} x {ratio:.2f}"
        else:
            epoch, source = est.epoch_seconds, est.source
        share = est.train_seconds / est.epoch_seconds if est.epoch_seconds else 1.0
        out[key] = replace(est, train_seconds=epoch * share, other_seconds=epoch * (1 - share),
                           startup_seconds=startup if left else 0.0, epochs=left, source=source)
    basis = (f"{len(measured)} trials' measured epochs; the others' estimates scaled by the median measured/"
             f"estimated ratio {ratio:.2f}" if measured else "estimates only (no epoch recorded yet)")
    return out, basis
