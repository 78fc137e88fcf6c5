"""The GPU specs: the paper's 8-GPU protocol validates and plans, the one-GPU variants pack small batches with
fractions that hold their estimated peak memory, precision is a spec setting, and too small a fraction warns."""
from pathlib import Path

import pytest

from orchestrator.cost.packing import memory_warnings
from orchestrator.spec.plan import plan_trials
from orchestrator.spec.problems import SpecError
from orchestrator.spec.file import load_spec
from orchestrator.spec.validation import parse_spec

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
MINIMAL = {"name": "m", "dataset": "builtin:digits", "model": "resnet50",
           "studies": {"s": {"norm": ["bn", "gn"], "batch_size": [32, 2]}}}


@pytest.fixture
def in_a_project(tmp_path, monkeypatch):
    """A working directory where the shipped specs' data/tiny-imagenet-200 exists (a raw tree's markers)."""
    root = tmp_path / "data" / "tiny-imagenet-200"
    (root / "train").mkdir(parents=True)
    (root / "wnids.txt").write_text("n01443537\n")
    monkeypatch.chdir(tmp_path)


def test_paper_8gpu_is_the_papers_protocol(in_a_project):
    spec = load_spec(SWEEPS / "paper-8gpu.yaml")
    trials = plan_trials(spec)
    one_gpu = plan_trials(load_spec(SWEEPS / "paper.yaml"))
    assert spec.replicas == 8 and spec.model == "resnet50" and spec.train.epochs == 100
    assert len(trials) == len(one_gpu)  # the same studies, trial for trial
    for t in trials:
        c = t.config
        assert c.replicas == 8 and t.key.endswith("-r8-s0")
        assert c.lr == pytest.approx(0.1 * 8 * c.batch_size / 256)  # 0.1 at 32 images per GPU, as the paper
        assert spec.resources_for(c.batch_size)["gpu"] == 1  # one whole GPU per replica: BN per replica
    assert {t.config.batch_size for t in trials} == {32, 16, 8, 4, 2}
    assert [c.lr for c in (t.config for t in one_gpu) if c.batch_size == 32][0] == pytest.approx(0.1 * 32 / 256)


@pytest.mark.parametrize("name", ["paper", "paper-3seeds", "paper-8gpu", "seed"])
def test_shipped_gpu_fractions_hold_the_estimated_peak(name, in_a_project):
    spec = load_spec(SWEEPS / f"{name}.yaml")
    assert memory_warnings(spec) == []
    if name != "paper-8gpu":
        assert spec.resources_for(2)["gpu"] < spec.resources_for(32)["gpu"] or spec.resources_for(32)["gpu"] < 1


def test_a_fraction_below_the_estimated_need_warns():
    small = parse_spec({**MINIMAL, "resources": {"gpu": 1, "gpu_memory_gib": 16, "by_batch_size": {2: {"gpu": 0.125}}}})
    assert memory_warnings(small) == []  # digits at 16x16: ResNet-50 needs little
    tiny = parse_spec({**MINIMAL, "resources": {"gpu": 1, "gpu_memory_gib": 4, "by_batch_size": {2: {"gpu": 0.125}}}})
    assert memory_warnings(tiny) == ["resources.by_batch_size.2: gpu 0.125 of a 4 GiB GPU gives batch size 2 a 0 MB "
                                     "memory limit, below the estimated peak of 631 MB for resnet50 at 16x16 in "
                                     "float32; its trials may run out of memory"]
    big = parse_spec({**MINIMAL, "resources": {"gpu": 0.25, "gpu_memory_gib": 16}})
    warnings = memory_warnings(big.model_copy(update={"dataset": "data/tiny-imagenet-200"}))  # 64x64
    assert len(warnings) == 1 and warnings[0].startswith("resources.gpu: gpu 0.25 of a 16 GiB GPU gives batch "
                                                         "size 32 a 3,584 MB memory limit, below the estimated peak")
    assert memory_warnings(parse_spec({**MINIMAL, "resources": {"gpu": 0}})) == []


def test_precision_is_a_training_setting_of_the_spec():
    spec = parse_spec({**MINIMAL, "train": {"precision": "mixed_bfloat16"}})
    assert spec.train_settings().precision == "mixed_bfloat16"
    assert {t.key for t in plan_trials(spec)} >= {"bn-b32-s0-bf16", "gn-b2-g32-s0-bf16"}
    assert spec.fingerprint()["train.precision"] == "mixed_bfloat16"
    assert "train.precision" not in parse_spec(MINIMAL).fingerprint()  # sweeps recorded before it still match
    with pytest.raises(SpecError) as e:
        parse_spec({**MINIMAL, "train": {"precision": "fp8"}})
    assert e.value.problems == ["<spec>: train.precision: must be one of float32, mixed_bfloat16 or mixed_float16, "
                                "got the string 'fp8'"]
