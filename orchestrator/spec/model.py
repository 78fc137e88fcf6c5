"""The sweep spec as pydantic models: what a valid spec is. Validation beyond the types is in
``orchestrator.spec.validation``, the wording of problems in ``orchestrator.spec.problems``, reading the YAML file in
``orchestrator.spec.file``.

Imports neither TensorFlow nor Ray, so a bad spec is refused in well under a second and before anything starts.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, \
    StrictInt

from normalization import NORM_KINDS
from orchestrator.spec.problems import describe
from trainer.config import PRECISIONS, TrainSettings
from trainer.models import MODEL_NAMES, default_groups

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_TRIALS_LIMIT = 100_000
MAX_SEED = 2**32 - 1  # NumPy's seed range (keras.utils.set_random_seed)
MAX_SEED_COUNT = 100  # ``seeds: N``: more than this is a typo, not a sweep


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', start with a letter or digit and contain "
                         f"no '..' (it names a directory), got {describe(value)}")
    return value


def _check_gpu(value: float | None) -> float | None:
    if value is not None and value > 1 and value != int(value):
        raise ValueError(f"a fraction of a GPU must be at most 1 and more than one GPU a whole number, got {value:g}")
    return value


def _unique(values: list | None) -> list | None:
    if values is not None:
        seen = set()
        for v in values:
            if v in seen:
                raise ValueError(f"{v!r} is listed twice")
            seen.add(v)
    return values


def _seed_count(value):
    """``seeds: N`` is seeds 0 to N-1; a list is kept as written (so its fingerprint and trial keys stay)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEED_COUNT:
            raise ValueError(f"a count of seeds must be 1 to {MAX_SEED_COUNT}, got {describe(value)}")
        return list(range(value))
    if not isinstance(value, list):
        raise ValueError(f"must be a count of seeds (seeds: 3 is 0, 1, 2) or a list of them, got {describe(value)}")
    return value


PosInt = Annotated[StrictInt, Field(ge=1)]
Real = Annotated[float, Strict(), AllowInfNan(False)]  # strict float: ints are fine, strings and bools are not
Name = Annotated[str, AfterValidator(_check_name)]
Gpu = Annotated[Real, Field(ge=0), AfterValidator(_check_gpu)]
Cpu = Annotated[Real, Field(gt=0)]
Grid = Annotated[list[PosInt], Field(min_length=1), AfterValidator(_unique)]
Seeds = Annotated[list[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]], Field(min_length=1), AfterValidator(_unique),
                  BeforeValidator(_seed_count)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_TRAIN = TrainSettings()  # the defaults live there, once


class TrainSpec(_Strict):
    """The paper's protocol, the same for every trial of the sweep (``trainer.config.TrainSettings``)."""

    epochs: PosInt = _TRAIN.epochs
    base_lr: Annotated[Real, Field(gt=0)] = _TRAIN.base_lr
    base_batch: PosInt = _TRAIN.base_batch
    momentum: Annotated[Real, Field(ge=0, lt=1)] = _TRAIN.momentum
    weight_decay: Annotated[Real, Field(ge=0)] = _TRAIN.weight_decay
    augment: StrictBool = _TRAIN.augment
    precision: Literal[PRECISIONS] = _TRAIN.precision


class StudySpec(_Strict):
    """One grid: norm x batch size x (groups or channels per group, gn only) x seeds (its own, else the spec's: a
    study of small effects can take more seeds than the others)."""

    norm: Annotated[list[Literal[NORM_KINDS]], Field(min_length=1), AfterValidator(_unique)]
    batch_size: Grid
    groups: Grid | None = None
    channels_per_group: Grid | None = None
    seeds: Seeds | None = None


class Grouping(_Strict):
    """GN's grouping for studies that set none."""

    groups: PosInt | None = None
    channels_per_group: PosInt | None = None


class ResourceOverride(_Strict):
    cpu: Cpu | None = None
    gpu: Gpu | None = None


class ResourcesSpec(_Strict):
    """Per trial (per replica for GPUs); ``by_batch_size`` overrides them for some batch sizes (small batches can
    share a GPU)."""

    cpu: Cpu = 1.0
    gpu: Gpu = 0.0
    by_batch_size: dict[PosInt, ResourceOverride] = {}
    gpu_memory_gib: Annotated[Real, Field(gt=0)] | None = None  # the GPU the fractions are sized for (warnings)


class SweepSpec(_Strict):
    """A validated sweep spec. ``dataset`` is kept as written: a relative path resolves against the current working
    directory of whoever loads the spec; an object-store URI (``s3://``, ``gs://``, pyarrow's options in the query)
    names a dataset prepared there, which each node copies (``trainer.data.cache``)."""

    name: Name
    dataset: Annotated[str, Field(min_length=1)]
    model: Literal[MODEL_NAMES]
    train: TrainSpec = TrainSpec()
    studies: Annotated[dict[Name, StudySpec], Field(min_length=1)]
    seeds: Seeds = [0]
    defaults: Grouping = Grouping()
    resources: ResourcesSpec = ResourcesSpec()
    replicas: PosInt = 1
    retries: Annotated[StrictInt, Field(ge=0)] = 2
    max_trials: Annotated[StrictInt, Field(ge=1, le=MAX_TRIALS_LIMIT)] = 1000

    def train_settings(self) -> TrainSettings:
        return TrainSettings(**self.train.model_dump())

    def defaults_for_gn(self) -> tuple[str, int]:
        """The grouping of GN trials in studies that set none: the spec's defaults, else the model's default."""
        if self.defaults.channels_per_group is not None:
            return "channels_per_group", self.defaults.channels_per_group
        return "groups", self.defaults.groups if self.defaults.groups is not None else default_groups(self.model)

    def batch_sizes(self) -> list[int]:
        """Every batch size some study trains at, smallest first."""
        return sorted({b for study in self.studies.values() for b in study.batch_size})

    def resources_for(self, batch_size: int) -> dict:
        """``{"cpu": x, "gpu": y}`` of one trial (one replica's GPU share) after the ``by_batch_size`` override."""
        override = self.resources.by_batch_size.get(batch_size)
        cpu, gpu = self.resources.cpu, self.resources.gpu
        if override is not None:
            cpu = override.cpu if override.cpu is not None else cpu
            gpu = override.gpu if override.gpu is not None else gpu
        return {"cpu": cpu, "gpu": gpu}

    def trial_resources(self, batch_size: int) -> dict[str, float]:
        """What one trial of ``batch_size`` holds, in Ray's resource names: its CPUs, and a replica's GPU share
        times the replicas. The one rule: Ray's request, the cost estimate, plan.json and the cluster check read it."""
        r = self.resources_for(batch_size)
        return {"CPU": float(r["cpu"]), "GPU": float(r["gpu"]) * self.replicas}

    def fingerprint(self) -> dict:
        """What must not change under one sweep name: results of other settings would be mixed silently."""
        train = {f"train.{k}": v for k, v in self.train.model_dump().items()
                 if not (k == "precision" and v == "float32")}  # sweeps recorded before precision existed match
        return {"model": self.model, "dataset": self.dataset, "replicas": self.replicas, **train}


_EXPECTED_FIELDS = {(): SweepSpec, ("train",): TrainSpec, ("studies", None): StudySpec, ("defaults",): Grouping,
                    ("resources",): ResourcesSpec, ("resources", "by_batch_size", None): ResourceOverride}


def known_fields(parent: tuple) -> list[str] | None:
    """The fields a mapping at ``parent`` (a location such as ``("studies", "norms")``) may hold, if it is one."""
    for pattern, model in _EXPECTED_FIELDS.items():
        if len(pattern) == len(parent) and all(p is None or p == q for p, q in zip(pattern, parent)):
            return list(model.model_fields)
    return None
