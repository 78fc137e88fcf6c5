"""Studies -> trials. The union of the spec's study grids, each trial once, with the studies it belongs to."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

from orchestrator.spec.dedup import same_as
from results.studies import study_kind
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


def _groupings(spec, study, norm: str) -> list[dict]:
    """Only GN takes a group count: LN and IN are GN with 1 group and with 1 channel per group, BN has none."""
    if norm != "gn":
        return [{}]
    if study.groups:
        return [{"groups": g} for g in study.groups]
    if study.channels_per_group:
        return [{"channels_per_group": c} for c in study.channels_per_group]
    field, value = spec.defaults_for_gn()
    return [{field: value}]


def study_seeds(spec, study) -> list[int]:
    """The study's own seeds, else the spec's."""
    return study.seeds if study.seeds is not None else spec.seeds


def study_size(spec, study) -> int:
    """How many trials one study's grid holds (before sharing with other studies), without expanding it."""
    return (sum(len(_groupings(spec, study, n)) for n in study.norm) * len(study.batch_size)
            * len(study_seeds(spec, study)))


def study_trials(spec, study) -> Iterator[TrialConfig]:
    """One study's grid (norm x batch size x groups or channels per group x seed), lazily: the one expansion."""
    train = spec.train_settings()
    for norm, batch, seed in itertools.product(study.norm, study.batch_size, study_seeds(spec, study)):
        for extra in _groupings(spec, study, norm):
            yield TrialConfig(model=spec.model, norm=norm, batch_size=batch, seed=seed, replicas=spec.replicas,
                              train=train, **extra)


def count_trials(spec, limit: int) -> int:
    """Distinct trials of the union of the grids, as plan_trials finds them; once past ``limit`` it stops and the
    count is a lower bound (a hostile grid may be astronomically large)."""
    seen: set[str] = set()
    for study in spec.studies.values():
        size = study_size(spec, study)
        if size > limit:
            return max(size, len(seen))
        seen.update(config.key for config in study_trials(spec, study))
        if len(seen) > limit:
            break
    return len(seen)


def study_kinds(spec) -> dict[str, str]:
    """Each study's kind of comparison (``results.studies.KINDS``) from what its grid varies, recorded at launch so
    the report need not guess it from the trials that happen to have rows."""
    kinds = {}
    for name, study in spec.studies.items():
        sizes = {"norm": len(study.norm), "batch_size": len(study.batch_size),
                 "groups": len(study.groups or ()), "channels_per_group": len(study.channels_per_group or ())}
        kinds[name] = study_kind(d for d, n in sizes.items() if n > 1)
    return kinds


def plan_trials(spec) -> list[PlannedTrial]:
    """Every study's trials, each once: a trial's identity is its content, so the BN and GN trials that the paper's
    studies share run once, listed with every study they belong to. A trial that computes the same as another under
    another name (GN with G = 1 and LN, ...) is marked ``same_as`` it (``orchestrator.spec.dedup``) and does not run."""
    found: dict[str, tuple[TrialConfig, list[str]]] = {}
    for study_name, study in spec.studies.items():
        for config in study_trials(spec, study):
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
