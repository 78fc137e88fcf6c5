"""The sweep spec: pydantic models validated at the edge, every problem reported at once as ``FILE: field: message``.

Imports neither TensorFlow nor Ray, so a bad spec is refused in well under a second and before anything starts.
A spec is plain data: YAML tags that would build Python objects are refused, never executed.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, \
    ValidationError

from normalization import NORM_KINDS, resolve_groups
from trainer.config import TrainSettings
from trainer.models import MODEL_NAMES, default_groups, norm_channels

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; a bigger file is not a spec
MAX_PROBLEMS = 50  # a generated spec can be wrong everywhere; past this many lines, one summary line
MAX_DEPTH = 20  # flow nesting ([ or {); a spec needs 3
MAX_TRIALS_LIMIT = 100_000
MAX_SEED = 2**32 - 1  # NumPy's seed range (keras.utils.set_random_seed)


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', start with a letter or digit and contain "
                         f"no '..' (it names a directory), got {_describe(value)}")
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


PosInt = Annotated[StrictInt, Field(ge=1)]
Real = Annotated[float, Strict(), AllowInfNan(False)]  # strict float: ints are fine, strings and bools are not
Name = Annotated[str, AfterValidator(_check_name)]
Gpu = Annotated[Real, Field(ge=0), AfterValidator(_check_gpu)]
Cpu = Annotated[Real, Field(gt=0)]
Grid = Annotated[list[PosInt], Field(min_length=1), AfterValidator(_unique)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSpec(_Strict):
    """The paper's protocol, the same for every trial of the sweep (``trainer.config.TrainSettings``)."""

    epochs: PosInt = 100
    base_lr: Annotated[Real, Field(gt=0)] = 0.1
    base_batch: PosInt = 256
    momentum: Annotated[Real, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[Real, Field(ge=0)] = 1e-4
    augment: StrictBool = True


class StudySpec(_Strict):
    """One grid: norm x batch size x (groups or channels per group, gn only) x the spec's seeds."""

    norm: Annotated[list[Literal[NORM_KINDS]], Field(min_length=1), AfterValidator(_unique)]
    batch_size: Grid
    groups: Grid | None = None
    channels_per_group: Grid | None = None


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


class SweepSpec(_Strict):
    """A validated sweep spec. ``dataset`` is kept as written: a relative path resolves against the current working
    directory of whoever loads the spec."""

    name: Name
    dataset: Annotated[str, Field(min_length=1)]
    model: Literal[MODEL_NAMES]
    train: TrainSpec = TrainSpec()
    studies: Annotated[dict[Name, StudySpec], Field(min_length=1)]
    seeds: Annotated[list[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]], Field(min_length=1),
                     AfterValidator(_unique)] = [0]
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

    def resources_for(self, batch_size: int) -> dict:
        """``{"cpu": x, "gpu": y}`` of one trial (one replica's GPU share) after the ``by_batch_size`` override."""
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


class SpecError(Exception):
    """A spec that cannot run; ``problems`` holds one ``FILE: field: message`` line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _describe(value: Any) -> str:
    """A short, one-line description of a user's value (containers by type only: they may be huge or cyclic)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, (int, float)):
        return "a huge integer" if isinstance(value, int) and value.bit_length() > 200 else repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


_EXPECTED_FIELDS = {(): SweepSpec, ("train",): TrainSpec, ("studies", None): StudySpec, ("defaults",): Grouping,
                    ("resources",): ResourcesSpec, ("resources", "by_batch_size", None): ResourceOverride}


def _unknown_field(parent: tuple) -> str:
    for pattern, model in _EXPECTED_FIELDS.items():
        if len(pattern) == len(parent) and all(p is None or p == q for p, q in zip(pattern, parent)):
            return f"unknown field; expected one of {', '.join(model.model_fields)}"
    return "unknown field"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _message(err: dict) -> str:
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    got = f", got {_describe(given)}"
    messages = {
        "missing": "required field is missing",
        "extra_forbidden": _unknown_field(tuple(err["loc"][:-1])),
        "int_type": "must be an integer" + got,
        "float_type": "must be a number" + got,
        "finite_number": "must be a finite number" + got,
        "bool_type": "must be true or false" + got,
        "string_type": "must be a string" + got,
        "list_type": "must be a list" + got,
        "dict_type": "must be a mapping" + got,
        "model_type": "must be a mapping" + got,
        "literal_error": f"must be one of {str(ctx.get('expected', '')).replace(chr(39), '')}" + got,
        "too_short": "must not be empty",
        "string_too_short": "must not be empty",
        "greater_than": f"must be > {_number(ctx.get('gt'))}" + got,
        "greater_than_equal": f"must be >= {_number(ctx.get('ge'))}" + got,
        "less_than": f"must be < {_number(ctx.get('lt'))}" + got,
        "less_than_equal": f"must be <= {_number(ctx.get('le'))}" + got,
    }
    if kind in messages:
        return messages[kind]
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _field(loc) -> str:
    return ".".join(str(p) for p in loc if p != "[key]") or "(top level)"


def _one_line(text: str) -> str:
    """Control characters (newlines, NUL, terminal escapes) from the user's file shown escaped, never emitted."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: repr(m.group())[1:-1], text)


def _lines(source: str, problems: list[tuple[str, str]]) -> list[str]:
    lines = list(dict.fromkeys(_one_line(f"{source}: {field}: {msg}") for field, msg in problems))
    if len(lines) > MAX_PROBLEMS:
        lines = lines[:MAX_PROBLEMS] + [_one_line(f"{source}: (top level): {len(lines) - MAX_PROBLEMS} more "
                                                  f"problems not shown")]
    return lines


def _dataset_problem(dataset: str) -> str | None:
    from trainer.data import check_dataset

    try:
        return check_dataset(dataset)
    except (OSError, ValueError, RuntimeError) as e:  # embedded NUL, name too long, ~unknownuser
        return f"{_describe(dataset)} is not a usable path ({e})"


def _grouping_problem(model: str, field: str, value: int) -> str | None:
    """``value`` as ``field`` (groups or channels_per_group) of GN on every normalization layer of ``model``."""
    for channels in norm_channels(model):
        try:
            resolve_groups("gn", channels, **{field: value})
        except ValueError:
            return f"{value} does not divide the {channels} channels of {model}"
    return None


def _count_trials(spec: SweepSpec) -> int:
    """Distinct trials of the union of the grids (as plan_trials counts them), stopping once past max_trials."""
    default = spec.defaults_for_gn()
    seen: set[tuple] = set()
    for study in spec.studies.values():
        grouping = ([("groups", g) for g in study.groups] if study.groups else
                    [("channels_per_group", c) for c in study.channels_per_group] if study.channels_per_group else
                    [default])
        size = len(study.norm) * len(study.batch_size) * len(grouping) * len(spec.seeds)
        if size > spec.max_trials:
            return size
        for norm in study.norm:
            for b in study.batch_size:
                for g in grouping if norm == "gn" else [None]:
                    for s in spec.seeds:
                        seen.add((norm, b, g, s))
        if len(seen) > spec.max_trials:
            break
    return len(seen)


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

    n_trials = _count_trials(spec)
    if n_trials > spec.max_trials:
        problems.append(("studies", f"the grids expand to {'at least ' if n_trials > spec.max_trials + 1 else ''}"
                                    f"{n_trials} trials, more than max_trials {spec.max_trials}"))

    batch_sizes = {b for s in spec.studies.values() for b in s.batch_size}
    for b in spec.resources.by_batch_size:
        if b not in batch_sizes:
            problems.append((f"resources.by_batch_size.{b}", f"no study has batch size {b}"))
    if spec.replicas > 1:
        for b in sorted(batch_sizes):
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
        got = "an empty file" if data is None else _describe(data)
        raise SpecError(_lines(source, [("(top level)", f"a sweep spec is a mapping of fields (name, dataset, "
                                                        f"model, studies, ...), got {got}")]))
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        problems = [(_field(err["loc"]), _message(err)) for err in e.errors(include_url=False)]
        dataset = data.get("dataset")
        if check_dataset and isinstance(dataset, str) and dataset and not any(f == "dataset" for f, _ in problems):
            if problem := _dataset_problem(dataset):
                problems.append(("dataset", problem))
        raise SpecError(_lines(source, problems)) from None
    problems = [p for p in _semantic_problems(spec) if check_dataset or p[0] != "dataset"]
    if problems:
        raise SpecError(_lines(source, problems))
    return spec


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that no spec has: a key given twice, nesting past MAX_DEPTH."""


class _SpecLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain data only: a tag such as ``!!python/object`` is an error, never run) that
    also refuses a key given twice in one mapping, which safe_load would silently resolve to the last value, and
    deep flow nesting (``[[[[...``), which PyYAML scans in quadratic time."""

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(None, None, f"more than {MAX_DEPTH} nested [ or {{", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Refused(None, None, f"the key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"{where}the YAML tag {name} is not allowed (a spec is plain data; nothing is executed)"
    if isinstance(e, _Refused):
        return f"{where}{problem}"
    return f"{where}not valid YAML ({problem})"


def load_spec(path: str | Path, *, check_dataset: bool = True) -> SweepSpec:
    """Read and validate a YAML spec (safe loader: no tag builds an object). Raises SpecError, lines ``path: ...``.

    Relative ``dataset`` paths in the spec resolve against the current working directory, not the spec's folder.
    """
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(_lines(source, [("(top level)", f"the file has {size} bytes; a sweep spec is at most "
                                                            f"{MAX_SPEC_BYTES}")]))
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(_lines(source, [("(top level)", f"cannot read the spec: {e.strerror or e}")])) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError(_lines(source, [("(top level)", f"not UTF-8 text (byte {e.start})")])) from None
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise SpecError(_lines(source, [("(top level)", _yaml_problem(e))])) from None
    except RecursionError:
        raise SpecError(_lines(source, [("(top level)", "the YAML is nested too deeply")])) from None
    except ValueError as e:  # e.g. an integer past Python's digit limit
        raise SpecError(_lines(source, [("(top level)", f"not valid YAML ({e})")])) from None
    return parse_spec(data, source, check_dataset=check_dataset)


def spec_problems_for_cluster(spec: SweepSpec, nodes: list[dict]) -> list[str]:
    """One line per trial shape that fits on no node of the cluster (``nodes``: Ray node resource dicts such as
    ``{"CPU": 2.0, "GPU": 1.0}``): an infeasible request is an error, not an endless wait."""
    if not nodes:
        return ["resources: the cluster has no alive nodes"]
    most_cpu = max(float(n.get("CPU", 0)) for n in nodes)
    most_gpu = max(float(n.get("GPU", 0)) for n in nodes)
    if any(float(n.get("CPU", 0)) == most_cpu and float(n.get("GPU", 0)) == most_gpu for n in nodes):
        largest = f"the largest node has {most_cpu:g} CPU and {most_gpu:g} GPU"
    else:
        largest = f"no node has both (the most on one node: {most_cpu:g} CPU, {most_gpu:g} GPU)"
    problems = []
    batch_sizes = sorted({b for s in spec.studies.values() for b in s.batch_size},
                         key=lambda b: (b in spec.resources.by_batch_size, b))  # the common shape first
    for b in batch_sizes:
        r = spec.resources_for(b)
        cpu, gpu = r["cpu"], r["gpu"] * spec.replicas
        if any(float(n.get("CPU", 0)) >= cpu and float(n.get("GPU", 0)) >= gpu for n in nodes):
            continue
        field, trial = ((f"resources.by_batch_size.{b}", f"a trial of batch size {b}")
                        if b in spec.resources.by_batch_size else ("resources", "a trial"))
        problems.append(f"{field}: {trial} needs {cpu:g} CPU and {gpu:g} GPU but {largest}")
    return list(dict.fromkeys(problems))
