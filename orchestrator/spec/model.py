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
# The tables store seeds as int32 (results.schema; a column is never retyped), so a larger seed is refused here rather
# than failing the trial's first row. Within NumPy's seed range too (keras.utils.set_random_seed).
MAX_SEED = 2**31 - 1
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

    epochs: PosInt = Field(_TRAIN.epochs, description="Epochs every trial trains, whatever its batch size.")
    base_lr: Annotated[Real, Field(gt=0)] = Field(
        _TRAIN.base_lr, description="Learning rate at base_batch images per step; scaled linearly with the batch "
                                    "over all replicas, and divided by 10 at 30, 60 and 90% of the epochs.")
    base_batch: PosInt = Field(_TRAIN.base_batch, description="The batch that base_lr is for.")
    momentum: Annotated[Real, Field(ge=0, lt=1)] = Field(_TRAIN.momentum, description="SGD momentum.")
    weight_decay: Annotated[Real, Field(ge=0)] = Field(
        _TRAIN.weight_decay, description="L2 weight decay, on the normalization layers' gamma and beta too.")
    augment: StrictBool = Field(_TRAIN.augment, description="Random crops (padding 4) and horizontal flips.")
    precision: Literal[PRECISIONS] = Field(
        _TRAIN.precision, description="float32, or mixed precision with bfloat16 or float16 compute.")


class StudySpec(_Strict):
    """One grid: norm x batch size x (groups or channels per group, gn only) x seeds (its own, else the spec's: a
    study of small effects can take more seeds than the others)."""

    norm: Annotated[list[Literal[NORM_KINDS]], Field(min_length=1), AfterValidator(_unique)] = Field(
        description="Normalizations to compare (bn, gn, ln, in or none).")
    batch_size: Grid = Field(description="Batch sizes, images per replica (per GPU) as in the paper.")
    groups: Grid | None = Field(None, description="GN's group counts (gn only; each divides every layer's channels).")
    channels_per_group: Grid | None = Field(
        None, description="GN's channels per group, instead of groups (gn only).")
    seeds: Seeds | None = Field(None, description="This study's seeds, instead of the spec's (a count N is seeds 0 "
                                                  "to N-1).")


class Grouping(_Strict):
    """GN's grouping for studies that set none."""

    groups: PosInt | None = Field(None, description="GN's group count where a study sets none (else the model's "
                                                    "default).")
    channels_per_group: PosInt | None = Field(None, description="GN's channels per group where a study sets none, "
                                                                "instead of groups.")


class ResourceOverride(_Strict):
    """What one trial of a given batch size holds instead of the spec's resources."""

    cpu: Cpu | None = Field(None, description="CPUs of one trial of this batch size.")
    gpu: Gpu | None = Field(None, description="GPUs of one replica of this batch size (a fraction shares a GPU).")


class ResourcesSpec(_Strict):
    """Per trial (per replica for GPUs); ``by_batch_size`` overrides them for some batch sizes (small batches can
    share a GPU)."""

    cpu: Cpu = Field(1.0, description="CPUs of one trial.")
    gpu: Gpu = Field(0.0, description="GPUs of one replica: a fraction up to 1 shares a GPU, above 1 a whole number.")
    by_batch_size: dict[PosInt, ResourceOverride] = Field(
        {}, description="Other resources for some batch sizes (small batches can share a GPU).")
    gpu_memory_gib: Annotated[Real, Field(gt=0)] | None = Field(
        None, description="Memory of the GPU the fractions are sized for; a fraction too small for a trial's "
                          "estimated peak is a warning.")


class SweepSpec(_Strict):
    """A validated sweep spec. ``dataset`` is kept as written: a relative path resolves against the current working
    directory of whoever loads the spec; an object-store URI (``s3://``, ``gs://``, pyarrow's options in the query)
    names a dataset prepared there, which each node copies (``trainer.data.cache``)."""

    name: Name = Field(description="The sweep's name: its results go to RESULTS/NAME/ (letters, digits, _ . -).")
    dataset: Annotated[str, Field(min_length=1)] = Field(
        description="Prepared shards (a folder with dataset.json, or an s3:// or gs:// URI of one), a Tiny ImageNet "
                    "folder or zip, or builtin:digits; a relative path is from the current folder.")
    model: Literal[MODEL_NAMES] = Field(description="The network every trial trains.")
    train: TrainSpec = Field(TrainSpec(), description="The training protocol, the same for every trial.")
    studies: Annotated[dict[Name, StudySpec], Field(min_length=1)] = Field(
        description="Named grids; the union of their trials runs, each trial once.")
    seeds: Seeds = Field([0], description="Seeds every grid runs with, each a trial of its own: a list, or a count N "
                                          "for 0 to N-1 (at most 2^31 - 1, as the tables store them).")
    defaults: Grouping = Field(Grouping(), description="GN's grouping for studies that set none.")
    resources: ResourcesSpec = Field(ResourcesSpec(), description="What one trial holds on the cluster.")
    replicas: PosInt = Field(1, description="GPUs (or CPU replicas) per trial on one node; BN normalizes over each "
                                            "replica's batch.")
    retries: Annotated[StrictInt, Field(ge=0)] = Field(
        2, description="Times a failed trial is tried again, from its checkpoint.")
    max_trials: Annotated[StrictInt, Field(ge=1, le=MAX_TRIALS_LIMIT)] = Field(
        1000, description="Refuse a spec whose grids expand to more trials than this.")

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
