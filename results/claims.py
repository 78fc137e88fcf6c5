"""The measured claims in words and as rows: each sentence states the measured figures, the reference's, and the
verdict with its interval; the same verdicts are the rows of the claims table (``ClaimRow``), so the report's
Findings and ``claims.parquet`` come from one source."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from results.measures import BatchSpread, GnFlat, GnGap, GroupSweep, Measure, NormOrder, SmallBatch, TrainGap, \
    measure
from results.paper import TABLE2
from results.records import ClaimRow
from results.studies import Study
from results.text import md_inline
from results.verdicts import STABLE_WITHIN, Verdict


@dataclass(frozen=True)
class Claim:
    """One paper claim checked against the sweep: its sentence, and its rows (the claim, then its parts)."""

    study: str
    topic: str
    text: str
    rows: tuple[ClaimRow, ...]

    @property
    def verdict(self) -> str:
        return self.rows[0].verdict


def _pct(value: float) -> str:
    return "not measured yet" if math.isnan(value) else f"{value:.1f}%"


def _moved(points: float) -> str:
    if math.isnan(points):
        return "is not measured yet"
    if points > 0.05:
        return f"rose {points:.1f} points"
    if points < -0.05:
        return f"fell {-points:.1f} points"
    return "did not change (0.0 points)"


def _versus(diff: float, a: str, b: str) -> str:
    if math.isnan(diff):
        return f"{a} against {b} is not measured yet"
    if round(diff, 1) == 0:
        return f"{a} and {b} are equal to 0.1 points"
    return f"{a} is {abs(diff):.1f} points {'lower' if diff < 0 else 'higher'} than {b}"


def numbers(v: Verdict) -> str:
    """The verdict's measured quantity with its interval: ``GN - BN at batch 2: -3.1 points [-7.0, +0.8]``."""
    iv = v.interval
    if iv is None:
        return f"{v.quantity}: not measured"
    return f"{v.quantity}: {iv.value:+.1f} points [{iv.low:+.1f}, {iv.high:+.1f}]"


def verdict_text(v: Verdict) -> str:
    """``inconclusive (GN - BN at batch 2: -3.1 points [-7.0, +0.8], 1 seed); ~4 seeds would decide``."""
    seeds = f"{v.seeds} seed{'' if v.seeds == 1 else 's'}"
    method = f", {v.interval.method}" if v.interval is not None and v.seeds > 1 else ""
    text = f"{v.verdict} ({numbers(v)}, {seeds}{method})"
    if v.tolerance is not None:
        text += f", tolerance ±{v.tolerance:g} points"
    return text + (f": {v.would_decide}" if v.would_decide else "")


def _spread(m: BatchSpread) -> str:
    small, large = m.batches[0], m.batches[-1]
    p_gn, p_bn = TABLE2["gn"], TABLE2["bn"]
    paper = (f"in the paper (ResNet-50, ImageNet) GN's changed by {p_gn[2] - p_gn[32]:+.1f} points from batch 32 "
             f"to 2 and BN's rose {p_bn[2] - p_bn[32]:.1f}")
    if small in p_gn and large in p_gn and (large, small) != (32, 2):
        paper += (f" (from {large} to {small}: GN {p_gn[small] - p_gn[large]:+.1f}, BN "
                  f"{p_bn[small] - p_bn[large]:+.1f})")
    return (f"Spread is the error at the smallest batch minus the error at the largest. In this sweep GN's error "
            f"{_moved(m.gn_spread)} from batch {large} to {small} and BN's {_moved(m.bn_spread)}; {paper}. That BN's "
            f"error rises as the batch shrinks, and more than GN's, is {verdict_text(m.verdict)}.")


def _flat(m: GnFlat) -> str:
    large = m.batches[-1]
    changes = ", ".join(("not measured yet" if math.isnan(m.changes[b]) else f"{m.changes[b]:+.1f}") + f" at batch {b}"
                        for b in sorted(m.changes, reverse=True))
    p_gn = TABLE2["gn"]
    return (f"Against its error at batch {large}, GN's changed by {changes} (paper: GN's error stays within "
            f"{max(p_gn.values()) - min(p_gn.values()):.1f} points across 32 to 2). That GN's error does not change "
            f"with the batch (every change within ±{STABLE_WITHIN:g} points) "
            f"is {verdict_text(m.verdict)}.")


def _small(m: SmallBatch) -> str:
    where = (f"paper at batch {m.paper_batch}" if m.paper_batch == m.batch
             else f"paper has no batch {m.batch}; at batch {m.paper_batch}")
    paper = _versus(m.paper_gn - m.paper_bn, 'GN', 'BN')
    return (f"At batch {m.batch}, the smallest with both in the study, GN's error is {_pct(m.gn)} and BN's "
            f"{_pct(m.bn)}: {_versus(m.gn - m.bn, 'GN', 'BN')} ({where}: {paper}, "
            f"{m.paper_gn:.1f}% vs {m.paper_bn:.1f}%). {m.verdict.claim[0].upper()}{m.verdict.claim[1:]}: "
            f"{verdict_text(m.verdict)}.")


def _order(errors: Mapping[str, float]) -> str:
    return " < ".join(f"{md_inline(n.upper())} {e:.1f}%" for n, e in sorted(errors.items(), key=lambda kv: kv[1]))


def _norm_order(m: NormOrder) -> str:
    refs = []
    for r in m.rankings:
        same = (f"orders them as the measured means do" if r.agree == r.pairs
                else f"orders {r.agree} of {r.pairs} pairs as the measured means do")
        refs.append(f"{r.key}: {_order(r.errors)}, {same}")
    order = " < ".join(n.upper() for n in m.order)
    return (f"At batch {m.batch} the measured order is {_order(m.errors)} ({'; '.join(refs)}). The paper's order "
            f"{order}, pair by pair, is {verdict_text(m.verdict)}.")


def _gn_gap(m: GnGap) -> str:
    return (f"At batch {m.batch} {_versus(m.gap, 'GN', 'BN')} in val error (paper: GN is {abs(m.paper_gap):.1f} "
            f"points {'higher' if m.paper_gap >= 0 else 'lower'} than BN, 'comparably good'). That GN's error is "
            f"within ±{m.verdict.tolerance:g} points of BN's is {verdict_text(m.verdict)}.")


def _train_gap(m: TrainGap) -> str:
    return (f"At batch {m.batch} GN's final training error is {_pct(m.gn)} and BN's {_pct(m.bn)}: "
            f"{_versus(m.gn - m.bn, 'GN', 'BN')} (paper, Fig. 4: GN's training error is below BN's). That GN's "
            f"training error is below BN's is {verdict_text(m.verdict)}.")


def _setting(kind: str, value: int) -> str:
    return f"G={value}" if kind == "groups" else f"{value} channel{'' if value == 1 else 's'}/group"


def _groups(m: GroupSweep) -> str:
    kind, errs, best, worst = m.kind, m.errors, m.best, m.worst
    name = "group counts G" if kind == "groups" else "channels per group"
    paper = m.paper
    p_best, p_worst = min(paper, key=paper.get), max(paper, key=paper.get)
    rest = [v for k, v in paper.items() if k != p_worst]
    others = max(rest) - min(rest)
    return (f"Over {name} {', '.join(str(k) for k in sorted(errs, reverse=True))}, {_setting(kind, best)} gave the "
            f"lowest mean error ({errs[best]:.1f}%) and {_setting(kind, worst)} the highest ({errs[worst]:.1f}%), "
            f"{errs[worst] - errs[best]:.1f} points apart (paper at batch 32 over the same settings: best "
            f"{_setting(kind, p_best)} {paper[p_best]:.1f}%, worst {_setting(kind, p_worst)} {paper[p_worst]:.1f}%, "
            f"{paper[p_worst] - paper[p_best]:.1f} apart; its other settings lie within {others:.1f} points of each "
            f"other, too close to check which is best). That {m.verdict.claim} is {verdict_text(m.verdict)}.")


WORDING = {BatchSpread: ("batch_spread", _spread), GnFlat: ("gn_flat", _flat), SmallBatch: ("small_batch", _small),
           NormOrder: ("norm_order", _norm_order), GnGap: ("gn_vs_bn", _gn_gap), TrainGap: ("train_err", _train_gap)}


def rows(study: str, topic: str, v: Verdict, part_of: str | None = None, images: int | None = None) -> list[ClaimRow]:
    """The verdict and its parts as rows of the claims table."""
    iv = v.interval
    row = ClaimRow(claim=v.claim, study=study, topic=topic, quantity=v.quantity,
                   measured=iv.value if iv else None, low=iv.low if iv else None, high=iv.high if iv else None,
                   paper=v.paper, verdict=v.verdict, seeds=v.seeds, epochs=v.epochs, would_decide=v.would_decide,
                   method=iv.method if iv else None, tolerance=v.tolerance, images=images, part_of=part_of)
    return [row] + [r for p in v.parts for r in rows(study, topic, p, v.claim, images)]


def word(m: Measure, images: Mapping[str, int] | None = None) -> Claim:
    topic, sentence = (m.kind, _groups) if isinstance(m, GroupSweep) else WORDING[type(m)]
    count = (images or {}).get("train" if topic == "train_err" else "val")
    return Claim(m.study, topic, sentence(m), tuple(rows(m.study, topic, m.verdict, images=count)))


def claims(results: pd.DataFrame, studies: list[Study], images: Mapping[str, int] | None = None) -> list[Claim]:
    """Every paper claim the sweep has data for, study by study, each sentence with its measured figures and
    verdict; ``images``: the dataset's image counts by split as recorded at launch (None where unknown)."""
    return [word(m, images) for m in measure(results, studies, images)]
