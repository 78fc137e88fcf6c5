"""Trials that compute the same thing under different names, so a sweep runs each computation once.

GN, LN and IN are one layer (``normalization.make_norm`` builds ``GroupNorm(groups=g)`` for all three, with the
same initialisers, regularisers and layer names), differing only in the group count ``resolve_groups`` gives each
normalization layer. Two trials of the same model, batch size, replicas, seed and training settings whose
per-layer group counts are equal build identical layers in the same order from the same seed: the same
computation. So GN with G = 1 is LN; GN with one channel per group, or with G = C in every layer, is IN; and GN
settings that resolve to the same groups in every layer are one another. BN and no-norm trials are only ever
themselves.
"""
from __future__ import annotations

import dataclasses

from normalization import GROUPED, resolve_groups
from trainer.config import TrialConfig
from trainer.models import norm_channels


def layer_groups(config: TrialConfig) -> tuple[int, ...] | None:
    """The group count of each normalization layer of the trial's model; None for BN and no norm."""
    if config.norm not in GROUPED:
        return None
    groups = config.groups
    if config.norm == "gn" and groups is None and config.channels_per_group is None:
        from trainer.models import default_groups

        groups = default_groups(config.model)
    return tuple(resolve_groups(config.norm, c, groups=groups, channels_per_group=config.channels_per_group)
                 for c in norm_channels(config.model))


def computation(config: TrialConfig) -> tuple:
    """What the trial computes, whatever its name: two trials with equal values train the same network."""
    try:
        groups = layer_groups(config)
    except ValueError:  # an impossible grouping (the spec's validation reports it): only itself
        return (config.key,), config
    norm = ("grouped", groups) if groups is not None else (config.norm,)
    rest = dataclasses.replace(config, norm="", groups=None, channels_per_group=None)
    return norm, rest


def _name(config: TrialConfig) -> str:
    if config.norm == "gn":
        if config.groups is not None:
            return f"GN with G = {config.groups}"
        if config.channels_per_group is not None:
            return f"GN with {config.channels_per_group} channel{'s' if config.channels_per_group > 1 else ''} " \
                   f"per group"
        return "GN"
    return config.norm.upper()


def why_same(alias: TrialConfig, canonical: TrialConfig) -> str:
    """One sentence for the plan and the report: ``GN with G = 1 is LN``."""
    groups = layer_groups(alias)
    channels = norm_channels(alias.model)
    if canonical.norm == "ln" or alias.norm == "ln" or all(g == 1 for g in groups):
        kind = "LN"
    elif canonical.norm == "in" or alias.norm == "in" or groups == tuple(channels):
        kind = "IN"
    else:
        kind = "the same groups in every layer"
    first, second = _name(alias), _name(canonical)
    if kind in ("LN", "IN") and second == kind:
        return f"{first} is {kind}"
    if kind in ("LN", "IN") and first == kind:
        return f"{second} is {kind}"
    return f"{first} and {second} give {kind}"


def same_as(configs: list[TrialConfig]) -> dict[str, str]:
    """``{alias key: canonical key}``: for every group of trials computing the same thing, the first in ``configs``'
    order runs and the others share its result."""
    first: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for config in configs:
        canonical = first.setdefault(computation(config), config.key)
        if canonical != config.key:
            aliases[config.key] = canonical
    return aliases
