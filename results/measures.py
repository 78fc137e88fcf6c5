"""The paper's claims checked against a sweep, as small numeric records: what was measured, what the reference
says, and whether the direction agrees. ``results.claims`` words them; nothing here is prose."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from results.frames import study_table
from results.paper import PAPER, TABLE2, references_for
from results.studies import Study

TIE = 0.5  # points: measured differences this small are called a tie, not a direction


@dataclass(frozen=True)
class Caveat:
    """How far to trust a claim: seeds averaged, and configurations whose trials are not complete."""

    seeds: int
    incomplete: int
    configurations: int

    @property
    def provisional(self) -> bool:
        return self.incomplete > 0


@dataclass(frozen=True)
class BatchSpread:
    """(a) GN's and BN's error change from the largest to the smallest batch both were measured at."""

    study: str
    batches: tuple[int, ...]  # ascending, those with both GN and BN measured
    gn_spread: float  # error at the smallest batch minus at the largest
    bn_spread: float
    gn_range: float  # max minus min of GN's errors over the batches
    bn_rises: bool
    reproduced: bool
    caveat: Caveat


@dataclass(frozen=True)
class SmallBatch:
    """(b) GN against BN at the smallest batch, beside the paper at that batch (or its smallest)."""

    study: str
    batch: int
    gn: float
    bn: float
    paper_batch: int
    paper_gn: float
    paper_bn: float
    reproduced: bool
    caveat: Caveat


@dataclass(frozen=True)
class Ranking:
    """One reference's errors for the measured norms, and how many norm pairs it orders as measured."""

    key: str
    errors: Mapping[str, float]
    agree: int
    pairs: int


@dataclass(frozen=True)
class NormOrder:
    """(c) the order of the norms at one batch against the references (the paper's decides ``reproduced``)."""

    study: str
    batch: int
    errors: Mapping[str, float]
    rankings: tuple[Ranking, ...]
    reproduced: bool | None
    caveat: Caveat


@dataclass(frozen=True)
class GnGap:
    """(c) GN's val error minus BN's at one batch, against the paper's gap."""

    study: str
    batch: int
    gap: float
    paper_gap: float
    reproduced: bool
    caveat: Caveat


@dataclass(frozen=True)
class TrainGap:
    """(c) GN's and BN's final training errors (Fig. 4: GN's is lower)."""

    study: str
    batch: int
    gn: float
    bn: float
    reproduced: bool
    caveat: Caveat


@dataclass(frozen=True)
class GroupSweep:
    """(d) the best and worst group count (or channels per group) against Table 3 over the same settings."""

    study: str
    kind: str  # groups or channels_per_group
    errors: Mapping[int, float]
    best: int
    worst: int
    paper: Mapping[int, float]  # Table 3 at the settings measured
    reproduced: bool | None
    caveat: Caveat


Measure = BatchSpread | SmallBatch | NormOrder | GnGap | TrainGap | GroupSweep


def direction(diff: float) -> str:
    diff = round(diff, 1)
    return "lower" if diff < -TIE else "higher" if diff > TIE else "tie"


def _caveat(table: pd.DataFrame) -> Caveat:
    return Caveat(int(table["n_seeds"].max()), int((~table["complete"]).sum()), len(table))


def _errors(table: pd.DataFrame, norm: str, by: str, column: str = "final_val_err") -> pd.Series:
    rows = table[table["norm"] == norm].dropna(subset=[column, by])
    return pd.Series(rows[column].to_numpy(dtype=float), index=rows[by].astype(int).to_numpy()).sort_index()


def batch_measures(study: Study, table: pd.DataFrame) -> list[Measure]:
    bn, gn = _errors(table, "bn", "batch_size"), _errors(table, "gn", "batch_size")
    common = sorted(set(bn.index) & set(gn.index))
    if len(common) < 2:
        return []
    caveat = _caveat(table[table["norm"].isin(["bn", "gn"]) & table["batch_size"].isin(common)])
    small, large = common[0], common[-1]
    gn_spread, bn_spread = gn[small] - gn[large], bn[small] - bn[large]
    bn_rises = round(bn_spread, 1) > TIE
    spread = BatchSpread(study.name, tuple(common), gn_spread, bn_spread, gn[common].max() - gn[common].min(),
                         bn_rises, bool(bn_rises and round(bn_spread - gn_spread, 1) > TIE), caveat)
    p_gn, p_bn = TABLE2["gn"], TABLE2["bn"]
    p_batch = small if small in p_gn else min(p_gn)
    ok = direction(gn[small] - bn[small]) == direction(p_gn[p_batch] - p_bn[p_batch])
    return [spread, SmallBatch(study.name, small, gn[small], bn[small], p_batch, p_gn[p_batch], p_bn[p_batch], ok,
                               caveat)]


def _pairs_agree(measured: Mapping[str, float], reference: Mapping[str, float]) -> tuple[int, int]:
    names = sorted(set(measured) & set(reference))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    agree = sum((measured[a] < measured[b]) == (reference[a] < reference[b]) and measured[a] != measured[b]
                for a, b in pairs)
    return agree, len(pairs)


def norm_measures(study: Study, table: pd.DataFrame) -> list[Measure]:
    rows = table.dropna(subset=["final_val_err"])
    measured = dict(zip(rows["norm"], rows["final_val_err"].astype(float)))
    if len(measured) < 2:
        return []
    caveat = _caveat(table)
    batch = study.batch_size or int(rows["batch_size"].max())
    rankings, ok = [], None
    for ref in [PAPER] + [r for r in references_for(study.model) if r.key == "notebook"]:
        numbers = {n: v for n in measured if (v := ref.error("norms", n, batch)) is not None}
        if len(numbers) < 2:
            continue
        agree, total = _pairs_agree(measured, numbers)
        rankings.append(Ranking(ref.key, numbers, agree, total))
        if ref is PAPER:
            ok = agree == total
    out: list[Measure] = [NormOrder(study.name, batch, measured, tuple(rankings), ok, caveat)]
    if "bn" in measured and "gn" in measured:
        paper = PAPER.error("norms", "gn", batch), PAPER.error("norms", "bn", batch)
        if None not in paper:
            gap, paper_gap = measured["gn"] - measured["bn"], paper[0] - paper[1]
            out.append(GnGap(study.name, batch, gap, paper_gap, bool(round(abs(gap - paper_gap), 1) <= TIE), caveat))
        train = dict(zip(rows["norm"], rows["final_train_err"].astype(float)))
        if not (pd.isna(train["gn"]) or pd.isna(train["bn"])):
            out.append(TrainGap(study.name, batch, train["gn"], train["bn"],
                                bool(round(train["gn"] - train["bn"], 1) < -TIE), caveat))
    return out


def group_measures(study: Study, table: pd.DataFrame) -> list[Measure]:
    errs = _errors(table, "gn", study.kind)
    if len(errs) < 2:
        return []
    ref = PAPER.groups if study.kind == "groups" else PAPER.channels_per_group
    paper = {k: ref[k] for k in errs.index if k in ref}
    best, worst = int(errs.idxmin()), int(errs.idxmax())
    ok = bool(worst == max(paper, key=paper.get)) if len(paper) >= 2 else None
    return [GroupSweep(study.name, study.kind, {int(k): float(v) for k, v in errs.items()}, best, worst, paper, ok,
                       _caveat(table[table["norm"] == "gn"]))]


MEASURES = {"batch_size": batch_measures, "norms": norm_measures, "groups": group_measures,
            "channels_per_group": group_measures}


def measure(results: pd.DataFrame, studies: list[Study]) -> list[Measure]:
    """Every paper claim the sweep has data for, study by study, as numbers."""
    out: list[Measure] = []
    for study in studies:
        if study.kind in MEASURES:
            out += MEASURES[study.kind](study, study_table(results, study))
    return out
