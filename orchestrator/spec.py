"""The sweep spec: pydantic models validated at the edge, every problem reported at once as ``FILE: field: message``.

Imports neither TensorFlow nor Ray, so a bad spec is refused in well under a second.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError, \
    field_validator, model_validator

from normalization import NORM_KINDS, resolve_groups
from trainer.config import TrainSettings
from trainer.models import MODEL_NAMES, default_groups, norm_channels

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
PosInt = Annotated[StrictInt, Field(ge=1)]
Number = StrictFloat | StrictInt


class SpecError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSpec(Strict):
    epochs: PosInt = 100
    base_lr: Annotated[Number, Field(gt=0)] = 0.1
    base_batch: PosInt = 256
    momentum: Annotated[Number, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[Number, Field(ge=0)] = 1e-4
    augment: StrictBool = True


def _unique(values: list, what: str) -> list:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what} in {values}")
    return values


class StudySpec(Strict):
    norm: Annotated[list[Literal[NORM_KINDS]], Field(min_length=1)]
    batch_size: Annotated[list[PosInt], Field(min_length=1)]
    groups: Annotated[list[PosInt], Field(min_length=1)] | None = None
    channels_per_group: Annotated[list[PosInt], Field(min_length=1)] | None = None

    _unique_lists = field_validator("norm", "batch_size", "groups", "channels_per_group")(
        lambda v, info: _unique(v, info.field_name) if v is not None else v)


class Grouping(Strict):
    groups: PosInt | None = None
    channels_per_group: PosInt | None = None


class Resources(Strict):
    cpu: Annotated[Number, Field(gt=0)] = 1
    gpu: Annotated[Number, Field(ge=0)] = 0

    @field_validator("gpu")
    @classmethod
    def _whole_or_fraction(cls, v):
        if v > 1 and v != int(v):
            raise ValueError("a fraction of a GPU must be at most 1; more than one GPU must be a whole number")
        return v


class ResourcesSpec(Resources):
    by_batch_size: dict[PosInt, "ResourceOverride"] = {}


class ResourceOverride(Strict):
    cpu: Annotated[Number, Field(gt=0)] | None = None
    gpu: Annotated[Number, Field(ge=0)] | None = None


class SweepSpec(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    dataset: Annotated[str, Field(min_length=1)]
    model: Literal[MODEL_NAMES]
    train: TrainSpec = TrainSpec()
    studies: Annotated[dict[Annotated[str, Field(pattern=NAME_PATTERN)], StudySpec], Field(min_length=1)]
    seeds: Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)] = [0]
    defaults: Grouping = Grouping()
    resources: ResourcesSpec = ResourcesSpec()
    replicas: PosInt = 1
    retries: Annotated[StrictInt, Field(ge=0)] = 2
    max_trials: PosInt = 1000

    def train_settings(self) -> TrainSettings:
        return TrainSettings(**self.train.model_dump())

    def defaults_for_gn(self) -> tuple[str, int]:
        """The grouping of GN trials in studies that set none: the spec's defaults, else the model's default."""
        if self.defaults.channels_per_group is not None:
            return "channels_per_group", self.defaults.channels_per_group
        return "groups", self.defaults.groups if self.defaults.groups is not None else default_groups(self.model)

    def resources_for(self, batch_size: int) -> dict:
        override = self.resources.by_batch_size.get(batch_size)
        cpu, gpu = self.resources.cpu, self.resources.gpu
        if override is not None:
            cpu = override.cpu if override.cpu is not None else cpu
            gpu = override.gpu if override.gpu is not None else gpu
        return {"cpu": cpu, "gpu": gpu}

    def fingerprint(self) -> dict:
        """What must not change under one sweep name: results of other settings would be mixed silently."""
        return {"model": self.model, "dataset": self.dataset, "replicas": self.replicas,
                **{f"train.{k}": v for k, v in self.train.model_dump().items()}}


def _semantic_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    problems = []
    if spec.defaults.groups is not None and spec.defaults.channels_per_group is not None:
        problems.append(("defaults", "give groups or channels_per_group, not both"))
    channels = sorted(set(norm_channels(spec.model)))

    def check(field: str, kind: str, **grouping):
        for c in channels:
            try:
                resolve_groups(kind, c, **grouping)
            except ValueError as e:
                problems.append((field, f"{e} of {spec.model}"))
                return

    n_trials = 0
    for name, study in spec.studies.items():
        at = f"studies.{name}"
        if study.groups and study.channels_per_group:
            problems.append((at, "give groups or channels_per_group, not both"))
        for field in ("groups", "channels_per_group"):
            values = getattr(study, field)
            if values is None:
                continue
            others = [n for n in study.norm if n != "gn"]
            if others:
                problems.append((f"{at}.{field}", f"only gn takes {field}, not {', '.join(others)}"))
            for v in values:
                check(f"{at}.{field}", "gn", **{field: v})
        if "gn" in study.norm and not study.groups and not study.channels_per_group:
            field, value = spec.defaults_for_gn()
            check(f"defaults.{field}" if getattr(spec.defaults, field) is not None else f"{at}.norm",
                  "gn", **{field: value})
        n_trials += len(study.norm) * len(study.batch_size) * len(spec.seeds) * max(
            len(study.groups or []), len(study.channels_per_group or []), 1)
    if n_trials > spec.max_trials:
        problems.append(("studies", f"the grid expands to {n_trials} trials, more than max_trials "
                                    f"{spec.max_trials}"))
    from trainer.data import check_dataset

    problem = check_dataset(spec.dataset)
    if problem:
        problems.append(("dataset", problem))
    return problems


def _field(loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_spec(data, source: str = "<spec>") -> SweepSpec:
    """Validate a loaded spec; raises SpecError with one line per problem."""
    if not isinstance(data, dict):
        raise SpecError([f"{source}: (top level): a sweep spec is a mapping of fields, got "
                         f"{type(data).__name__ if data is not None else 'an empty file'}"])
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            lines.append(f"{source}: {_field(err['loc'])}: {msg}")
        raise SpecError(list(dict.fromkeys(lines))) from None
    problems = _semantic_problems(spec)
    if problems:
        raise SpecError([f"{source}: {field}: {msg}" for field, msg in problems])
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read a YAML spec safely (``yaml.safe_load``: no tags build objects) and validate it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError([f"{path}: cannot read the spec ({e.strerror or e})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError([f"{path}: (top level): {where}not valid YAML ({problem})"]) from None
    return parse_spec(data, str(path))


def spec_problems_for_cluster(spec: SweepSpec, nodes: list[dict]) -> list[str]:
    """Trials whose resources fit on no node of the cluster (an error, not an endless wait)."""
    batch_sizes = sorted({b for s in spec.studies.values() for b in s.batch_size})
    most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    problems = []
    for b in batch_sizes:
        r = spec.resources_for(b)
        gpu = r["gpu"] * spec.replicas
        if not any(n.get("CPU", 0) >= r["cpu"] and n.get("GPU", 0) >= gpu for n in nodes):
            problems.append(f"resources: a trial of batch {b} needs {r['cpu']:g} CPU and {gpu:g} GPU but the "
                            f"largest node has {most_cpu:g} CPU and {most_gpu:g} GPU")
    return problems
