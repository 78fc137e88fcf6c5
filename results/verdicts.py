"""The four verdicts a paper claim can get from a sweep, and the rules that give them: a direction is reproduced when
its whole interval lies on the claimed side of zero, a no-change claim when its whole interval lies within a stated
tolerance (two one-sided tests), an order of several when each adjacent pair is; never from a point estimate alone.
Each verdict says what would decide it while it is open."""
from __future__ import annotations

import math
from dataclasses import dataclass

from results.uncertainty import Interval
from trainer.config import FINAL_EPOCHS

REPRODUCED, CONTRADICTED, INCONCLUSIVE, TOO_EARLY = "reproduced", "contradicted", "inconclusive", "too early"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, TOO_EARLY)
STABLE_WITHIN = 2.0  # points: a no-change claim holds when its interval lies within +-this (a fifth of BN's 11.1-point
# rise from batch 32 to 2 in the paper, and about what Tiny ImageNet's 10,000 val images can resolve)
MAX_SEEDS = 100  # "what would decide" looks no further


@dataclass(frozen=True)
class Verdict:
    """One claim checked: what it says, the measured quantity (a difference, in points) with its interval, the
    paper's value of the same quantity, the verdict, and what would decide it. A claim made of several (an order,
    a best setting) holds them in ``parts`` and shows the numbers of the part that decides it."""

    claim: str
    quantity: str
    verdict: str
    interval: Interval | None
    paper: float | None
    seeds: int
    epochs: int
    would_decide: str | None = None
    tolerance: float | None = None
    parts: tuple["Verdict", ...] = ()


@dataclass(frozen=True)
class Progress:
    """How far a claim's trials are: the fewest epochs of any, how many have not ended, and configurations without a
    completed run (all their trials failed or diverged)."""

    epochs: int | None  # None when no trial of it completed or is still going
    waiting: int
    missing: tuple[str, ...] = ()

    @property
    def too_early(self) -> bool:
        return self.waiting > 0 or (self.epochs is not None and self.epochs < FINAL_EPOCHS)

    def why(self) -> str:
        if self.waiting:
            return (f"wait for {self.waiting} trial{'s' if self.waiting > 1 else ''} not finished yet (running, "
                    f"pending or interrupted)")
        return f"its trials have {self.epochs} epochs; the final error needs {FINAL_EPOCHS}"


def _judge(claim: str, quantity: str, interval: Interval | None, paper: float | None, progress: Progress, rule,
           tolerance: float | None = None) -> Verdict:
    """Too early while any of the claim's trials goes on or is short of epochs; inconclusive while a configuration
    has no completed run; else what ``rule`` (interval -> verdict, distance to the edge that would decide) says."""
    if progress.too_early:
        verdict, decide = TOO_EARLY, progress.why()
    elif interval is None:
        verdict = INCONCLUSIVE
        decide = f"no completed run of {', '.join(progress.missing) or 'a configuration'} (failed or diverged)"
    else:
        verdict, target = rule(interval)
        decide = would_decide(interval, target) if verdict == INCONCLUSIVE else None
    return Verdict(claim, quantity, verdict, interval, paper, interval.seeds if interval else 0, progress.epochs or 0,
                   decide, tolerance)


def direction(claim: str, quantity: str, interval: Interval | None, sign: int, paper: float | None,
              progress: Progress) -> Verdict:
    """A claim that ``quantity`` is above zero (``sign`` +1) or below it (-1): decided when the whole interval is on
    one side."""
    def rule(iv: Interval) -> tuple[str, float]:
        low, high = sorted((sign * iv.low, sign * iv.high))
        return (REPRODUCED if low > 0 else CONTRADICTED if high < 0 else INCONCLUSIVE), abs(iv.value)

    return _judge(claim, quantity, interval, paper, progress, rule)


def no_change(claim: str, quantity: str, interval: Interval | None, paper: float | None, progress: Progress,
              tolerance: float = STABLE_WITHIN) -> Verdict:
    """A claim that ``quantity`` is zero within ``tolerance``: reproduced only when the whole interval lies within
    it (two one-sided tests at 2.5% each), contradicted when the whole interval lies outside it."""
    def rule(iv: Interval) -> tuple[str, float]:
        inside, outside = -tolerance <= iv.low and iv.high <= tolerance, iv.low > tolerance or iv.high < -tolerance
        verdict = REPRODUCED if inside else CONTRADICTED if outside else INCONCLUSIVE
        return verdict, abs(tolerance - abs(iv.value))

    return _judge(claim, quantity, interval, paper, progress, rule, tolerance)


def _margin(v: Verdict) -> float:
    """How clearly a part is decided: its distance from zero in half-widths (0 when nothing was measured)."""
    iv = v.interval
    if iv is None:
        return 0.0
    return abs(iv.value) / iv.half_width if iv.half_width > 0 else math.inf


# Which part of a conjunction decides it, among those with its verdict: the clearest contradiction, the least
# clearly decided open or reproduced part (its need for data is the whole's), or the first still waiting.
_PICK = {CONTRADICTED: lambda p: -_margin(p), TOO_EARLY: lambda p: 0, INCONCLUSIVE: _margin, REPRODUCED: _margin}


def conjunction(claim: str, parts: list[Verdict]) -> Verdict:
    """All of ``parts`` at once: contradicted if one is, too early if one is (and none is contradicted),
    reproduced if all are, else inconclusive; with the numbers and what would decide of the part that decides."""
    verdict = next(v for v in (CONTRADICTED, TOO_EARLY, INCONCLUSIVE, REPRODUCED) if any(p.verdict == v for p in parts))
    p = min((p for p in parts if p.verdict == verdict), key=_PICK[verdict])
    return Verdict(claim, p.quantity, verdict, p.interval, p.paper, min(q.seeds for q in parts),
                   min(q.epochs for q in parts), p.would_decide, p.tolerance, tuple(parts))


def would_decide(interval: Interval, target: float) -> str:
    """How many seeds per configuration, or validation images, would bring the interval's half-width below
    ``target`` (the distance from the measured value to the edge that would decide it), its spreads as measured."""
    if target <= 0:
        return "the measured value sits on the edge: more data would not move it off"
    k, n = interval.seeds, interval.images
    seeds = next((s for s in range(max(k, 1), MAX_SEEDS + 1) if interval.seed_width_at(s) < target), None)
    image_width = interval.image_width_at(n) if n else 0.0
    images = math.ceil(n * (image_width / target) ** 2) + 1 if image_width >= target else None
    val = f"~{_round(images):,} val images (this sweep has {n:,})" if images else ""
    if seeds is None:
        return f"more than {MAX_SEEDS} seeds per configuration{' and ' + val if val else ''} would be needed"
    needs = ([f"~{seeds} seeds per configuration"] if seeds > k else []) + ([val] if val else [])
    text = " and ".join(needs or ["more seeds"]) + " would decide"
    if seeds > k and interval.run_sd is None:
        text += " (if the seeds vary no more than the epochs: their spread is not measured yet)"
    return text if n else text + "; val size unknown"


def _round(n: int) -> int:
    """Two significant figures, rounded up."""
    scale = 10 ** max(len(str(n)) - 2, 0)
    return math.ceil(n / scale) * scale
