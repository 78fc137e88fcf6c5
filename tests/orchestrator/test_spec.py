"""The sweep spec: what a valid spec means (defaults, fingerprint, resources) and how problems are reported."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.launch.cluster import spec_problems_for_cluster
from orchestrator.spec.model import SweepSpec
from orchestrator.spec.problems import SpecError
from orchestrator.spec.file import load_spec
from orchestrator.spec.validation import parse_spec
from trainer.config import TrainSettings

ROOT = Path(__file__).resolve().parents[2]

PAPER = """
name: paper
dataset: builtin:digits
model: resnet50
train: {epochs: 100, base_lr: 0.1, base_batch: 256, momentum: 0.9, weight_decay: 1.0e-4, augment: true}
studies:
  norms:              {norm: [bn, ln, in, gn], batch_size: [32]}
  batch_size:         {norm: [bn, gn], batch_size: [32, 16, 8, 4, 2]}
  groups:             {norm: [gn], groups: [64, 32, 16, 8, 4, 2, 1], batch_size: [32]}
  channels_per_group: {norm: [gn], channels_per_group: [64, 32, 16, 8, 4, 2, 1], batch_size: [32]}
seeds: [0]
defaults: {groups: 32}
resources: {cpu: 4, gpu: 1, by_batch_size: {2: {gpu: 0.25}, 4: {cpu: 2, gpu: 0.5}}}
retries: 2
"""

MINIMAL = {"name": "m", "dataset": "builtin:digits", "model": "resnet8",
           "studies": {"s": {"norm": ["bn", "gn"], "batch_size": [32]}}}


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path_or_data, **kwargs) -> list[str]:
    with pytest.raises(SpecError) as e:
        if not isinstance(path_or_data, Path):
            parse_spec(path_or_data, **kwargs)
        else:
            load_spec(path_or_data)
    assert str(e.value) == "\n".join(e.value.problems)
    return e.value.problems


def fake_tiny_imagenet(root: Path) -> Path:
    """A raw Tiny ImageNet directory as check_dataset recognises it (wnids.txt and train/)."""
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("n01443537\n")
    (root / "train").mkdir()
    return root


def test_paper_like_spec_parses(tmp_path):
    spec = load_spec(write(tmp_path, PAPER))
    assert isinstance(spec, SweepSpec)
    assert (spec.name, spec.model, spec.dataset) == ("paper", "resnet50", "builtin:digits")
    assert list(spec.studies) == ["norms", "batch_size", "groups", "channels_per_group"]
    assert spec.studies["groups"].groups == [64, 32, 16, 8, 4, 2, 1]
    assert spec.studies["channels_per_group"].channels_per_group == [64, 32, 16, 8, 4, 2, 1]
    assert spec.studies["norms"].groups is None
    assert spec.train_settings() == TrainSettings(epochs=100, base_lr=0.1, base_batch=256, momentum=0.9,
                                                  weight_decay=1e-4, augment=True)
    assert spec.defaults_for_gn() == ("groups", 32)


@pytest.mark.parametrize("name", ["paper", "seed", "demo"])
def test_shipped_sweeps_are_valid(name, tmp_path, monkeypatch):
    """The shipped specs validate; their relative dataset path resolves against the working directory."""
    fake_tiny_imagenet(tmp_path / "data" / "tiny-imagenet-200")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(ROOT / "sweeps" / f"{name}.yaml")
    assert spec.name == name


def test_paper_3seeds_is_the_paper_sweep_with_more_seeds_where_effects_are_small(tmp_path, monkeypatch):
    """One sweep (same name and fingerprint): launched after paper.yaml it runs only seeds 1 and 2, where the
    paper's effects are small; the batch-size study keeps one seed."""
    fake_tiny_imagenet(tmp_path / "data" / "tiny-imagenet-200")
    monkeypatch.chdir(tmp_path)
    paper, more = load_spec(ROOT / "sweeps" / "paper.yaml"), load_spec(ROOT / "sweeps" / "paper-3seeds.yaml")
    assert (more.name, more.fingerprint()) == (paper.name, paper.fingerprint()) and paper.seeds == more.seeds == [0]
    assert {n: s.seeds for n, s in more.studies.items()} == {"norms": [0, 1, 2], "batch_size": None,
                                                             "groups": [0, 1, 2], "channels_per_group": [0, 1, 2]}
    assert more.model_copy(update={"studies": {n: s.model_copy(update={"seeds": None})
                                               for n, s in more.studies.items()}}) == paper


def test_seeds_are_a_count_or_a_list():
    """``seeds: 3`` is seeds 0, 1, 2, for the spec or one study; a list is kept as written (its trial keys and
    fingerprint unchanged); a bad count is one line naming the field."""
    assert parse_spec({**MINIMAL, "seeds": 3}).seeds == [0, 1, 2]
    assert parse_spec({**MINIMAL, "seeds": [7, 3]}).seeds == [7, 3]
    assert parse_spec({**MINIMAL, "seeds": [0]}).fingerprint() == parse_spec(MINIMAL).fingerprint()
    study = parse_spec({**MINIMAL, "studies": {"s": {"norm": ["bn"], "batch_size": [32], "seeds": 2}}})
    assert study.studies["s"].seeds == [0, 1] and study.seeds == [0]
    for bad, why in [(0, "a count of seeds must be 1 to 100, got 0"), (-2, "a count of seeds must be 1 to 100, got -2"),
                     (101, "a count of seeds must be 1 to 100, got 101"),
                     (2**300, "a count of seeds must be 1 to 100, got a huge integer"),
                     ("3", "must be a count of seeds (seeds: 3 is 0, 1, 2) or a list of them, got the string '3'"),
                     (True, "must be a count of seeds (seeds: 3 is 0, 1, 2) or a list of them, got the boolean true"),
                     ([], "must not be empty"), ([1, 1], "1 is listed twice")]:
        assert problems({**MINIMAL, "seeds": bad}) == [f"<spec>: seeds: {why}"]
    assert problems({**MINIMAL, "studies": {"s": {"norm": ["bn"], "batch_size": [32], "seeds": 0}}}) == [
        "<spec>: studies.s.seeds: a count of seeds must be 1 to 100, got 0"]


def test_relative_dataset_resolves_against_cwd(tmp_path, monkeypatch):
    fake_tiny_imagenet(tmp_path / "here" / "tiny")
    data = {**MINIMAL, "dataset": "tiny"}
    monkeypatch.chdir(tmp_path)
    assert any(line.startswith("<spec>: dataset: ") for line in problems(data))
    monkeypatch.chdir(tmp_path / "here")
    assert parse_spec(data).dataset == "tiny"


def test_defaults_apply():
    spec = parse_spec(MINIMAL)
    assert spec.train_settings() == TrainSettings()
    assert spec.seeds == [0]
    assert spec.retries == 2
    assert spec.replicas == 1
    assert spec.max_trials == 1000
    assert spec.resources_for(32) == {"cpu": 1, "gpu": 0}
    assert spec.defaults_for_gn() == ("groups", 8)  # resnet8's 16-channel layers: the authors' G = 8
    assert parse_spec({**MINIMAL, "model": "resnet50"}).defaults_for_gn() == ("groups", 32)
    assert parse_spec({**MINIMAL, "defaults": {"channels_per_group": 4}}).defaults_for_gn() == \
        ("channels_per_group", 4)
    partial = parse_spec({**MINIMAL, "train": {"epochs": 3, "base_lr": 1}})
    assert partial.train_settings() == TrainSettings(epochs=3, base_lr=1.0)


def test_ints_are_fine_where_numbers_are_expected():
    spec = parse_spec({**MINIMAL, "train": {"weight_decay": 0, "momentum": 0}, "resources": {"cpu": 2, "gpu": 1}})
    assert spec.train.weight_decay == 0 and spec.resources_for(32) == {"cpu": 2, "gpu": 1}


def test_fingerprint():
    spec = parse_spec(MINIMAL)
    assert spec.fingerprint() == {
        "model": "resnet8", "dataset": "builtin:digits", "replicas": 1, "train.epochs": 100, "train.base_lr": 0.1,
        "train.base_batch": 256, "train.momentum": 0.9, "train.weight_decay": 1e-4, "train.augment": True}
    # Studies, seeds, resources and retries may change between launches of one sweep; training settings may not.
    other_grid = parse_spec({**MINIMAL, "studies": {"t": {"norm": ["ln"], "batch_size": [2, 4]}}, "seeds": [1, 2],
                             "resources": {"cpu": 2}, "retries": 0})
    assert other_grid.fingerprint() == spec.fingerprint()
    assert parse_spec({**MINIMAL, "train": {"epochs": 5}}).fingerprint()["train.epochs"] == 5
    assert parse_spec({**MINIMAL, "replicas": 2}).fingerprint() != spec.fingerprint()


def test_resources_for_with_by_batch_size(tmp_path):
    spec = load_spec(write(tmp_path, PAPER))
    assert spec.resources_for(32) == {"cpu": 4, "gpu": 1}
    assert spec.resources_for(2) == {"cpu": 4, "gpu": 0.25}
    assert spec.resources_for(4) == {"cpu": 2, "gpu": 0.5}
    assert spec.batch_sizes() == [2, 4, 8, 16, 32]
    assert spec.model_copy(update={"replicas": 2}).trial_resources(32) == {"CPU": 4.0, "GPU": 2.0}  # GPU per replica


def test_cluster_feasibility(tmp_path):
    spec = load_spec(write(tmp_path, PAPER))
    assert spec_problems_for_cluster(spec, [{"CPU": 4.0, "GPU": 1.0}]) == []
    assert spec_problems_for_cluster(spec, [{"CPU": 2.0}, {"CPU": 16.0, "GPU": 8.0, "memory": 1e9}]) == []
    assert spec_problems_for_cluster(spec, [{"CPU": 2.0, "GPU": 0.0}]) == [
        "resources: a trial needs 4 CPU and 1 GPU but the largest node has 2 CPU and 0 GPU",
        "resources.by_batch_size.2: a trial of batch size 2 needs 4 CPU and 0.25 GPU but the largest node has 2 CPU "
        "and 0 GPU",
        "resources.by_batch_size.4: a trial of batch size 4 needs 2 CPU and 0.5 GPU but the largest node has 2 CPU "
        "and 0 GPU",
    ]
    # Only the small-batch override fits on a 2-CPU GPU node.
    assert spec_problems_for_cluster(spec, [{"CPU": 2.0, "GPU": 1.0}]) == [
        "resources: a trial needs 4 CPU and 1 GPU but the largest node has 2 CPU and 1 GPU",
        "resources.by_batch_size.2: a trial of batch size 2 needs 4 CPU and 0.25 GPU but the largest node has 2 CPU "
        "and 1 GPU",
    ]
    split = spec_problems_for_cluster(spec, [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}])
    assert split[0] == "resources: a trial needs 4 CPU and 1 GPU but no node has both (the most on one node: 8 CPU, " \
                       "1 GPU)"
    assert spec_problems_for_cluster(spec, []) == ["resources: the cluster has no alive nodes"]


def test_replicas_multiply_gpus():
    spec = parse_spec({**MINIMAL, "resources": {"cpu": 1, "gpu": 1}, "replicas": 2})
    assert spec_problems_for_cluster(spec, [{"CPU": 4.0, "GPU": 2.0}]) == []
    assert spec_problems_for_cluster(spec, [{"CPU": 4.0, "GPU": 1.0}]) == [
        "resources: a trial needs 1 CPU and 2 GPU but the largest node has 4 CPU and 1 GPU"]


def test_cpu_only_trials_fit_cpu_nodes():
    assert spec_problems_for_cluster(parse_spec(MINIMAL), [{"CPU": 1.0}]) == []


def test_all_problems_reported_together(tmp_path):
    path = write(tmp_path, """
        name: three
        dataset: builtin:digits
        model: resnet8
        train: {epochs: 0}
        studies:
          s: {norm: [gn], batch_size: [32], groups: [3]}
        retries: -1
        """)
    lines = problems(path)
    assert lines == [
        f"{path}: train.epochs: must be >= 1, got 0",
        f"{path}: retries: must be >= 0, got -1",
    ]  # the grouping is checked once the structure is valid
    path = write(tmp_path, """
        name: three
        dataset: builtin:digits
        model: resnet8
        studies:
          s: {norm: [gn], batch_size: [32], groups: [3]}
          t: {norm: [bn], batch_size: [8], channels_per_group: [4]}
        defaults: {groups: 32}
        """)
    assert problems(path) == [
        f"{path}: defaults.groups: 32 does not divide the 16 channels of resnet8",
        f"{path}: studies.s.groups: 3 does not divide the 16 channels of resnet8",
        f"{path}: studies.t.channels_per_group: only gn takes channels_per_group; this study also has bn (put them in "
        f"a study of their own)",
    ]


def test_structural_and_dataset_problems_together(tmp_path):
    path = write(tmp_path, """
        name: a/b
        dataset: no/such/dir
        model: resnet8
        train: {epochs: "100"}
        studies: {s: {norm: [gn], batch_size: [32]}}
        """)
    lines = problems(path)
    assert [line.split(": ")[1] for line in lines] == ["name", "train.epochs", "dataset"]
    assert all(line.startswith(f"{path}: ") and "\n" not in line for line in lines)


def test_parse_spec_names_its_source():
    assert problems({**MINIMAL, "model": "vgg"}, source="mine") == [
        "mine: model: must be one of seed_cnn, resnet8, resnet20, resnet18 or resnet50, got the string 'vgg'"]
    assert problems([1, 2]) == ["<spec>: (top level): a sweep spec is a mapping of fields (name, dataset, model, "
                                "studies, ...), got a list"]


def test_unknown_field_lists_the_known_ones():
    lines = problems({**MINIMAL, "train": {"epoch": 3}})
    assert lines == ["<spec>: train.epoch: unknown field; expected one of epochs, base_lr, base_batch, momentum, "
                     "weight_decay, augment, precision"]


def test_max_trials_counts_distinct_trials(tmp_path):
    """The paper's studies share trials (bn-b32, gn-b32-g32): 25 distinct trials, each run once."""
    text = PAPER.replace("retries: 2", "retries: 2\nmax_trials: 25")
    assert load_spec(write(tmp_path, text)).max_trials == 25
    path = write(tmp_path, text.replace("max_trials: 25", "max_trials: 24"))
    assert problems(path) == [f"{path}: studies: the grids expand to 25 trials, more than max_trials 24"]


def test_by_batch_size_must_name_a_batch_size_of_the_grid():
    lines = problems({**MINIMAL, "resources": {"gpu": 1, "by_batch_size": {3: {"gpu": 0.5}}}})
    assert lines == ["<spec>: resources.by_batch_size.3: no study has batch size 3"]


def test_fractional_gpu_with_replicas():
    lines = problems({**MINIMAL, "resources": {"gpu": 0.5}, "replicas": 2})
    assert len(lines) == 1 and lines[0].startswith("<spec>: resources.gpu: each of the 2 replicas needs a whole GPU")


def test_model_default_groups_checked_against_the_model():
    """resnet8's default (G = 8) divides its 16-channel layers; the paper's 32 does not."""
    assert parse_spec(MINIMAL).model == "resnet8"
    assert problems({**MINIMAL, "defaults": {"groups": 32}}) == [
        "<spec>: defaults.groups: 32 does not divide the 16 channels of resnet8"]


def test_in_and_ln_need_no_grouping():
    spec = parse_spec({**MINIMAL, "model": "seed_cnn", "studies": {"s": {"norm": ["in", "ln", "none"],
                                                                         "batch_size": [4]}}})
    assert spec.studies["s"].norm == ["in", "ln", "none"]


def test_importing_the_spec_loads_neither_tensorflow_nor_ray():
    code = ("import sys, orchestrator.spec.file, orchestrator.launch.cluster; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'ray', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
