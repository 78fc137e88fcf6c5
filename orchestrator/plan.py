"""Studies -> trials. The union of the spec's study grids, each trial once, with the studies it belongs to."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from trainer.config import TrialConfig


@dataclass(frozen=True)
class PlannedTrial:
    config: TrialConfig
    studies: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.config.key


def plan_trials(spec) -> list[PlannedTrial]:
    """Expand every study grid (norm x batch size x groups or channels per group x seed) into trials.

    A trial's identity is its content, so the BN and GN trials that the paper's studies share run once. Only GN
    takes a group count: LN and IN are GN with 1 group and with 1 channel per group, BN has none.
    """
    train = spec.train_settings()
    default = spec.defaults_for_gn()
    found: dict[str, tuple[TrialConfig, list[str]]] = {}
    for study_name, study in spec.studies.items():
        grouping = ([("groups", g) for g in study.groups] if study.groups else
                    [("channels_per_group", c) for c in study.channels_per_group] if study.channels_per_group else
                    [default])
        for norm, batch, seed, (field, value) in itertools.product(study.norm, study.batch_size, spec.seeds,
                                                                   grouping):
            extra = {field: value} if norm == "gn" else {}
            config = TrialConfig(model=spec.model, norm=norm, batch_size=batch, seed=seed,
                                 replicas=spec.replicas, train=train, **extra)
            entry = found.setdefault(config.key, (config, []))
            if study_name not in entry[1]:
                entry[1].append(study_name)
    return [PlannedTrial(config, tuple(studies)) for config, studies in found.values()]


def format_plan(spec, trials: list[PlannedTrial]) -> str:
    """The plan as a table: one line per trial with its studies, then the counts per study."""
    lines = [f"sweep {spec.name}: {len(trials)} trials of {spec.model}, {spec.train.epochs} epochs each",
             f"{'trial':<24} {'norm':<5} {'batch':>5} {'groups':>6} {'c/g':>4} {'seed':>4}  studies"]
    for t in trials:
        c = t.config
        lines.append(f"{t.key:<24} {c.norm:<5} {c.batch_size:>5} {c.groups or '-':>6} "
                     f"{c.channels_per_group or '-':>4} {c.seed:>4}  {', '.join(t.studies)}")
    lines.append("per study: " + ", ".join(
        f"{name} {sum(name in t.studies for t in trials)}" for name in spec.studies))
    return "\n".join(lines)
