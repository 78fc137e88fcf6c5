"""Spec validation: a loaded spec (plain data) to a ``SweepSpec``, with every problem reported at once, including
what the types cannot say (groupings against the model's channels, grid size, resources, the dataset)."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from normalization import resolve_groups
from orchestrator.spec.plan import count_trials
from orchestrator.spec.model import SweepSpec, known_fields
from orchestrator.spec.problems import SpecError, describe, field_name, message, problem_lines, refuse
from trainer.models import norm_channels


def _dataset_problem(dataset: str) -> str | None:
    from trainer.data import check_dataset

    try:
        return check_dataset(dataset)
    except (OSError, ValueError, RuntimeError) as e:  # embedded NUL, name too long, ~unknownuser
        return f"{describe(dataset)} is not a usable path ({e})"


def _grouping_problem(model: str, field: str, value: int) -> str | None:
    """``value`` as ``field`` (groups or channels_per_group) of GN on every normalization layer of ``model``."""
    for channels in norm_channels(model):
        try:
            resolve_groups("gn", channels, **{field: value})
        except ValueError:
            return f"{value} does not divide the {channels} channels of {model}"
    return None


def _semantic_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    """What the types cannot say: groupings against the model's channels, grid size, resources, the dataset."""
    problems: list[tuple[str, str]] = []
    if spec.defaults.groups is not None and spec.defaults.channels_per_group is not None:
        problems.append(("defaults", "give groups or channels_per_group, not both"))
    for field in ("groups", "channels_per_group"):
        value = getattr(spec.defaults, field)
        if value is not None and (problem := _grouping_problem(spec.model, field, value)):
            problems.append((f"defaults.{field}", problem))

    uses_default = False
    for name, study in spec.studies.items():
        at = f"studies.{name}"
        if study.groups is not None and study.channels_per_group is not None:
            problems.append((at, "give groups or channels_per_group, not both"))
        for field in ("groups", "channels_per_group"):
            values = getattr(study, field)
            if values is None:
                continue
            others = [n for n in study.norm if n != "gn"]
            if others:
                problems.append((f"{at}.{field}", f"only gn takes {field}; this study also has "
                                                  f"{', '.join(others)} (put them in a study of their own)"))
            for v in values:
                if problem := _grouping_problem(spec.model, field, v):
                    problems.append((f"{at}.{field}", problem))
                    break
        uses_default |= "gn" in study.norm and study.groups is None and study.channels_per_group is None
    if uses_default and spec.defaults.groups is None and spec.defaults.channels_per_group is None:
        field, value = spec.defaults_for_gn()
        if problem := _grouping_problem(spec.model, field, value):
            problems.append(("defaults", f"{spec.model}'s default groups: {problem}; set defaults.groups"))

    n_trials = count_trials(spec, spec.max_trials)
    if n_trials > spec.max_trials:
        problems.append(("studies", f"the grids expand to {'at least ' if n_trials > spec.max_trials + 1 else ''}"
                                    f"{n_trials} trials, more than max_trials {spec.max_trials}"))

    batch_sizes = spec.batch_sizes()
    for b in spec.resources.by_batch_size:
        if b not in batch_sizes:
            problems.append((f"resources.by_batch_size.{b}", f"no study has batch size {b}"))
    if spec.replicas > 1:
        for b in batch_sizes:
            gpu = spec.resources_for(b)["gpu"]
            if 0 < gpu < 1:
                where = "resources.by_batch_size" if b in spec.resources.by_batch_size else "resources.gpu"
                problems.append((where, f"each of the {spec.replicas} replicas needs a whole GPU (per-replica BN "
                                        f"runs one replica per device), got gpu {gpu:g} for batch size {b}"))
                break

    if problem := _dataset_problem(spec.dataset):
        problems.append(("dataset", problem))
    return problems


def parse_spec(data: Any, source: str = "<spec>", *, check_dataset: bool = True) -> SweepSpec:
    """Validate a loaded spec (a mapping); raises SpecError with one ``source: field: message`` line per problem.

    Relative ``dataset`` paths are checked against the current working directory (unless ``check_dataset`` is
    false: a dry run estimates a sweep before its data exists).
    """
    if not isinstance(data, dict):
        got = "an empty file" if data is None else describe(data)
        raise refuse(source, f"a sweep spec is a mapping of fields (name, dataset, model, studies, ...), got {got}")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        problems = [(field_name(err["loc"]), message(err, known_fields(tuple(err["loc"][:-1]))))
                    for err in e.errors(include_url=False)]
        dataset = data.get("dataset")
        if check_dataset and isinstance(dataset, str) and dataset and not any(f == "dataset" for f, _ in problems):
            if problem := _dataset_problem(dataset):
                problems.append(("dataset", problem))
        raise SpecError(problem_lines(source, problems)) from None
    problems = [p for p in _semantic_problems(spec) if check_dataset or p[0] != "dataset"]
    if problems:
        raise SpecError(problem_lines(source, problems))
    return spec
