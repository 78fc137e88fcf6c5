"""Trials that share another trial's run (GN with G = 1 is LN, ...): the launch runs one and records the others in
the sweep's ``plan.json``; readers expand them back, so every study that includes a shared trial shows its result.

The launch writes a ``trials/`` row for every shared trial (``SharedTrial.trial_row``: the run's row under the
alias's key and configuration, ``same_as`` naming the run), so the trials table has every trial name of the plan.
Epochs are stored once per run: ``expand_shared`` copies the run's epoch rows under the alias's key and
configuration (norm, groups, channels per group, studies) for readers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pandas as pd

from results.records import TrialRow
from results.schema import TrialStatus
from results.text import md_code, md_inline
from trainer.storage import Location

PLAN_FILE = "plan.json"
ALIAS_COLUMNS = ("norm", "groups", "channels_per_group")


def read_plan(sweep_dir) -> dict:
    """The sweep's ``plan.json`` as written by the launch (``{}`` when there is none, it cannot be read or it is not
    a JSON object)."""
    path = Location.of(sweep_dir) / PLAN_FILE
    try:
        plan = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    return plan if isinstance(plan, dict) else {}


def _optional_int(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _is_alias(entry) -> bool:
    """A plan entry naming another trial's run, with the fields ``_copy`` reads of the types the launch writes:
    plan.json is untrusted, and a malformed entry must not stop status or the report."""
    if not isinstance(entry, dict) or not isinstance(entry.get("same_as"), str) or not entry["same_as"]:
        return False
    config, studies = entry.get("config"), entry.get("studies", [])
    return (isinstance(config, dict) and isinstance(config.get("norm"), str)
            and _optional_int(config.get("groups")) and _optional_int(config.get("channels_per_group"))
            and isinstance(studies, list) and all(isinstance(s, str) for s in studies)
            and (entry.get("why") is None or isinstance(entry["why"], str)))


def aliases(plan: dict) -> dict[str, dict]:
    """``{alias key: its plan entry}`` for the trials that share another's run (well-formed entries only)."""
    trials = plan.get("trials")
    if not isinstance(trials, dict):
        return {}
    return {k: v for k, v in trials.items() if isinstance(k, str) and _is_alias(v)}


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


def _entries(sweep_dir, trials: pd.DataFrame, plan: dict | None) -> dict[str, dict]:
    """Every shared trial as a plan entry: those plan.json names, and those the trials table records with
    ``same_as`` (a sweep whose plan.json is gone still shows them); plan.json's reason wins where both have one."""
    entries = {}
    if "same_as" in trials:
        for r in trials[trials["same_as"].notna()].to_dict("records"):
            entries[r["trial_key"]] = {"config": {c: _value(r.get(c)) for c in ALIAS_COLUMNS},
                                       "studies": _names(r.get("studies")), "same_as": r["same_as"], "why": None}
    return {**entries, **aliases(read_plan(sweep_dir) if plan is None else plan)}


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
                  plan: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
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
