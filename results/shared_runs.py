"""Trials that share another trial's run (GN with G = 1 is LN, ...): the launch runs one and records the others in
the sweep's ``plan.json``; readers expand them back, so every study that includes a shared trial shows its result.

The launch writes a ``trials/`` row for every shared trial (``SharedTrial.trial_row``: the run's row under the
alias's key and configuration, ``same_as`` naming the run), so the trials table has every trial name of the plan.
Epochs are stored once per run: ``expand_shared`` copies the run's epoch rows under the alias's key and
configuration (norm, groups, channels per group, studies) for readers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from results import store
from results.records import PlanRecord, TrialRow
from results.schema import TrialStatus
from results.text import md_code, md_inline

ALIAS_COLUMNS = ("norm", "groups", "channels_per_group")


def aliases(plan: PlanRecord | None) -> dict[str, dict]:
    """``{alias key: its plan entry}`` (config, studies, same_as, why) for the trials that share another's run
    (plan.json is checked field by field when read: ``results.store.read_plan``)."""
    if plan is None:
        return {}
    return {k: {"config": dict(e.config), "studies": list(e.studies), "same_as": e.same_as, "why": e.why}
            for k, e in plan.trials.items() if e.same_as}


@dataclass(frozen=True)
class SharedTrial:
    """A planned trial that shares another's run (``same_as``, its key): its own key, configuration and studies.
    Its rows are the run's rows under its own name, so ``trials[trials.groups == 1]`` finds LN's run in a groups
    study."""

    key: str
    same_as: str
    norm: str
    groups: int | None
    channels_per_group: int | None
    studies: tuple[str, ...] = ()

    def trial_row(self, run: TrialRow) -> TrialRow:
        """The run's trials row (status, figures, timings) under this trial's key and configuration."""
        return dataclasses.replace(run, trial_key=self.key, norm=self.norm, groups=self.groups,
                                   channels_per_group=self.channels_per_group, studies=self.studies,
                                   same_as=run.trial_key)

    def epoch_row(self, run: dict) -> dict:
        """One of the run's epoch rows (as a dict) under this trial's key and configuration."""
        return {**run, "trial_key": self.key, "norm": self.norm, "groups": self.groups,
                "channels_per_group": self.channels_per_group}


def _entries(sweep_dir, trials: pd.DataFrame, plan: PlanRecord | None) -> dict[str, dict]:
    """Every shared trial as a plan entry: those plan.json names, and those the trials table records with
    ``same_as`` (a sweep whose plan.json is gone still shows them); plan.json's reason wins where both have one."""
    entries = {}
    if "same_as" in trials:
        for r in trials[trials["same_as"].notna()].to_dict("records"):
            entries[r["trial_key"]] = {"config": {c: _value(r.get(c)) for c in ALIAS_COLUMNS},
                                       "studies": _names(r.get("studies")), "same_as": r["same_as"], "why": None}
    return {**entries, **aliases(store.read_plan(sweep_dir) if plan is None and sweep_dir is not None else plan)}


def _value(v):
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _names(value) -> list[str]:
    return [] if value is None or (isinstance(value, float) and pd.isna(value)) else [str(v) for v in value]


def _copy(rows: pd.DataFrame, key: str, entry: dict) -> pd.DataFrame:
    out = rows.copy()
    out["trial_key"] = key
    for col in ALIAS_COLUMNS:
        if col in out:
            value = entry["config"].get(col)
            out[col] = pd.Series([value] * len(out), index=out.index, dtype=out[col].dtype)
    if "studies" in out:
        out["studies"] = [list(entry.get("studies", []))] * len(out)
    out["same_as"] = entry["same_as"]
    out["same_why"] = entry.get("why")
    return out


def expand_shared(sweep_dir, epochs: pd.DataFrame, trials: pd.DataFrame, *, pending_rows: bool = False,
                  plan: PlanRecord | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The epochs and trials tables with each shared trial's rows: copies of its run's rows under its own key and
    configuration, with ``same_as`` naming the run (null on a run's own rows). A shared trial's row in the trials
    table is made again from its run's current row, so it never lags behind it. ``pending_rows`` adds a
    ``pending`` trials row for a shared trial whose run has none yet (for status, which lists every trial).
    ``plan``: the sweep's plan.json when the caller has it (else it is read from ``sweep_dir``)."""
    shared = _entries(sweep_dir, trials, plan)
    if "same_as" in trials:
        trials = trials[trials["same_as"].isna()]
    epochs, trials = epochs.assign(same_as=None, same_why=None), trials.assign(same_as=None, same_why=None)
    if not shared:
        return epochs, trials.reset_index(drop=True)
    extra_e = [_copy(epochs[epochs["trial_key"] == e["same_as"]], k, e) for k, e in shared.items()]
    extra_t = [_copy(trials[trials["trial_key"] == e["same_as"]], k, e) for k, e in shared.items()]
    if pending_rows:
        extra_t += [pd.DataFrame([{**{c: e["config"].get(c) for c in ALIAS_COLUMNS}, "trial_key": k,
                                   "status": TrialStatus.PENDING.value, "epochs": 0, "same_as": e["same_as"],
                                   "same_why": e.get("why")}])
                    for (k, e), x in zip(shared.items(), extra_t) if not len(x)]
    epochs = pd.concat([epochs, *[x for x in extra_e if len(x)]], ignore_index=True)
    trials = pd.concat([trials, *[x for x in extra_t if len(x)]], ignore_index=True)
    return epochs, trials


def report_lines(trials: pd.DataFrame) -> list[str]:
    """Markdown lines naming each trial whose result is another trial's run, and why they are the same (keys and
    reasons come from plan.json: escaped)."""
    if "same_as" not in trials or trials["same_as"].isna().all():
        return []
    lines = ["Shared runs (each computation is trained once; its result appears in every study that includes it):"]
    for r in trials[trials["same_as"].notna()].drop_duplicates("trial_key").to_dict("records"):
        why = f": {md_inline(r['same_why'])}" if isinstance(r.get("same_why"), str) else ""
        lines.append(f"- {md_code(r['trial_key'])} is the run of {md_code(r['same_as'])}{why}")
    return lines + [""]
