"""From a sweep's epochs and trials tables to per-trial results and per-study tables, as DataFrames.

Everything here takes DataFrames (as read from ``epochs/`` and ``trials/``), so it works on a sweep that is still
running and is testable without files. A trial's error is ``trainer.config.final_error`` of its epochs, computed
from the epochs so running trials count; trials that are not completed or have fewer epochs are flagged.
"""
from __future__ import annotations

import math

import pandas as pd

from results.paper import NORM_ORDER, references_for
from results.schema import IN_PROGRESS, STOPPED, TrialStatus
from results.studies import DIMS, Study
from results.uncertainty import Runs, contrast, epoch_sd, pooled_sd
from trainer.config import FINAL_EPOCHS, final_error

CONFIG = ("model",) + DIMS
INT_COLUMNS = ("batch_size", "groups", "channels_per_group", "seed")


def _ints(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in INT_COLUMNS:
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def _final(values: pd.Series) -> float:
    out = final_error(values.tolist())
    return math.nan if out is None else out


def trial_results(epochs: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial found in either table: config, status, epochs done, final val/train error (median of the
    last FINAL_EPOCHS epochs) and the standard deviation of those epochs (``final_val_sd``, ``final_train_sd``),
    ``complete`` (completed with at least FINAL_EPOCHS epochs), ``flag`` (why not),
    error message and studies. Trials without a trials row get status ``unknown``."""
    ep = _ints(epochs).drop_duplicates(["trial_key", "epoch"]).sort_values(["trial_key", "epoch"])
    by_trial = ep.groupby("trial_key", sort=True)
    measured = pd.DataFrame({
        "epochs": by_trial.size(),
        "final_val_err": by_trial["val_err"].agg(_final),
        "final_train_err": by_trial["train_err"].agg(_final),
        "final_val_sd": by_trial["val_err"].agg(lambda v: epoch_sd(v.tolist())),
        "final_train_sd": by_trial["train_err"].agg(lambda v: epoch_sd(v.tolist())),
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
    out["status"] = out["status"].fillna(TrialStatus.UNKNOWN.value).astype(object)
    out["studies"] = [_names(s) for s in out["studies"]]
    out["error"] = out["error"].astype(object).where(out["error"].notna(), None)
    out["complete"] = (out["status"] == TrialStatus.COMPLETED) & (out["epochs"] >= FINAL_EPOCHS)
    out["flag"] = [_flag(s, n) for s, n in zip(out["status"], out["epochs"])]
    return _ints(out.reset_index().rename(columns={"index": "trial_key"}))


def _names(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]


def _flag(status: str, epochs: int) -> str:
    """Why a trial's error is not final, in words: what happened to it, or on how few epochs its error rests."""
    if status == TrialStatus.COMPLETED:
        if epochs >= FINAL_EPOCHS:
            return ""
        if epochs == 0:
            return "completed with no epochs recorded"
        return (f"completed with {epochs} epoch{'s' if epochs > 1 else ''}: final error is the median of {epochs}, "
                f"not {FINAL_EPOCHS}")
    what = "no trials row" if status == TrialStatus.UNKNOWN else status
    if epochs == 0:
        return f"{what}, no epochs"
    so_far = "so far" if status in IN_PROGRESS else "done"
    return f"{what}, {epochs} epoch{'s' if epochs > 1 else ''} {so_far}"


def _sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame({
        "n": df["norm"].map(lambda n: NORM_ORDER.index(n) if n in NORM_ORDER else len(NORM_ORDER)),
        "b": -df["batch_size"].astype("Float64").fillna(0),
        "g": -df["groups"].astype("Float64").fillna(0),
        "c": -df["channels_per_group"].astype("Float64").fillna(0),
    }, index=df.index)
    return df.loc[keys.sort_values(["n", "b", "g", "c"]).index].reset_index(drop=True)


def runs_of(rows: pd.DataFrame, column: str = "val", images: int | None = None) -> Runs:
    """The runs of one configuration's trials ``rows`` that have a final ``column`` ("val" or "train") error, for
    its interval (``results.uncertainty``); ``images``: how many images that error is measured on."""
    rows = rows[rows[f"final_{column}_err"].notna()]
    finals = {int(s): float(e) for s, e in zip(rows["seed"], rows[f"final_{column}_err"])}
    return Runs(finals, pooled_sd(rows[f"final_{column}_sd"].astype(float).tolist()), images)


def study_table(results: pd.DataFrame, study: Study, val_images: int | None = None) -> pd.DataFrame:
    """One row per configuration of the study: its varying columns, mean final error over seeds with min, max,
    std and 95% interval (``err_low``, ``err_high``: ``results.uncertainty``, for ``val_images`` validation images
    where known), seeds, fewest epochs, statuses, whether all its trials are complete, and each applicable
    reference's number and the difference (measured minus reference)."""
    rows = results[results["trial_key"].isin(study.trial_keys)]
    group_cols = list(CONFIG)
    table = []
    for config, g in rows.groupby(group_cols, dropna=False, sort=False):
        errs = g["final_val_err"].dropna()
        statuses = g["status"].value_counts()
        interval = contrast([(runs_of(g, "val", val_images), 1.0)])
        table.append({
            **dict(zip(group_cols, config)),
            "final_val_err": errs.mean() if len(errs) else math.nan,
            "err_min": errs.min() if len(errs) else math.nan,
            "err_max": errs.max() if len(errs) else math.nan,
            "err_std": errs.std() if len(errs) > 1 else math.nan,
            "err_low": interval.low if interval else math.nan,
            "err_high": interval.high if interval else math.nan,
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


LIST_COLUMNS = ["trial_key", "status", "epochs", "final_val_err", "flag", "error"]


def incomplete_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Trials that are failed, diverged, running, pending, unknown or short of FINAL_EPOCHS epochs."""
    return results.loc[~results["complete"], LIST_COLUMNS].reset_index(drop=True)


def stopped_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Trials that ended without completing (failed, diverged) or were interrupted: their numbers are partial."""
    return results.loc[results["status"].isin(STOPPED), LIST_COLUMNS].reset_index(drop=True)


def unfinished_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Trials still running or not started (or without a trials row): the sweep has not finished them yet."""
    return results.loc[results["status"].isin(IN_PROGRESS), LIST_COLUMNS].reset_index(drop=True)


def short_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Completed trials whose final error rests on fewer than FINAL_EPOCHS epochs (the paper's median of 5)."""
    short = (results["status"] == TrialStatus.COMPLETED) & (results["epochs"] < FINAL_EPOCHS)
    return results.loc[short, LIST_COLUMNS].reset_index(drop=True)


def epoch_curves(epochs: pd.DataFrame, trial_keys) -> pd.DataFrame:
    """Train and val error per configuration and epoch, mean, min and max over seeds (for the figures)."""
    ep = _ints(epochs[epochs["trial_key"].isin(list(trial_keys))]).drop_duplicates(["trial_key", "epoch"])
    g = ep.groupby(list(DIMS) + ["epoch"], dropna=False)
    out = g.agg(val_mean=("val_err", "mean"), val_min=("val_err", "min"), val_max=("val_err", "max"),
                train_mean=("train_err", "mean"), train_min=("train_err", "min"),
                train_max=("train_err", "max"), n=("trial_key", "nunique"))
    return _ints(out.reset_index())
