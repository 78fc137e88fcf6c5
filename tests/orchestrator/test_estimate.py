"""Cost before launch: the dry run of the paper's sweep with no data, the FLOP-based estimate, longest-first
ordering and the list-scheduling simulation behind the wall-time figure."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cost.estimate import Estimator, data_shape, forward_macs
from orchestrator.spec.plan import plan_trials
from orchestrator.cost.schedule import Job, longest_first, lower_bound, makespan, simulate
from orchestrator.spec.file import load_spec
from trainer.data.shapes import DIGITS, TINY_IMAGENET

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "sweeps" / "paper.yaml"

DRY_RUN = """
import sys, runpy
sys.argv = ["gnsweep", "launch", sys.argv[1], "--dry-run", *sys.argv[2:]]
try:
    runpy.run_module("orchestrator.cli", run_name="__main__")
except SystemExit as e:
    code = e.code
print("IMPORTED", "tensorflow" in sys.modules, "keras" in sys.modules, "ray" in sys.modules, "EXIT", code)
"""


def dry_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRY_RUN, str(PAPER), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_dry_run_of_the_paper_sweep_without_data_prints_its_cost(tmp_path):
    run = dry_run(tmp_path, "--gpus", "8", "--device", "A100")
    assert not (tmp_path / "data").exists()
    out = run.stdout
    assert "IMPORTED False False False EXIT 0" in out, run.stderr[-2000:]
    assert "the known sizes of Tiny ImageNet-200: 100,000 train / 10,000 val images, 64x64, 200 classes" in out
    assert "ROUGH estimate" in out and "assumed 25 TFLOP/s" in out
    total = re.search(r"total: 23 runs, ([\d,.]+) A100 GPU-hours \(2 trials share another's run\)", out)
    assert total and 50 < float(total.group(1).replace(",", "")) < 1000, out
    # one seed: one more costs what the sweep costs
    assert f"seeds: 1 per configuration; one more seed in every study adds 23 runs, {total.group(1)} A100 " \
           f"GPU-hours" in out
    wall = re.search(r"wall time on 8 GPUs \(asked; CPUs assumed not to limit\): ([\d.]+) h longest first .*"
                     r"lower bound ([\d.]+) h", out)
    assert wall and float(wall.group(2)) <= float(wall.group(1)) <= 1.34 * float(wall.group(2)), out
    assert re.search(r"longest trials: (bn-b2-s0|gn-b2-g32-s0) ", out)
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"(bn|gn|ln|in)-b\d+", line)}
    assert len(rows) == 25
    assert "= ln-b32-s0" in rows["gn-b32-g1-s0"] and "= in-b32-s0" in rows["gn-b32-cpg1-s0"]
    assert re.search(r"\d+(\.\d)? min +\d+(\.\d)? h", rows["bn-b2-s0"])


def test_dry_run_of_three_seeds_where_effects_are_small(tmp_path):
    run = subprocess.run([sys.executable, "-c", DRY_RUN, str(REPO / "sweeps" / "paper-3seeds.yaml"), "--gpus", "8",
                          "--device", "A100"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "EXIT 0" in run.stdout, run.stderr[-2000:]
    assert re.search(r"total: 53 runs, [\d,.]+ A100 GPU-hours", run.stdout), run.stdout[-2000:]
    assert re.search(r"seeds: 1 per configuration \(3 in norms, 3 in groups, 3 in channels_per_group\); one more "
                     r"seed in every study adds 23 runs, [\d.]+ A100 GPU-hours", run.stdout), run.stdout[-2000:]


def test_dry_run_on_this_machine_says_it_cannot_run_gpu_trials_here(tmp_path):
    run = dry_run(tmp_path)
    assert "EXIT 0" in run.stdout, run.stderr[-2000:]
    if "no GPU" in run.stdout:
        assert "cannot run there (a trial needs 4 CPU and 1 GPU); ask with --gpus N" in run.stdout


def test_data_shape_prefers_dataset_json(tmp_path, digits_dataset):
    assert data_shape("builtin:digits", tmp_path).source.startswith("the known sizes of the built-in digits")
    assert data_shape("builtin:digits", digits_dataset.parent).source == str(digits_dataset / "dataset.json")
    shape = data_shape(str(digits_dataset))
    assert (shape.train, shape.val, shape.image_size, shape.num_classes) == \
        (DIGITS.train, DIGITS.val, DIGITS.image_size, DIGITS.num_classes)
    assert shape.source.endswith("dataset.json")


def test_flop_count_of_resnet50_matches_the_known_figure():
    # ResNet-50 at 224x224 with the ImageNet stem is 4.1 G multiply-adds; this stem keeps 64x64 where that one has
    # 56x56 after the stem, so the body costs (64/56)^2 more
    macs, layers = forward_macs("resnet50", (64, 64), 1000)
    assert 4.1e9 * (64 / 56) ** 2 * 0.95 < macs < 4.1e9 * (64 / 56) ** 2 * 1.1
    assert layers == 54  # 53 convolutions (stem, 16 blocks x 3, 4 projections) and the classifier


def test_small_batches_cost_more_per_epoch_and_calibration_wins(tmp_path):
    spec = load_spec(PAPER, check_dataset=False)
    trials = {t.key: t for t in plan_trials(spec)}
    est = Estimator(TINY_IMAGENET, "NVIDIA H100 80GB HBM3")
    assert est.model.name == "H100"
    b2, b32 = (est.estimate(trials[k].config, 4) for k in ("gn-b2-g32-s0", "gn-b32-g32-s0"))
    assert b2.source == b32.source == "rough"
    assert b2.epoch_seconds > 2 * b32.epoch_seconds


def test_longest_first_orders_by_estimate_and_keeps_ties_in_order():
    jobs = [Job("a", 1, 1, 1), Job("b", 5, 1, 1), Job("c", 1, 1, 1), Job("d", 3, 1, 1)]
    assert [j.key for j in longest_first(jobs, lambda j: j.seconds)] == ["b", "d", "a", "c"]


def test_simulated_schedule_longest_first_beats_grid_order():
    # grid order puts the two long trials last: on 3 slots they start after the first short ones
    jobs = [Job(f"s{i}", 1.0, 1, 1) for i in range(4)] + [Job("l1", 4.0, 1, 1), Job("l2", 4.0, 1, 1)]
    nodes = [{"CPU": 8, "GPU": 3}]
    grid = makespan(simulate(jobs, nodes))
    lpt = makespan(simulate(longest_first(jobs, lambda j: j.seconds), nodes))
    assert grid == pytest.approx(5.0)
    assert lpt == pytest.approx(4.0) == lower_bound(jobs, 3)


def test_simulation_packs_fractional_gpus_and_skips_what_fits_nowhere():
    jobs = [Job(f"q{i}", 2.0, 1, 0.25) for i in range(4)] + [Job("huge", 1.0, 1, 8)]
    times = simulate(jobs, [{"CPU": 4, "GPU": 1}])
    assert set(times) == {"q0", "q1", "q2", "q3"}
    assert makespan(times) == pytest.approx(2.0)
