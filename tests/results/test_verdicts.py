"""Verdicts a scientist can trust: each claim's interval decides it, never a fixed threshold on a point estimate.
Hand-made sweeps (real Parquet through the report) with known seeds, epochs and validation sizes."""
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from results import store
from results.records import SweepRecord
from results.report import TOPICS, write_report
from results.uncertainty import MODEL, Runs, contrast
from test_analysis import flat, make_paper_like, write_trial

TIGHT = 0.05  # epoch-to-epoch jitter of the hand-made runs: sd 0.08 points, far below any effect tested here


def batch_sweep(sweep: Path, errors: dict[tuple[str, int], list[float]], *, val_images: int | None = None,
                epochs: int = 6, status: dict[tuple[str, int], str] | None = None) -> Path:
    """A BN/GN batch-size study: ``errors[(norm, batch)]`` holds one final error per seed (seeds 0, 1, ...)."""
    keys = []
    for (norm, batch), per_seed in errors.items():
        for seed, err in enumerate(per_seed):
            key = f"{norm}-b{batch}{'-g32' if norm == 'gn' else ''}-s{seed}"
            write_trial(sweep, key, norm, batch, flat(err, n=epochs, spread=TIGHT)[-epochs:], studies=("batch",),
                        groups=32 if norm == "gn" else None, seed=seed,
                        status=(status or {}).get((norm, batch), "completed"))
            keys.append(key)
    images = {"train": 100_000, "val": val_images} if val_images else {}
    store.write_sweep(sweep, SweepRecord(sweep.name, {}, tuple(keys), {"batch": "batch_size"}, images))
    return sweep


def finding(report: Path, topic: str, study: str = "batch") -> str:
    """The Findings line of one claim (the report before verdicts had one line per claim as well)."""
    text = report.read_text()
    section = text[text.index("## Findings"):text.index("## Study")]
    line = next(ln for ln in section.splitlines() if ln.startswith(f"- Study `{study}`, {TOPICS[topic]}:"))
    return line


def claims_table(report: Path) -> pd.DataFrame:
    return pd.read_parquet(report.parent / "claims.parquet")


B32 = {("bn", 32): [30.0, 30.1, 29.9], ("gn", 32): [31.0, 31.1, 30.9]}


def test_a_small_difference_whose_seeds_disagree_is_inconclusive(tmp_path):
    """GN is 0.6 points below BN at batch 2 on average, but the seeds disagree (-4.0, +2.5, -0.3): the old rule
    (a difference over 0.5 points is a direction) called this reproduced."""
    sweep = batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [40.0, 37.0, 41.8], ("gn", 2): [36.0, 39.5, 41.5]})
    report = write_report(sweep)
    line = finding(report, "small_batch")
    assert "**inconclusive**" in line and "reproduced" not in line, line
    assert "GN b2 - BN b2: -0.6 points [" in line and "3 seeds, paired over 3 seeds" in line
    row = claims_table(report).set_index("topic").loc["small_batch"]
    assert row.verdict == "inconclusive" and row.low < 0 < row.high and row.seeds == 3
    per_seed = [36.0 - 40.0, 39.5 - 37.0, 41.5 - 41.8]
    scipy_ci = stats.ttest_1samp(per_seed, 0).confidence_interval(0.95)
    assert (row.low, row.high) == pytest.approx((scipy_ci.low, scipy_ci.high))  # the paired t-interval decides
    # a 0.6-point gap against a per-seed sd of 3.3 points: 1.96 x 3.3 / sqrt(k) < 0.6 needs k > 110
    assert row.would_decide == "more than 100 seeds per configuration would be needed"


@pytest.mark.parametrize("gn_b2, verdict", [([30.0, 30.2, 29.9], "reproduced"), ([54.0, 54.3, 53.9], "contradicted")])
def test_a_large_difference_with_tight_seeds_decides_either_way(tmp_path, gn_b2, verdict):
    """GN 12 points below BN at batch 2 (the paper's direction), or 12 points above it (reversed)."""
    report = write_report(batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [42.0, 42.1, 41.9], ("gn", 2): gn_b2},
                                      val_images=10_000))
    line = finding(report, "small_batch")
    assert f"**{verdict}**" in line and "would decide" not in line, line
    row = claims_table(report).set_index("topic").loc["small_batch"]
    assert row.verdict == verdict and abs(row.measured) == pytest.approx(12.0, abs=0.1)
    assert row.paper == pytest.approx(24.1 - 34.7) and row.images == 10_000
    assert (row.high < 0) if verdict == "reproduced" else (row.low > 0)


def test_fewer_epochs_than_the_final_error_rule_is_too_early(tmp_path):
    """Every trial completed, with 2 epochs: the median of the last 5 does not exist yet, whatever the gaps."""
    report = write_report(batch_sweep(tmp_path / "batch", {("bn", 32): [30.0], ("gn", 32): [31.0], ("bn", 2): [60.0],
                                                           ("gn", 2): [31.0]}, epochs=2))
    table = claims_table(report)
    assert set(table["verdict"]) == {"too early"} and set(table["epochs"]) == {2}
    assert "its trials have 2 epochs; the final error needs 5" in finding(report, "batch_spread")


def test_a_trial_still_running_makes_its_claims_too_early(tmp_path):
    """GN at batch 2 is running (with 6 epochs and a clear lead): the claims that compare it wait; BN's own rise,
    whose trials have all ended, is decided."""
    report = write_report(batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [42.0, 42.1, 41.9],
                                                           ("gn", 2): [30.0, 30.2, 29.9]},
                                      status={("gn", 2): "running"}))
    table = claims_table(report).set_index("claim")
    assert finding(report, "small_batch").count("**too early**") == 1
    assert "wait for 3 trials not finished yet (running, pending or interrupted)" in finding(report, "small_batch")
    assert table.loc["BN's error rises from batch 32 to 2", "verdict"] == "reproduced"
    assert table.loc["BN's error grows more than GN's from batch 32 to 2", "verdict"] == "too early"
    top = table[table["part_of"].isna()].set_index("topic")
    assert top.loc["batch_spread", "verdict"] == "too early" and top.loc["gn_flat", "verdict"] == "too early"


def test_a_configuration_not_started_holds_its_claims_back(tmp_path):
    """BN at batch 2 is pending with no epoch: the batch claims wait for it rather than shrinking to the batches
    measured so far; its figures read "not measured yet"."""
    sweep = batch_sweep(tmp_path / "batch", {**B32, ("gn", 2): [30.0, 30.2, 29.9], ("bn", 8): [35.0, 35.1, 34.9],
                                             ("gn", 8): [30.0, 30.2, 29.9]})
    write_trial(sweep, "bn-b2-s0", "bn", 2, [], studies=("batch",), status="pending")
    report = write_report(sweep)
    top = claims_table(report).query("part_of.isna()").set_index("topic")
    assert top.loc["batch_spread", "verdict"] == top.loc["small_batch", "verdict"] == "too early"
    assert top.loc["small_batch", "quantity"] == "GN b2 - BN b2" and pd.isna(top.loc["small_batch", "measured"])
    assert top.loc["gn_flat", "verdict"] == "reproduced"  # GN's trials have all ended
    assert "GN's error is 30.0% and BN's not measured yet: GN against BN is not measured yet" in report.read_text()


def test_a_configuration_whose_trials_all_failed_is_inconclusive(tmp_path):
    sweep = batch_sweep(tmp_path / "batch", {**B32, ("gn", 2): [30.0, 30.2, 29.9]})
    write_trial(sweep, "bn-b2-s0", "bn", 2, [70, 60], studies=("batch",), status="failed")
    row = claims_table(write_report(sweep)).set_index("topic").loc["small_batch"]
    assert row.verdict == "inconclusive" and row.would_decide == "no completed run of BN b2 (failed or diverged)"


@pytest.mark.parametrize("gn_b2, val_images, verdict, decide", [
    ([27.0, 35.5, 31.4], None, "inconclusive", r"~\d+ seeds per configuration would decide"),  # seeds disagree
    ([31.3, 31.4, 31.2], None, "reproduced", None),
    ([31.3, 31.4, 31.2], 10_000, "reproduced", None),  # the val set's +-1.27 on the change fits in +-2
    # 500 images: +-5.74 on the change; to fit 2 - 0.3 = 1.7 it needs 500 x (5.74 / 1.7)^2 = 5,700 images, or more
    ([31.3, 31.4, 31.2], 500, "inconclusive", r"^~5,800 val images \(this sweep has 500\) would decide$"),
])
def test_no_change_needs_the_whole_interval_within_the_tolerance(tmp_path, gn_b2, val_images, verdict, decide):
    """GN's error at batch 2 is 0.3 points above its error at batch 32 each time: a small point estimate. It is a
    no-change claim only when its interval fits within +-2 points (TOST), not because 0.3 is small."""
    report = write_report(batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [42.0, 42.1, 41.9], ("gn", 2): gn_b2},
                                      val_images=val_images))
    row = claims_table(report).set_index("topic").loc["gn_flat"]
    assert row.measured == pytest.approx(0.3, abs=0.05) and row.tolerance == 2.0
    assert row.verdict == verdict and (row.low >= -2 and row.high <= 2) == (verdict == "reproduced")
    if decide:
        assert re.search(decide, row.would_decide), row.would_decide
    line = finding(report, "gn_flat")
    assert f"**{verdict}**" in line and "tolerance ±2 points" in line


FINDING = re.compile(
    r"^(?P<part>  )?- (?:Study `(?P<study>[^`]+)`, (?P<topic>[^:]+): )?(?P<claim>[^:]+): \*\*(?P<verdict>[^*]+)\*\*; "
    r"(?P<quantity>[^:]+): (?:(?P<measured>[+-]\d+\.\d) points \[(?P<low>[+-]\d+\.\d), (?P<high>[+-]\d+\.\d)\]|"
    r"not measured)(?: \(paper (?P<paper>[+-]\d+\.\d)\))?; (?P<seeds>\d+) seeds?(?:, [^;]+)?"
    r"(?:; tolerance ±(?P<tolerance>[\d.]+) points)?(?:; (?P<decide>.+))?$")


def _number(value) -> str | None:
    return None if pd.isna(value) else f"{value:+.1f}"


def _text(value) -> str | None:
    return None if pd.isna(value) else value


def test_claims_table_rows_are_the_findings(tmp_path):
    """Two seeds, one trial failed and one still running: every row of claims.parquet is a Findings line with the
    same claim, verdict, numbers, seeds and what would decide it, in the same order."""
    sweep = make_paper_like(tmp_path / "paper", seeds=(0, 1))
    write_trial(sweep, "gn-b4-g32-s0", "gn", 4, [70, 60, 55], studies=("batch_size",), groups=32, status="failed")
    write_trial(sweep, "bn-b4-s0", "bn", 4, [80, 70], studies=("batch_size",), status="running")
    report = write_report(sweep)
    text = report.read_text()
    section = text[text.index("## Findings"):text.index("## Study")]
    lines = [m for ln in section.splitlines() if ln.startswith(("- Study", "  - ")) for m in [FINDING.match(ln)]]
    assert all(lines), [ln for ln in section.splitlines() if ln.startswith(("- Study", "  - "))]
    table = claims_table(report)
    assert len(table) == len(lines) > 10 and set(table["verdict"]) <= {"reproduced", "contradicted", "inconclusive",
                                                                       "too early"}
    for row, m in zip(table.itertuples(), lines):
        assert (m["claim"], m["verdict"], m["quantity"]) == (row.claim, row.verdict, row.quantity)
        assert (m["measured"], m["low"], m["high"]) == (_number(row.measured), _number(row.low), _number(row.high))
        assert m["paper"] == _number(row.paper) and int(m["seeds"]) == row.seeds
        assert m["decide"] == _text(row.would_decide) and bool(m["part"]) == (_text(row.part_of) is not None)
        assert (m["tolerance"] is None) == pd.isna(row.tolerance)
        if m["study"]:
            assert (m["study"], m["topic"]) == (row.study, TOPICS[row.topic])
    assert "too early" in set(table["verdict"])  # the batch study waits on bn-b4-s0
    assert list(table.columns)[:11] == ["claim", "study", "topic", "measured", "low", "high", "paper", "verdict",
                                        "seeds", "epochs", "would_decide"]


def test_header_states_the_uncertainty_model_and_the_val_size(tmp_path):
    sweep = batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [42.0, 42.1, 41.9], ("gn", 2): [30.0, 30.2, 29.9]},
                        val_images=10_000)
    text = write_report(sweep).read_text()
    assert "- Seeds per configuration: 3; validation set: 10,000 images" in text
    assert "t-interval over the per-seed final errors" in text and "binomial sampling error" in text
    old = tmp_path / "old"
    write_trial(old, "bn-b32-s0", "bn", 32, flat(30.0))
    text = write_report(old).read_text()
    assert "- Seeds per configuration: 1 (the seeds' spread is not measured); validation set: val size unknown" in text


def test_val_size_from_plan_json_for_sweeps_launched_before_sweep_json_held_it(tmp_path):
    sweep = batch_sweep(tmp_path / "batch", {**B32, ("bn", 2): [42.0, 42.1, 41.9], ("gn", 2): [30.0, 30.2, 29.9]})
    (sweep / "plan.json").write_text('{"val_images": 10000, "trials": {}}')
    report = write_report(sweep)
    assert "validation set: 10,000 images" in report.read_text()
    assert set(claims_table(report).query("topic != 'train_err'")["images"]) == {10_000}


def test_readme_states_the_reports_uncertainty_model():
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert " ".join(MODEL.split()) in readme


def test_binomial_floor_matches_the_worked_numbers():
    """statistics.md: p = 0.75 on 500 images is 1.9 points of standard error; p = 0.40 on 10,000 is 0.49."""
    for err, n, se in ((75.0, 500, 1.94), (40.0, 10_000, 0.49)):
        iv = contrast([(Runs({0: err}, 0.0, n), 1.0)])
        assert iv.half_width == pytest.approx(1.96 * se, abs=0.02) and iv.method == "1 seed: seed spread not measured"


def test_intervals_are_paired_only_over_shared_seeds():
    a = Runs({0: 30.0, 1: 32.0, 2: 31.0}, 0.0, None)
    b = Runs({0: 35.0, 1: 36.5, 2: 35.9}, 0.0, None)
    paired = contrast([(b, 1.0), (a, -1.0)])
    ref = stats.ttest_rel([35.0, 36.5, 35.9], [30.0, 32.0, 31.0]).confidence_interval(0.95)
    assert paired.method == "paired over 3 seeds" and (paired.low, paired.high) == pytest.approx((ref.low, ref.high))
    c = Runs({3: 35.0, 4: 36.5, 5: 35.9}, 0.0, None)
    unpaired = contrast([(c, 1.0), (a, -1.0)])
    ref = stats.ttest_ind([35.0, 36.5, 35.9], [30.0, 32.0, 31.0]).confidence_interval(0.95)
    assert unpaired.method.startswith("unpaired")
    assert (unpaired.low, unpaired.high) == pytest.approx((ref.low, ref.high))
    floor = contrast([(Runs({0: 30.0, 1: 30.0}, 2.0, None), 1.0)])  # seeds agree, epochs do not: never narrower
    assert floor.half_width == pytest.approx(stats.norm.ppf(0.975) * 2.0 / math.sqrt(2))
