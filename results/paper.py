"""The reference numbers a sweep is compared with, as data: the paper's ResNet-50 ImageNet tables and the reference
notebook's seed_cnn study. All are top-1 validation error in percent, batch size in images per GPU."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

NORM_ORDER = ("bn", "ln", "in", "gn", "none")  # the paper's column order; also the report's row order

TABLE1 = {"bn": 23.6, "ln": 25.3, "in": 28.4, "gn": 24.1}  # batch 32
TABLE2 = {
    "bn": {32: 23.6, 16: 23.7, 8: 24.8, 4: 27.3, 2: 34.7},
    "gn": {32: 24.1, 16: 24.2, 8: 24.0, 4: 24.2, 2: 24.1},
}
TABLE3_GROUPS = {64: 24.6, 32: 24.1, 16: 24.6, 8: 24.4, 4: 24.6, 2: 24.7, 1: 25.3}  # batch 32
# Table 3 bottom is an image in ar5iv: these come from a secondary source that agrees with the paper's text.
TABLE3_CHANNELS_PER_GROUP = {64: 24.4, 32: 24.5, 16: 24.2, 8: 24.3, 4: 24.8, 2: 25.6, 1: 28.4}  # batch 32

# The reference notebook: seed_cnn on Tiny ImageNet, batch 32, 100 epochs, median of the last 5 epochs.
NOTEBOOK = {"bn": 74.75, "gn": 72.82, "in": 74.25, "ln": 79.14}


@dataclass(frozen=True)
class Reference:
    """One source of reference numbers. ``direction_only`` marks numbers from another model or dataset than the
    sweep's: they say which way an effect should go, not how large the errors should be."""

    key: str
    label: str
    direction_only: bool
    norms: Mapping[str, float]
    batch: Mapping[str, Mapping[int, float]]
    groups: Mapping[int, float] = field(default_factory=dict)
    channels_per_group: Mapping[int, float] = field(default_factory=dict)
    norms_batch: int = 32
    note: str = ""

    def error(self, kind: str, norm: str, batch_size: int | None, groups: int | None = None,
              channels_per_group: int | None = None) -> float | None:
        """The reference error for one configuration of a study of ``kind``, or None where the source has none.

        In norms and batch-size studies GN stands for the source's GN whatever its group count; in the group
        studies the group count or channels per group pick the number."""
        if kind == "groups":
            return self.groups.get(groups) if norm == "gn" and batch_size == self.norms_batch else None
        if kind == "channels_per_group":
            ok = norm == "gn" and batch_size == self.norms_batch
            return self.channels_per_group.get(channels_per_group) if ok else None
        value = self.batch.get(norm, {}).get(batch_size)
        if value is None and batch_size == self.norms_batch:
            value = self.norms.get(norm)
        return value


PAPER = Reference("paper", "paper (ResNet-50, ImageNet)", False, TABLE1, TABLE2, TABLE3_GROUPS,
                  TABLE3_CHANNELS_PER_GROUP)
PAPER_DIRECTION = Reference("paper", "paper (ResNet-50, ImageNet)", True, TABLE1, TABLE2, TABLE3_GROUPS,
                            TABLE3_CHANNELS_PER_GROUP, note="another model and dataset: for direction only")
PAPER_OTHER_DATASET = Reference("paper", "paper (ResNet-50, ImageNet)", True, TABLE1, TABLE2, TABLE3_GROUPS,
                                TABLE3_CHANNELS_PER_GROUP, note="the same model on ImageNet, not this sweep's "
                                "dataset: for direction only")
NOTEBOOK_REF = Reference("notebook", "notebook (seed_cnn, Tiny ImageNet)", False, NOTEBOOK,
                         {"bn": {32: NOTEBOOK["bn"]}, "gn": {32: NOTEBOOK["gn"]}},
                         note="its LN used a per-element affine")


def references_for(model: str) -> list[Reference]:
    """The references that apply to a sweep of ``model``, the closest first. gnsweep's datasets (Tiny ImageNet,
    digits) are never the paper's ImageNet, so the paper's numbers give direction only, even for ResNet-50."""
    if model == "resnet50":
        return [PAPER_OTHER_DATASET]
    if model == "seed_cnn":
        return [NOTEBOOK_REF, PAPER_DIRECTION]
    return [PAPER_DIRECTION]
