"""A sweep's studies and the kind of comparison each makes. The kind is recorded from the spec at launch
(``sweep.json``); for sweeps launched before that it is inferred from which config columns vary among the study's
trials. Both use ``study_kind``, the one rule."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # a spec's plan needs study_kind only: loading a spec does not import pandas
    import pandas as pd

DIMS = ("norm", "batch_size", "groups", "channels_per_group")
KINDS = ("norms", "batch_size", "groups", "channels_per_group", "single")


@dataclass(frozen=True)
class Study:
    """A named study of the spec and what it compares."""

    name: str
    kind: str  # one of KINDS
    dims: tuple[str, ...]  # the config columns that vary among its trials
    trial_keys: tuple[str, ...]
    model: str
    batch_size: int | None  # the study's batch when it has one


def study_kind(varying: Iterable[str]) -> str:
    """The kind of a study whose grid varies the config columns ``varying`` (of DIMS): a group sweep, else a batch
    sweep, else a comparison of norms, else a single configuration."""
    varying = set(varying)
    return next((k for k in ("groups", "channels_per_group", "batch_size") if k in varying),
                "norms" if "norm" in varying else "single")


def find_studies(results: pd.DataFrame, kinds: Mapping[str, str] | None = None) -> list[Study]:
    """The sweep's studies (one study ``all`` when no trial names one), each of the kind recorded at launch
    (``kinds``, study name -> kind) or, where none is, of the kind its trials show."""
    kinds = kinds or {}
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
        kind = kinds.get(name) if kinds.get(name) in KINDS else study_kind(dims)
        batches = rows["batch_size"].dropna().unique()
        out.append(Study(name, kind, dims, tuple(sorted(keys)), str(rows["model"].mode().iloc[0]),
                         int(batches[0]) if len(batches) == 1 else None))
    return sorted(out, key=lambda s: (KINDS.index(s.kind), s.name))
