"""From a sweep's epochs and trials tables to the paper's tables and claims, each said as measured.

Everything here takes DataFrames (as read from ``epochs/`` and ``trials/``), so it works on a sweep that is still
running and is testable without files. A trial's error is the median of its last ``FINAL_EPOCHS`` epochs' val_err,
computed from the epochs so running trials count; trials that are not completed or have fewer epochs are flagged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from results.paper import NORM_ORDER, PAPER, TABLE2, references_for
from results.schema import FINAL_EPOCHS

DIMS = ("norm", "batch_size", "groups", "channels_per_group")
CONFIG = ("model",) + DIMS
INT_COLUMNS = ("batch_size", "groups", "channels_per_group", "seed")
KINDS = ("norms", "batch_size", "groups", "channels_per_group", "single")
TIE = 0.5  # points: measured differences this small are called a tie, not a direction


@dataclass(frozen=True)
class Study:
    """A named study of the spec and what it compares, found from what varies among its trials."""

    name: str
    kind: str  # one of KINDS
    dims: tuple[str, ...]  # the config columns that vary among its trials
    trial_keys: tuple[str, ...]
    model: str
    batch_size: int | None  # the study's batch when it has one


@dataclass(frozen=True)
class Claim:
    """One paper claim checked against the sweep: ``reproduced`` is None where the data cannot say."""

    study: str
    topic: str
    text: str
    reproduced: bool | None
    provisional: bool


def _ints(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in INT_COLUMNS:
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def _median(values: pd.Series) -> float:
    """The median as the trials table computes it: a NaN among the values (a diverged epoch) makes it NaN."""
    return float(values.median(skipna=False)) if len(values) else math.nan


def trial_results(epochs: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial found in either table: config, status, epochs done, final val/train error (median of the
    last FINAL_EPOCHS epochs), ``complete`` (completed with at least FINAL_EPOCHS epochs), ``flag`` (why not),
    error message and studies. Trials without a trials row get status ``unknown``."""
    ep = _ints(epochs).drop_duplicates(["trial_key", "epoch"]).sort_values(["trial_key", "epoch"])
    last = ep.groupby("trial_key", sort=True).tail(FINAL_EPOCHS).groupby("trial_key")
    measured = pd.DataFrame({
        "epochs": ep.groupby("trial_key").size(),
        "final_val_err": last["val_err"].agg(_median),
        "final_train_err": last["train_err"].agg(_median),
        "last_val_err": ep.groupby("trial_key")["val_err"].last(),
    })
    config_cols = list(CONFIG) + ["seed"]
    configs = ep.groupby("trial_key")[config_cols].first()
    if trials is not None and len(trials):
        tr = _ints(trials).drop_duplicates("trial_key", keep="last").set_index("trial_key")
        configs = pd.concat([tr[config_cols], configs[~configs.index.isin(tr.index)]])
        extra = tr[["status", "error", "studies"]]
    else:
        extra = pd.DataFrame(columns=["status", "error", "studies"], index=pd.Index([], name="trial_key"))
    out = configs.join(measured, how="left").join(extra, how="left")
    out["epochs"] = out["epochs"].fillna(0).astype(int)
    out["status"] = out["status"].fillna("unknown").astype(object)
    out["studies"] = [_names(s) for s in out["studies"]]
    out["error"] = out["error"].astype(object).where(out["error"].notna(), None)
    out["complete"] = (out["status"] == "completed") & (out["epochs"] >= FINAL_EPOCHS)
    out["flag"] = [_flag(s, n) for s, n in zip(out["status"], out["epochs"])]
    return _ints(out.reset_index().rename(columns={"index": "trial_key"}))


def _names(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]


def _flag(status: str, epochs: int) -> str:
    reasons = []
    if status != "completed":
        reasons.append(status if status != "unknown" else "no trials row")
    if epochs == 0:
        reasons.append("no epochs")
    elif epochs < FINAL_EPOCHS:
        reasons.append(f"only {epochs} epochs (< {FINAL_EPOCHS})")
    return ", ".join(reasons)


def find_studies(results: pd.DataFrame) -> list[Study]:
    """The sweep's studies, each with the kind of comparison it makes; one study ``all`` when no trial names one."""
    members: dict[str, list[str]] = {}
    for key, studies in zip(results["trial_key"], results["studies"]):
        for name in studies:
            members.setdefault(name, []).append(key)
    if not members:
        members = {"all": list(results["trial_key"])}
    out = []
    for name, keys in members.items():
        rows = results[results["trial_key"].isin(keys)]
        dims = tuple(d for d in DIMS if rows[d].nunique(dropna=True) > 1)
        kind = next((k for k in ("groups", "channels_per_group", "batch_size") if k in dims),
                    "norms" if "norm" in dims else "single")
        batches = rows["batch_size"].dropna().unique()
        out.append(Study(name, kind, dims, tuple(sorted(keys)), str(rows["model"].mode().iloc[0]),
                         int(batches[0]) if len(batches) == 1 else None))
    return sorted(out, key=lambda s: (KINDS.index(s.kind), s.name))


def _sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame({
        "n": df["norm"].map(lambda n: NORM_ORDER.index(n) if n in NORM_ORDER else len(NORM_ORDER)),
        "b": -df["batch_size"].astype("Float64").fillna(0),
        "g": -df["groups"].astype("Float64").fillna(0),
        "c": -df["channels_per_group"].astype("Float64").fillna(0),
    }, index=df.index)
    return df.loc[keys.sort_values(["n", "b", "g", "c"]).index].reset_index(drop=True)


def study_table(results: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per configuration of the study: its varying columns, mean final error over seeds with min, max
    and std, seeds, fewest epochs, statuses, whether all its trials are complete, and each applicable
    reference's number and the difference (measured minus reference)."""
    rows = results[results["trial_key"].isin(study.trial_keys)]
    group_cols = list(CONFIG)
    table = []
    for config, g in rows.groupby(group_cols, dropna=False, sort=False):
        errs = g["final_val_err"].dropna()
        statuses = g["status"].value_counts()
        table.append({
            **dict(zip(group_cols, config)),
            "final_val_err": errs.mean() if len(errs) else math.nan,
            "err_min": errs.min() if len(errs) else math.nan,
            "err_max": errs.max() if len(errs) else math.nan,
            "err_std": errs.std() if len(errs) > 1 else math.nan,
            "final_train_err": g["final_train_err"].mean(),
            "n_seeds": len(g),
            "epochs": int(g["epochs"].min()),
            "status": ", ".join(s if n == 1 else f"{s} x{n}" for s, n in statuses.items()),
            "complete": bool(g["complete"].all()),
        })
    df = _sort_rows(_ints(pd.DataFrame(table)))
    for ref in references_for(study.model):
        values = [ref.error(study.kind, r.norm, _opt(r.batch_size), _opt(r.groups), _opt(r.channels_per_group))
                  for r in df.itertuples()]
        if any(v is not None for v in values):
            df[ref.key] = pd.Series([math.nan if v is None else v for v in values], dtype=float)
            df[f"{ref.key}_diff"] = df["final_val_err"] - df[ref.key]
    return df


def _opt(value) -> int | None:
    return None if pd.isna(value) else int(value)


DIM_HEADERS = {"norm": "norm", "batch_size": "batch", "groups": "groups G", "channels_per_group": "channels/group"}


def table_markdown(table: pd.DataFrame, study: Study) -> str:
    """The study table as markdown: the varying columns, error (mean over seeds, min-max when several), the
    references and differences, seeds, epochs and status."""
    dims = list(study.dims) or ["norm"]
    several = table["n_seeds"].max() > 1
    refs = [r for r in references_for(study.model) if r.key in table]
    header = [DIM_HEADERS[d] for d in dims] + ["val err %"]
    header += ["min-max %", "seeds"] if several else []
    for ref in refs:  # another model or dataset than the reference's: its numbers give direction, not a diff
        header += [f"{ref.label} %"] + ([] if ref.direction_only else [f"diff vs {ref.key}"])
    header += ["epochs", "status"]
    body = []
    for r in table.itertuples():
        row = [r.norm.upper() if d == "norm" else _fmt(getattr(r, d)) for d in dims]
        row.append(_fmt(r.final_val_err) + ("" if r.complete else " *"))
        if several:
            row += [f"{_fmt(r.err_min)}-{_fmt(r.err_max)}" if r.n_seeds > 1 else "", str(r.n_seeds)]
        for ref in refs:
            row += [_fmt(getattr(r, ref.key))] + ([] if ref.direction_only else [_fmt(getattr(r, f"{ref.key}_diff"),
                                                                                        signed=True)])
        row += [str(r.epochs), r.status]
        body.append(row)
    return markdown_table(header, body)


def _fmt(value, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "-"
    if isinstance(value, float):
        return f"{value:+.1f}" if signed else f"{value:.1f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table (no dependency on ``tabulate``); cells are given as strings."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])


def incomplete_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Trials that are failed, diverged, running, pending, unknown or short of FINAL_EPOCHS epochs."""
    cols = ["trial_key", "status", "epochs", "final_val_err", "flag", "error"]
    return results.loc[~results["complete"], cols].reset_index(drop=True)


def epoch_curves(epochs: pd.DataFrame, trial_keys) -> pd.DataFrame:
    """Train and val error per configuration and epoch, mean, min and max over seeds (for the figures)."""
    ep = _ints(epochs[epochs["trial_key"].isin(list(trial_keys))]).drop_duplicates(["trial_key", "epoch"])
    g = ep.groupby(list(DIMS) + ["epoch"], dropna=False)
    out = g.agg(val_mean=("val_err", "mean"), val_min=("val_err", "min"), val_max=("val_err", "max"),
                train_mean=("train_err", "mean"), train_min=("train_err", "min"),
                train_max=("train_err", "max"), n=("trial_key", "nunique"))
    return _ints(out.reset_index())


def _moved(points: float) -> str:
    if points > 0.05:
        return f"rose {points:.1f} points"
    if points < -0.05:
        return f"fell {-points:.1f} points"
    return "did not change (0.0 points)"


def _direction(diff: float) -> str:
    diff = round(diff, 1)
    return "lower" if diff < -TIE else "higher" if diff > TIE else "tie"


def _versus(diff: float, a: str, b: str) -> str:
    if abs(round(diff, 1)) <= TIE:
        if round(diff, 1) == 0:
            return f"{a} and {b} are equal to 0.1 points"
        return f"{a} is within {TIE} points of {b} ({abs(diff):.1f} points {'higher' if diff > 0 else 'lower'})"
    return f"{a} is {abs(diff):.1f} points {'lower' if diff < 0 else 'higher'} than {b}"


def _verdict(ok: bool) -> str:
    return "the paper's direction is reproduced here" if ok else "the paper's direction is not reproduced here"


def _caveats(table: pd.DataFrame) -> tuple[str, bool]:
    incomplete = int((~table["complete"]).sum())
    notes = []
    if table["n_seeds"].max() > 1:
        notes.append(f"Figures are means over up to {int(table['n_seeds'].max())} seeds.")
    if incomplete:
        notes.append(f"Provisional: {incomplete} of these {len(table)} configurations have trials that are not "
                     f"completed with {FINAL_EPOCHS}+ epochs.")
    return (" " + " ".join(notes) if notes else ""), bool(incomplete)


def _errors(table: pd.DataFrame, norm: str, by: str, column: str = "final_val_err") -> pd.Series:
    rows = table[table["norm"] == norm].dropna(subset=[column, by])
    return pd.Series(rows[column].to_numpy(dtype=float), index=rows[by].astype(int).to_numpy()).sort_index()


def batch_claims(study: Study, table: pd.DataFrame) -> list[Claim]:
    """(a) how much GN's and BN's errors grow from the largest to the smallest batch, (b) GN against BN at the
    smallest batch, against Table 2; over the batches where both have an error."""
    bn, gn = _errors(table, "bn", "batch_size"), _errors(table, "gn", "batch_size")
    common = sorted(set(bn.index) & set(gn.index))
    if len(common) < 2:
        return []
    caveat, provisional = _caveats(table[table["norm"].isin(["bn", "gn"]) & table["batch_size"].isin(common)])
    small, large = common[0], common[-1]
    p_gn, p_bn = TABLE2["gn"], TABLE2["bn"]

    gn_spread, bn_spread = gn[small] - gn[large], bn[small] - bn[large]
    paper = (f"in the paper (ResNet-50, ImageNet) GN's changed by {p_gn[2] - p_gn[32]:+.1f} points from batch 32 "
             f"to 2 and BN's rose {p_bn[2] - p_bn[32]:.1f}")
    if small in p_gn and large in p_gn and (large, small) != (32, 2):
        paper += (f" (from {large} to {small}: GN {p_gn[small] - p_gn[large]:+.1f}, BN "
                  f"{p_bn[small] - p_bn[large]:+.1f})")
    gn_range = gn[common].max() - gn[common].min()
    bn_rises = round(bn_spread, 1) > TIE
    ok = bool(bn_rises and round(bn_spread - gn_spread, 1) > TIE)
    if ok:
        verdict = "the paper's direction is reproduced here: BN's error grows more than GN's as the batch shrinks"
        if round(gn_range, 1) > max(bn_spread, TIE):
            verdict += (f"; but GN's error is not flat across batches as in the paper: it varied by {gn_range:.1f} "
                        f"points, more than BN's rose")
    elif not bn_rises:
        verdict = "the paper's direction is not reproduced here: BN's error did not rise as the batch shrank"
    else:
        verdict = "the paper's direction is not reproduced here: GN's error grew as much as BN's"
    spread = Claim(study.name, "batch_spread",
                   f"Spread is the error at the smallest batch minus the error at the largest. In this sweep GN's "
                   f"error {_moved(gn_spread)} from batch {large} to {small} and BN's {_moved(bn_spread)}; {paper}. "
                   f"Across batches {', '.join(str(b) for b in reversed(common))} GN's error varied by "
                   f"{gn_range:.1f} points (paper: {max(p_gn.values()) - min(p_gn.values()):.1f} across 32 to 2): "
                   f"{verdict}.{caveat}", ok, provisional)

    diff = gn[small] - bn[small]
    p_batch = small if small in p_gn else min(p_gn)
    p_diff = p_gn[p_batch] - p_bn[p_batch]
    where = f"paper at batch {p_batch}" if p_batch == small else f"paper has no batch {small}; at batch {p_batch}"
    ok = _direction(diff) == _direction(p_diff)
    at_small = Claim(study.name, "small_batch",
                     f"At batch {small}, the smallest with both measured, GN's error is {gn[small]:.1f}% and "
                     f"BN's {bn[small]:.1f}%: {_versus(diff, 'GN', 'BN')} ({where}: {_versus(p_diff, 'GN', 'BN')}"
                     f", {p_gn[p_batch]:.1f}% vs {p_bn[p_batch]:.1f}%): {_verdict(ok)}.{caveat}", ok, provisional)
    return [spread, at_small]


def _order(errors: dict[str, float]) -> str:
    return " < ".join(f"{n.upper()} {e:.1f}%" for n, e in sorted(errors.items(), key=lambda kv: kv[1]))


def _pairs_agree(measured: dict[str, float], reference: dict[str, float]) -> tuple[int, int]:
    names = sorted(set(measured) & set(reference))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    agree = sum((measured[a] < measured[b]) == (reference[a] < reference[b]) and measured[a] != measured[b]
                for a, b in pairs)
    return agree, len(pairs)


def norm_claims(study: Study, table: pd.DataFrame) -> list[Claim]:
    """(c) the order of the norms at the study's batch against Table 1 (and the notebook's for seed_cnn), and
    GN's training error against BN's (Fig. 4)."""
    rows = table.dropna(subset=["final_val_err"])
    measured = dict(zip(rows["norm"], rows["final_val_err"].astype(float)))
    if len(measured) < 2:
        return []
    caveat, provisional = _caveats(table)
    batch = study.batch_size or int(rows["batch_size"].max())
    refs = [PAPER] + ([r for r in references_for(study.model) if r.key == "notebook"])
    out = []
    parts, verdict, ok = [], "", None
    for ref in refs:
        numbers = {n: ref.error("norms", n, batch) for n in measured}
        numbers = {n: v for n, v in numbers.items() if v is not None}
        if len(numbers) < 2:
            continue
        agree, total = _pairs_agree(measured, numbers)
        parts.append(f"{ref.key}: {_order(numbers)}")
        same = agree == total
        if ref is PAPER:
            ok = same
            verdict = ("the paper's order is reproduced here" if same
                       else f"the order differs from the paper's ({agree} of {total} pairs agree)")
        else:
            verdict += (f"; the {ref.key}'s order is reproduced" if same
                        else f"; it differs from the {ref.key}'s ({agree} of {total} pairs agree)")
    refs_text = f" ({'; '.join(parts)})" if parts else " (no reference numbers at this batch)"
    text = f"At batch {batch} the measured order is {_order(measured)}{refs_text}"
    text += f": {verdict}.{caveat}" if verdict else f".{caveat}"
    out.append(Claim(study.name, "norm_order", text, ok, provisional))
    if "bn" in measured and "gn" in measured:
        diff = measured["gn"] - measured["bn"]
        p = PAPER.error("norms", "gn", batch), PAPER.error("norms", "bn", batch)
        if None not in p:
            gap = p[0] - p[1]
            same = bool(round(abs(diff - gap), 1) <= TIE)
            verdict = (f"the paper's gap is reproduced here (within {TIE} points)" if same
                       else f"the paper's gap is not reproduced here ({abs(diff - gap):.1f} points off)")
            text = (f"At batch {batch} {_versus(diff, 'GN', 'BN')} in val error (paper: GN is {abs(gap):.1f} "
                    f"points {'higher' if gap >= 0 else 'lower'} than BN): {verdict}.{caveat}")
            out.append(Claim(study.name, "gn_vs_bn", text, same, provisional))
        train = dict(zip(rows["norm"], rows["final_train_err"].astype(float)))
        if not (math.isnan(train["gn"]) or math.isnan(train["bn"])):
            d = train["gn"] - train["bn"]
            same = bool(round(d, 1) < -TIE)
            text = (f"At batch {batch} GN's final training error is {train['gn']:.1f}% and BN's "
                    f"{train['bn']:.1f}%: {_versus(d, 'GN', 'BN')} (paper, Fig. 4: GN's training error is "
                    f"below BN's): {_verdict(same)}.{caveat}")
            out.append(Claim(study.name, "train_err", text, same, provisional))
    return out


def _setting(kind: str, value: int) -> str:
    return f"G={value}" if kind == "groups" else f"{value} channel{'' if value == 1 else 's'}/group"


def group_claims(study: Study, table: pd.DataFrame) -> list[Claim]:
    """(d) the best and worst group count, or channels per group, against Table 3."""
    kind = study.kind
    errs = _errors(table, "gn", kind)
    if len(errs) < 2:
        return []
    caveat, provisional = _caveats(table[table["norm"] == "gn"])
    ref = PAPER.groups if kind == "groups" else PAPER.channels_per_group
    best, worst = int(errs.idxmin()), int(errs.idxmax())
    paper = {k: ref[k] for k in errs.index if k in ref}
    name = "group counts G" if kind == "groups" else "channels per group"
    text = (f"Over {name} {', '.join(str(k) for k in sorted(errs.index, reverse=True))}, "
            f"{_setting(kind, best)} gave the lowest error ({errs[best]:.1f}%) and {_setting(kind, worst)} the "
            f"highest ({errs[worst]:.1f}%), {errs[worst] - errs[best]:.1f} points apart")
    ok = None
    if len(paper) >= 2:
        p_best, p_worst = min(paper, key=paper.get), max(paper, key=paper.get)
        text += (f" (paper at batch 32 over the same settings: best {_setting(kind, p_best)} {paper[p_best]:.1f}%, "
                 f"worst {_setting(kind, p_worst)} {paper[p_worst]:.1f}%, {paper[p_worst] - paper[p_best]:.1f} "
                 f"apart)")
        ok = bool(worst == p_worst)
        worst_text = (f"the paper's worst setting ({_setting(kind, p_worst)}) is also the worst here" if ok else
                      f"the paper's worst setting ({_setting(kind, p_worst)}) is not the worst here "
                      f"({errs[p_worst] - errs[best]:.1f} points above this sweep's best)")
        best_text = (f"its best ({_setting(kind, p_best)}) is also the best here" if best == p_best else
                     f"its best ({_setting(kind, p_best)}) is {errs[p_best] - errs[best]:.1f} points above this "
                     f"sweep's best")
        text += f": {worst_text}, and {best_text}"
    out = [Claim(study.name, kind, text + "." + caveat, ok, provisional)]
    return out


def claims(results: pd.DataFrame, studies: list[Study]) -> list[Claim]:
    """Every paper claim the sweep has data for, study by study, each sentence with its measured figures."""
    out = []
    for study in studies:
        table = study_table(results, study)
        if study.kind == "batch_size":
            out += batch_claims(study, table)
        elif study.kind == "norms":
            out += norm_claims(study, table)
        elif study.kind in ("groups", "channels_per_group"):
            out += group_claims(study, table)
    return out

