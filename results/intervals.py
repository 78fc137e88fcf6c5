"""The interval the figures draw around an error: from the seeds (their range) and from the noise of the validation
set itself (the binomial sampling error of an error rate measured on n images). ``error_interval`` is the one
function the figures ask, so a better estimate (per-configuration intervals from the verdicts' analysis) replaces it
in one place.

See shared/notes/statistics.md: an error rate p measured on n images has a standard error sqrt(p (1 - p) / n);
with one seed there is no seed interval, only the sampling one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

Z95 = 1.96  # two-sided 95% normal quantile, for the sampling error


@dataclass(frozen=True)
class Interval:
    """Where a configuration's error (percent) plausibly lies."""

    low: float
    high: float


def sampling_error(error: float, val_images: int) -> float:
    """The binomial standard error, in points, of an error rate of ``error`` percent measured on ``val_images``."""
    p = min(max(error / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / val_images)


def error_interval(errors: Iterable[float], val_images: int | None = None) -> Interval | None:
    """The interval around the mean of one configuration's per-seed errors (percent): the range over the seeds,
    widened to at least the mean's 95% sampling interval on ``val_images`` validation images when that is known.
    None where there is nothing to base one on (no finite error; one seed and an unknown validation size)."""
    values = [float(e) for e in errors if e is not None and math.isfinite(float(e))]
    if not values:
        return None
    mean = sum(values) / len(values)
    low, high = min(values), max(values)
    if val_images:
        half = Z95 * sampling_error(mean, val_images)
        low, high = min(low, mean - half), max(high, mean + half)
    elif len(values) < 2:
        return None
    return Interval(max(low, 0.0), min(high, 100.0))


def describe(seeds: int, val_images: int | None) -> str:
    """What ``error_interval`` drew, for a figure's note: ``range over 3 seeds, at least ±1.96 binomial s.e. of
    360 val images``."""
    parts = []
    if seeds > 1:
        parts.append(f"range over {seeds} seeds")
    if val_images:
        parts.append(f"{'at least ' if parts else ''}±{Z95} binomial s.e. of {val_images:,} val images")
    return ", ".join(parts) if parts else "none (one seed, validation size unknown)"
