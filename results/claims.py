"""The measured claims in words: each sentence states the measured figures, the reference's, and the verdict."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from results.measures import TIE, BatchSpread, Caveat, GnGap, GroupSweep, Measure, NormOrder, SmallBatch, \
    TrainGap, measure
from results.paper import TABLE2
from results.studies import Study
from results.text import md_inline
from trainer.config import FINAL_EPOCHS


@dataclass(frozen=True)
class Claim:
    """One paper claim checked against the sweep: ``reproduced`` is None where the data cannot say."""

    study: str
    topic: str
    text: str
    reproduced: bool | None
    provisional: bool


def _moved(points: float) -> str:
    if points > 0.05:
        return f"rose {points:.1f} points"
    if points < -0.05:
        return f"fell {-points:.1f} points"
    return "did not change (0.0 points)"


def _versus(diff: float, a: str, b: str) -> str:
    if abs(round(diff, 1)) <= TIE:
        if round(diff, 1) == 0:
            return f"{a} and {b} are equal to 0.1 points"
        return f"{a} is within {TIE} points of {b} ({abs(diff):.1f} points {'higher' if diff > 0 else 'lower'})"
    return f"{a} is {abs(diff):.1f} points {'lower' if diff < 0 else 'higher'} than {b}"


def _verdict(ok: bool) -> str:
    return "the paper's direction is reproduced here" if ok else "the paper's direction is not reproduced here"


def _caveat(c: Caveat) -> str:
    notes = []
    if c.seeds > 1:
        notes.append(f"Figures are means over up to {c.seeds} seeds.")
    if c.incomplete:
        notes.append(f"Provisional: {c.incomplete} of these {c.configurations} configurations have trials that are "
                     f"not completed with {FINAL_EPOCHS}+ epochs.")
    return " " + " ".join(notes) if notes else ""


def _spread(m: BatchSpread) -> str:
    small, large = m.batches[0], m.batches[-1]
    p_gn, p_bn = TABLE2["gn"], TABLE2["bn"]
    paper = (f"in the paper (ResNet-50, ImageNet) GN's changed by {p_gn[2] - p_gn[32]:+.1f} points from batch 32 "
             f"to 2 and BN's rose {p_bn[2] - p_bn[32]:.1f}")
    if small in p_gn and large in p_gn and (large, small) != (32, 2):
        paper += (f" (from {large} to {small}: GN {p_gn[small] - p_gn[large]:+.1f}, BN "
                  f"{p_bn[small] - p_bn[large]:+.1f})")
    if m.reproduced:
        verdict = "the paper's direction is reproduced here: BN's error grows more than GN's as the batch shrinks"
        if round(m.gn_range, 1) > max(m.bn_spread, TIE):
            verdict += (f"; but GN's error is not flat across batches as in the paper: it varied by "
                        f"{m.gn_range:.1f} points, more than BN's rose")
    elif not m.bn_rises:
        verdict = "the paper's direction is not reproduced here: BN's error did not rise as the batch shrank"
    else:
        verdict = "the paper's direction is not reproduced here: GN's error grew as much as BN's"
    return (f"Spread is the error at the smallest batch minus the error at the largest. In this sweep GN's error "
            f"{_moved(m.gn_spread)} from batch {large} to {small} and BN's {_moved(m.bn_spread)}; {paper}. Across "
            f"batches {', '.join(str(b) for b in reversed(m.batches))} GN's error varied by {m.gn_range:.1f} points "
            f"(paper: {max(p_gn.values()) - min(p_gn.values()):.1f} across 32 to 2): {verdict}.")


def _small(m: SmallBatch) -> str:
    where = (f"paper at batch {m.paper_batch}" if m.paper_batch == m.batch
             else f"paper has no batch {m.batch}; at batch {m.paper_batch}")
    return (f"At batch {m.batch}, the smallest with both measured, GN's error is {m.gn:.1f}% and BN's {m.bn:.1f}%: "
            f"{_versus(m.gn - m.bn, 'GN', 'BN')} ({where}: {_versus(m.paper_gn - m.paper_bn, 'GN', 'BN')}, "
            f"{m.paper_gn:.1f}% vs {m.paper_bn:.1f}%): {_verdict(m.reproduced)}.")


def _order(errors) -> str:
    return " < ".join(f"{md_inline(n.upper())} {e:.1f}%" for n, e in sorted(errors.items(), key=lambda kv: kv[1]))


def _norm_order(m: NormOrder) -> str:
    parts, verdict = [], ""
    for r in m.rankings:
        parts.append(f"{r.key}: {_order(r.errors)}")
        same = r.agree == r.pairs
        if r.key == "paper":
            verdict = ("the paper's order is reproduced here" if same
                       else f"the order differs from the paper's ({r.agree} of {r.pairs} pairs agree)")
        else:
            verdict += (f"; the {r.key}'s order is reproduced" if same
                        else f"; it differs from the {r.key}'s ({r.agree} of {r.pairs} pairs agree)")
    refs = f" ({'; '.join(parts)})" if parts else " (no reference numbers at this batch)"
    return f"At batch {m.batch} the measured order is {_order(m.errors)}{refs}" + (f": {verdict}." if verdict
                                                                                    else ".")


def _gn_gap(m: GnGap) -> str:
    verdict = (f"the paper's gap is reproduced here (within {TIE} points)" if m.reproduced
               else f"the paper's gap is not reproduced here ({abs(m.gap - m.paper_gap):.1f} points off)")
    return (f"At batch {m.batch} {_versus(m.gap, 'GN', 'BN')} in val error (paper: GN is {abs(m.paper_gap):.1f} "
            f"points {'higher' if m.paper_gap >= 0 else 'lower'} than BN): {verdict}.")


def _train_gap(m: TrainGap) -> str:
    return (f"At batch {m.batch} GN's final training error is {m.gn:.1f}% and BN's {m.bn:.1f}%: "
            f"{_versus(m.gn - m.bn, 'GN', 'BN')} (paper, Fig. 4: GN's training error is below BN's): "
            f"{_verdict(m.reproduced)}.")


def _setting(kind: str, value: int) -> str:
    return f"G={value}" if kind == "groups" else f"{value} channel{'' if value == 1 else 's'}/group"


def _groups(m: GroupSweep) -> str:
    kind, errs, best, worst = m.kind, m.errors, m.best, m.worst
    name = "group counts G" if kind == "groups" else "channels per group"
    text = (f"Over {name} {', '.join(str(k) for k in sorted(errs, reverse=True))}, {_setting(kind, best)} gave the "
            f"lowest error ({errs[best]:.1f}%) and {_setting(kind, worst)} the highest ({errs[worst]:.1f}%), "
            f"{errs[worst] - errs[best]:.1f} points apart")
    if m.reproduced is not None:
        paper = m.paper
        p_best, p_worst = min(paper, key=paper.get), max(paper, key=paper.get)
        text += (f" (paper at batch 32 over the same settings: best {_setting(kind, p_best)} {paper[p_best]:.1f}%, "
                 f"worst {_setting(kind, p_worst)} {paper[p_worst]:.1f}%, {paper[p_worst] - paper[p_best]:.1f} "
                 f"apart)")
        worst_text = (f"the paper's worst setting ({_setting(kind, p_worst)}) is also the worst here" if m.reproduced
                      else f"the paper's worst setting ({_setting(kind, p_worst)}) is not the worst here "
                           f"({errs[p_worst] - errs[best]:.1f} points above this sweep's best)")
        best_text = (f"its best ({_setting(kind, p_best)}) is also the best here" if best == p_best else
                     f"its best ({_setting(kind, p_best)}) is {errs[p_best] - errs[best]:.1f} points above this "
                     f"sweep's best")
        text += f": {worst_text}, and {best_text}"
    return text + "."


WORDING = {BatchSpread: ("batch_spread", _spread), SmallBatch: ("small_batch", _small),
           NormOrder: ("norm_order", _norm_order), GnGap: ("gn_vs_bn", _gn_gap), TrainGap: ("train_err", _train_gap)}


def word(m: Measure) -> Claim:
    topic, sentence = (m.kind, _groups) if isinstance(m, GroupSweep) else WORDING[type(m)]
    return Claim(m.study, topic, sentence(m) + _caveat(m.caveat), m.reproduced, m.caveat.provisional)


def claims(results: pd.DataFrame, studies: list[Study]) -> list[Claim]:
    """Every paper claim the sweep has data for, study by study, each sentence with its measured figures."""
    return [word(m) for m in measure(results, studies)]
