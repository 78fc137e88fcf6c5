"""Studies -> trials. The union of the spec's study grids, each trial once, with the studies it belongs to."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from orchestrator.dedup import same_as
from trainer.config import TrialConfig


@dataclass(frozen=True)
class PlannedTrial:
    config: TrialConfig
    studies: tuple[str, ...]
    same_as: str | None = None  # key of the trial that computes the same thing and runs in its place

    @property
    def runs(self) -> bool:
        return self.same_as is None

    @property
    def key(self) -> str:
        return self.config.key


def plan_trials(spec) -> list[PlannedTrial]:
    """Expand every study grid (norm x batch size x groups or channels per group x seed) into trials.

    A trial's identity is its content, so the BN and GN trials that the paper's studies share run once. Only GN
    takes a group count: LN and IN are GN with 1 group and with 1 channel per group, BN has none. A trial that
    computes the same as an earlier one under another name (GN with G = 1 and LN, ...) is marked ``same_as`` it
    (``orchestrator.dedup``) and does not run again.
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
    aliases = same_as([config for config, _ in found.values()])
    return [PlannedTrial(config, tuple(studies), aliases.get(config.key)) for config, studies in found.values()]


def format_plan(spec, trials: list[PlannedTrial], costs: dict[str, str] | None = None, cost_header: str = "") -> str:
    """The plan as a table: one line per trial with its studies (and ``costs[key]`` when given), then the counts
    per study."""
    costs = costs or {}
    shared = sum(not t.runs for t in trials)
    runs = f" ({len(trials) - shared} runs: {shared} share another trial's run)" if shared else ""
    lines = [f"sweep {spec.name}: {len(trials)} trials of {spec.model}, {spec.train.epochs} epochs each{runs}",
             f"{'trial':<24} {'norm':<5} {'batch':>5} {'groups':>6} {'c/g':>4} {'seed':>4}  {cost_header}studies"]
    for t in trials:
        c = t.config
        note = f"  = {t.same_as} (same computation)" if t.same_as else ""
        lines.append(f"{t.key:<24} {c.norm:<5} {c.batch_size:>5} {c.groups or '-':>6} "
                     f"{c.channels_per_group or '-':>4} {c.seed:>4}  {costs.get(t.key, '')}{', '.join(t.studies)}"
                     f"{note}")
    lines.append("per study: " + ", ".join(
        f"{name} {sum(name in t.studies for t in trials)}" for name in spec.studies))
    return "\n".join(lines)
