"""How sure a measured error is: a configuration's final error, or a difference of configurations, as a 95% interval
that is never narrower than any of three noise sources this sweep can see (``MODEL`` says it in words; the report
and README print it). Only numbers here; ``results.verdicts`` turns intervals into verdicts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Sequence

from trainer.config import FINAL_EPOCHS

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)

MODEL = (
    f"Each configuration's error is the mean over its seeds of each run's final error (the median of its last "
    f"{FINAL_EPOCHS} epochs). Its {CONFIDENCE:.0%} interval is the widest of three: a t-interval over the per-seed "
    f"final errors (two or more seeds); the binomial sampling error of the validation set, "
    f"±{Z:.2f}·sqrt(p(1-p)/n) for n validation images, which more seeds cannot shrink; and ±{Z:.2f}·s/sqrt(seeds) "
    f"for s the standard deviation of the last {FINAL_EPOCHS} epochs, a lower bound on a run's own noise. A "
    f"difference between configurations gets the same three: over paired per-seed differences where both sides "
    f"share two or more seeds, else over the seeds' pooled standard deviation; the two sides' sampling and epoch "
    f"errors are added as if independent (conservative: both sides see the same validation images). With one seed "
    f"the seeds' own spread is not measured, and the interval says only what the validation set and the epochs "
    f"allow. Interval widths shrink with the square root of the seeds and of the validation images, which is how "
    f"the report estimates what would decide an open claim.")


@dataclass(frozen=True)
class Runs:
    """One configuration's runs as the intervals see them: each seed's final error (percent), the standard deviation
    of the epochs each final error is the median of (pooled over the seeds), and the images an error is measured on
    (None where unknown)."""

    finals: Mapping[int, float]
    epoch_sd: float
    images: int | None

    @property
    def seeds(self) -> int:
        return len(self.finals)

    @property
    def mean(self) -> float:
        return sum(self.finals.values()) / len(self.finals) if self.finals else math.nan

    def seed_var(self) -> float | None:
        """The sample variance over seeds (None with fewer than two)."""
        values = list(self.finals.values())
        if len(values) < 2:
            return None
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / (len(values) - 1)

    def image_var(self) -> float | None:
        """One measurement's binomial variance in points squared (the same images for every seed)."""
        if not self.images:
            return None
        p = min(max(self.mean / 100, 0.0), 1.0)
        return 1e4 * p * (1 - p) / self.images


def epoch_sd(errors: Sequence[float]) -> float:
    """The standard deviation of the epochs the final error is the median of (NaN with fewer than two)."""
    last = [float(e) for e in errors][-FINAL_EPOCHS:]
    if len(last) < 2:
        return math.nan
    mean = sum(last) / len(last)
    return math.sqrt(sum((e - mean) ** 2 for e in last) / (len(last) - 1))


def pooled_sd(sds: Sequence[float]) -> float:
    """Several runs' epoch standard deviations as one (root mean square; 0 when none is known)."""
    known = [s for s in sds if not math.isnan(s)]
    return math.sqrt(sum(s * s for s in known) / len(known)) if known else 0.0


def t_value(df: float) -> float:
    from scipy import stats  # imported here: a second of start-up that a refused command should not pay

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


@dataclass(frozen=True)
class Interval:
    """A measured quantity (a configuration's error, or a signed sum of them) with its interval and what set its
    width. ``run_sd``: the standard deviation over seeds of one run's value (None with one seed each); ``paired``:
    whether it came from per-seed differences; the rest are what ``seed_width_at`` and ``image_width_at`` project
    to other counts."""

    value: float
    low: float
    high: float
    seeds: int  # the fewest seeds of any configuration in it
    method: str
    run_sd: float | None
    paired: bool
    configs: int
    epoch_run_sd: float  # one run's epoch noise of the quantity
    image_se: float | None  # its binomial standard error at ``images``
    images: int | None

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def seed_width_at(self, seeds: int) -> float:
        """The half-width the seeds and the epochs would allow with ``seeds`` seeds per configuration, the spreads
        as measured."""
        widths = [Z * self.epoch_run_sd / math.sqrt(seeds)]
        if self.run_sd is not None and seeds >= 2:
            df = seeds - 1 if self.paired else self.configs * (seeds - 1)
            widths.append(t_value(df) * self.run_sd / math.sqrt(seeds))
        return max(widths)

    def image_width_at(self, images: int) -> float:
        """The half-width the validation set would allow with ``images`` images (0 where its size is unknown)."""
        return Z * self.image_se * math.sqrt(self.images / images) if self.image_se is not None else 0.0


def contrast(terms: Sequence[tuple[Runs, float]]) -> Interval | None:
    """The interval of sum(coefficient * configuration's error); None when a configuration has no run."""
    if not terms or any(r.seeds == 0 for r, _ in terms):
        return None
    value = sum(c * r.mean for r, c in terms)
    seeds = min(r.seeds for r, _ in terms)
    shared = set(terms[0][0].finals)
    paired = seeds >= 2 and all(set(r.finals) == shared for r, _ in terms)
    if paired:
        per_seed = [sum(c * r.finals[s] for r, c in terms) for s in sorted(shared)]
        mean = sum(per_seed) / len(per_seed)
        run_sd = math.sqrt(sum((d - mean) ** 2 for d in per_seed) / (len(per_seed) - 1))
        seed_half = t_value(len(per_seed) - 1) * run_sd / math.sqrt(len(per_seed))
        method = (f"t over {seeds} seeds" if len(terms) == 1 else f"paired over {seeds} seeds")
    else:
        dfs = [(r.seeds - 1, r.seed_var()) for r, _ in terms if r.seed_var() is not None]
        df = sum(d for d, _ in dfs)
        if df:
            pooled = math.sqrt(sum(d * v for d, v in dfs) / df)
            run_sd = pooled * math.sqrt(sum(c * c for _, c in terms))
            seed_half = t_value(df) * pooled * math.sqrt(sum(c * c / r.seeds for r, c in terms))
            method = f"unpaired, pooled over {'-'.join(sorted({str(r.seeds) for r, _ in terms}))} seeds"
        else:
            run_sd, seed_half = None, 0.0
            method = "1 seed: seed spread not measured"
    epoch_se = math.sqrt(sum(c * c * r.epoch_sd ** 2 / r.seeds for r, c in terms))
    epoch_run_sd = math.sqrt(sum(c * c * r.epoch_sd ** 2 for r, c in terms))
    image_vars = [c * c * v for r, c in terms if (v := r.image_var()) is not None]
    image_se = math.sqrt(sum(image_vars)) if len(image_vars) == len(terms) else None
    images = min(r.images for r, _ in terms) if image_se is not None else None
    half = max(seed_half, Z * epoch_se, Z * image_se if image_se is not None else 0.0)
    return Interval(value, value - half, value + half, seeds, method, run_sd, paired, len(terms), epoch_run_sd,
                    image_se, images)
