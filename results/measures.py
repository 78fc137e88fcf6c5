"""The paper's claims checked against a sweep, as small numeric records: what was measured, what the reference
says, and the verdict (``results.verdicts``) with its interval (``results.uncertainty``). ``results.claims`` words
them; nothing here is prose but the claims' own one-line statements."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from results.paper import PAPER, TABLE2, references_for
from results.schema import ENDED
from results.frames import runs_of
from results.studies import Study
from results.uncertainty import Interval, Runs, contrast
from results.verdicts import STABLE_WITHIN, Progress, Verdict, conjunction, direction, no_change


@dataclass(frozen=True)
class Config:
    """One configuration of a study as the verdicts see it: its runs (the completed ones once all have ended; every
    run with a number while some are still going, for the provisional figures) and how far its trials are."""

    label: str
    val: Runs
    train: Runs
    progress: Progress


def _progress(rows: pd.DataFrame, label: str) -> Progress:
    waiting = rows[~rows["status"].isin(ENDED)]
    completed = rows[rows["status"] == "completed"]
    going = pd.concat([completed, waiting])
    missing = (label,) if waiting.empty and not rows["complete"].any() else ()
    return Progress(int(going["epochs"].min()) if len(going) else None, len(waiting), missing)


def config(rows: pd.DataFrame, label: str, images: Mapping[str, int]) -> Config:
    """The configuration whose trials are ``rows`` (of ``frames.trial_results``); ``images``: the dataset's image
    counts by split (empty where unknown)."""
    progress = _progress(rows, label)
    usable = rows if progress.too_early else rows[rows["complete"]]
    return Config(label, runs_of(usable, "val", images.get("val")), runs_of(usable, "train", images.get("train")),
                  progress)


def together(*configs: Config) -> Progress:
    """The progress of a claim over ``configs``: its fewest epochs, trials waiting and configurations missing."""
    epochs = [c.progress.epochs for c in configs if c.progress.epochs is not None]
    return Progress(min(epochs) if epochs else None, sum(c.progress.waiting for c in configs),
                    tuple(m for c in configs for m in c.progress.missing))


def diff(a: Config, b: Config, column: str = "val") -> Interval | None:
    """The interval of a's error minus b's."""
    return contrast([(getattr(a, column), 1.0), (getattr(b, column), -1.0)])


@dataclass(frozen=True)
class BatchSpread:
    """(a) BN's error rises as the batch shrinks, and more than GN's: from the largest to the smallest batch both
    were measured at."""

    study: str
    batches: tuple[int, ...]  # ascending, those with both GN and BN
    gn_spread: float  # error at the smallest batch minus at the largest (NaN while one is not measured)
    bn_spread: float
    verdict: Verdict


@dataclass(frozen=True)
class GnFlat:
    """(a) GN's error does not change with the batch: each batch against the largest, within a tolerance."""

    study: str
    batches: tuple[int, ...]
    changes: Mapping[int, float]  # GN's error at each smaller batch minus at the largest (NaN: not measured yet)
    verdict: Verdict


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
    verdict: Verdict


@dataclass(frozen=True)
class Ranking:
    """One reference's errors for the measured norms, and how many norm pairs it orders as the measured means do."""

    key: str
    errors: Mapping[str, float]
    agree: int
    pairs: int


@dataclass(frozen=True)
class NormOrder:
    """(c) the paper's order of the norms at one batch, as the conjunction of its adjacent pairs; the other
    references' orders beside it, compared by their means only."""

    study: str
    batch: int
    errors: Mapping[str, float]
    order: tuple[str, ...]  # the paper's, lowest error first
    rankings: tuple[Ranking, ...]
    verdict: Verdict


@dataclass(frozen=True)
class GnGap:
    """(c) GN's val error minus BN's at one batch: the paper finds them comparable (GN 0.5 points higher)."""

    study: str
    batch: int
    gap: float
    paper_gap: float
    verdict: Verdict


@dataclass(frozen=True)
class TrainGap:
    """(c) GN's and BN's final training errors (Fig. 4: GN's is lower)."""

    study: str
    batch: int
    gn: float
    bn: float
    verdict: Verdict


@dataclass(frozen=True)
class GroupSweep:
    """(d) the paper's worst group count (or channels per group) against every other setting measured."""

    study: str
    kind: str  # groups or channels_per_group
    errors: Mapping[int, float]
    best: int
    worst: int
    paper: Mapping[int, float]  # Table 3 at the settings measured
    verdict: Verdict


Measure = BatchSpread | GnFlat | SmallBatch | NormOrder | GnGap | TrainGap | GroupSweep


def _configs(table: pd.DataFrame, by: str, images: Mapping[str, int], label) -> dict[int, Config]:
    rows = table.dropna(subset=[by])
    return {int(v): config(g, label(int(v)), images) for v, g in rows.groupby(rows[by].astype(int), sort=True)}


def batch_measures(study: Study, table: pd.DataFrame, images: Mapping[str, int]) -> list[Measure]:
    bn = _configs(table[table["norm"] == "bn"], "batch_size", images, lambda b: f"BN b{b}")
    gn = _configs(table[table["norm"] == "gn"], "batch_size", images, lambda b: f"GN b{b}")
    common = sorted(set(bn) & set(gn))
    if len(common) < 2:
        return []
    small, large = common[0], common[-1]
    p_gn, p_bn = TABLE2["gn"], TABLE2["bn"]
    in_paper = small in p_bn and large in p_bn
    bn_rise = contrast([(bn[small].val, 1.0), (bn[large].val, -1.0)])
    more = contrast([(bn[small].val, 1.0), (bn[large].val, -1.0), (gn[small].val, -1.0), (gn[large].val, 1.0)])
    everything = together(*(bn[b] for b in common), *(gn[b] for b in common))
    rises = direction(f"BN's error rises from batch {large} to {small}", f"BN b{small} - BN b{large}", bn_rise, +1,
                      p_bn[small] - p_bn[large] if in_paper else None, together(bn[small], bn[large]))
    grows = direction(f"BN's error grows more than GN's from batch {large} to {small}",
                      f"(BN b{small} - BN b{large}) - (GN b{small} - GN b{large})", more, +1,
                      (p_bn[small] - p_bn[large]) - (p_gn[small] - p_gn[large]) if in_paper else None, everything)
    verdict = conjunction(f"BN's error rises as the batch shrinks from {large} to {small}, and more than GN's",
                          [rises, grows])
    gn_means = {b: gn[b].val.mean for b in common}
    spread = BatchSpread(study.name, tuple(common), gn_means[small] - gn_means[large],
                         bn[small].val.mean - bn[large].val.mean, verdict)
    steady = [no_change(f"GN's error at batch {b} is within {STABLE_WITHIN:g} points of its error at batch {large}",
                        f"GN b{b} - GN b{large}", diff(gn[b], gn[large]),
                        p_gn[b] - p_gn[large] if b in p_gn and large in p_gn else None, together(gn[b], gn[large]))
              for b in common[:-1]]
    flat = GnFlat(study.name, tuple(common), {b: gn_means[b] - gn_means[large] for b in common[:-1]},
                  every(f"GN's error stays within {STABLE_WITHIN:g} points from batch {large} down to {small}", steady))
    p_batch = small if small in p_gn else min(p_gn)
    paper_gap = p_gn[p_batch] - p_bn[p_batch]
    better = "lower" if paper_gap < 0 else "higher"
    small_v = direction(f"GN's error is {better} than BN's at batch {small}", f"GN b{small} - BN b{small}",
                        diff(gn[small], bn[small]), -1 if paper_gap < 0 else +1,
                        paper_gap if p_batch == small else None, together(gn[small], bn[small]))
    return [spread, flat, SmallBatch(study.name, small, gn_means[small], bn[small].val.mean, p_batch, p_gn[p_batch],
                                     p_bn[p_batch], small_v)]


def every(claim: str, parts: list[Verdict]) -> Verdict:
    """The claim that all of ``parts`` hold: their conjunction, or the one part under the claim's name."""
    if len(parts) > 1:
        return conjunction(claim, parts)
    v = parts[0]
    return Verdict(claim, v.quantity, v.verdict, v.interval, v.paper, v.seeds, v.epochs, v.would_decide,
                   v.tolerance)


def _pairs_agree(measured: Mapping[str, float], reference: Mapping[str, float]) -> tuple[int, int]:
    names = sorted(set(measured) & set(reference))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    agree = sum((measured[a] < measured[b]) == (reference[a] < reference[b]) and measured[a] != measured[b]
                for a, b in pairs)
    return agree, len(pairs)


def norm_measures(study: Study, table: pd.DataFrame, images: Mapping[str, int]) -> list[Measure]:
    configs = {n: config(g, n.upper(), images) for n, g in table.groupby("norm", sort=False)}
    measured = {n: c.val.mean for n, c in configs.items() if c.val.seeds}
    batch = study.batch_size or int(table["batch_size"].max())
    paper = {n: v for n in configs if (v := PAPER.error("norms", n, batch)) is not None}
    if len(paper) < 2:
        return []
    order = sorted(paper, key=paper.get)
    pairs = [direction(f"{a.upper()}'s error is below {b.upper()}'s at batch {batch}",
                       f"{b.upper()} - {a.upper()} at batch {batch}", diff(configs[b], configs[a]), +1,
                       paper[b] - paper[a], together(configs[a], configs[b]))
             for a, b in zip(order, order[1:])]
    verdict = every(f"the order {' < '.join(n.upper() for n in order)} at batch {batch}", pairs)
    rankings = []
    for ref in [PAPER] + [r for r in references_for(study.model) if r.key == "notebook"]:
        numbers = {n: v for n in measured if (v := ref.error("norms", n, batch)) is not None}
        if len(numbers) >= 2:
            rankings.append(Ranking(ref.key, numbers, *_pairs_agree(measured, numbers)))
    out: list[Measure] = [NormOrder(study.name, batch, measured, tuple(order), tuple(rankings), verdict)]
    if "bn" in configs and "gn" in configs:
        bn, gn = configs["bn"], configs["gn"]
        paper_gap = paper["gn"] - paper["bn"] if "gn" in paper and "bn" in paper else None
        if paper_gap is not None:
            gap = no_change(f"GN's error is within {STABLE_WITHIN:g} points of BN's at batch {batch}",
                            f"GN - BN at batch {batch}", diff(gn, bn), paper_gap, together(gn, bn))
            out.append(GnGap(study.name, batch, gn.val.mean - bn.val.mean, paper_gap, gap))
        if gn.train.seeds and bn.train.seeds:
            train = direction(f"GN's training error is below BN's at batch {batch}",
                              f"GN - BN training error at batch {batch}", diff(gn, bn, "train"), -1, None,
                              together(gn, bn))
            out.append(TrainGap(study.name, batch, gn.train.mean, bn.train.mean, train))
    return out


def _setting(kind: str, value: int) -> str:
    return f"G={value}" if kind == "groups" else f"{value} channel{'' if value == 1 else 's'}/group"


def group_measures(study: Study, table: pd.DataFrame, images: Mapping[str, int]) -> list[Measure]:
    kind = study.kind
    configs = _configs(table[table["norm"] == "gn"], kind, images, lambda v: _setting(kind, v))
    measured = {k: c.val.mean for k, c in configs.items() if c.val.seeds}
    ref = PAPER.groups if kind == "groups" else PAPER.channels_per_group
    paper = {k: ref[k] for k in configs if k in ref}
    if len(measured) < 2 or len(paper) < 2:
        return []
    worst = max(paper, key=paper.get)
    parts = [direction(f"{_setting(kind, worst)} has a higher error than {_setting(kind, k)}",
                       f"{_setting(kind, worst)} - {_setting(kind, k)}", diff(configs[worst], configs[k]), +1,
                       paper[worst] - paper[k] if k in paper else None, together(configs[worst], configs[k]))
             for k in sorted(configs, reverse=True) if k != worst]
    verdict = every(f"{_setting(kind, worst)} has the highest error of the settings measured", parts)
    return [GroupSweep(study.name, kind, measured, min(measured, key=measured.get), max(measured, key=measured.get),
                       paper, verdict)]


MEASURES = {"batch_size": batch_measures, "norms": norm_measures, "groups": group_measures,
            "channels_per_group": group_measures}


def measure(results: pd.DataFrame, studies: list[Study], images: Mapping[str, int] | None = None) -> list[Measure]:
    """Every paper claim the sweep has data for, study by study, as numbers with verdicts; ``images``: the
    dataset's image counts by split as recorded at launch (``SweepRecord.images``; empty or None where unknown)."""
    out: list[Measure] = []
    for study in studies:
        if study.kind in MEASURES:
            rows = results[results["trial_key"].isin(study.trial_keys)]
            out += MEASURES[study.kind](study, rows, images or {})
    return out
