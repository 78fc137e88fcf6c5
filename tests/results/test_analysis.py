"""Tables and claims from small sweeps with known numbers, written as real Parquet with the sweep's schemas."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from results.claims import claims
from results.frames import incomplete_trials, study_table, trial_results
from results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from results.studies import find_studies, study_kind
from results.tables import markdown_table, table_markdown

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def write_trial(sweep_dir: Path, key: str, norm: str, batch: int, val_errs, *, studies=("norms",),
                status="completed", groups=None, cpg=None, seed=0, model="resnet8", train_errs=None, error=None,
                trial_row=True) -> None:
    """One trial's epochs (one Parquet file) and, unless ``trial_row`` is false, its trials row."""
    config = {"sweep": sweep_dir.name, "trial_key": key, "model": model, "norm": norm, "batch_size": batch,
              "groups": groups, "channels_per_group": cpg, "seed": seed}
    train_errs = train_errs or [v - 5 for v in val_errs]
    rows = [{**config, "epoch": i + 1, "train_loss": 1.0, "train_err": t, "val_loss": 1.0, "val_err": v,
             "val_err_top5": v / 2, "lr": 0.1, "epoch_seconds": 2.0, "images_per_second": 500.0, "attempt": 0,
             "node": "n1", "recorded_at": T0 + timedelta(minutes=i)}
            for i, (v, t) in enumerate(zip(val_errs, train_errs))]
    if rows:
        (sweep_dir / "epochs").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=EPOCH_SCHEMA), sweep_dir / "epochs" / f"{key}.parquet")
    if trial_row:
        (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
        row = {**config, "status": status, "epochs": len(rows), "final_val_err": None, "best_val_err": None,
               "error": error, "studies": list(studies), "attempts": 1, "started_at": T0, "ended_at": None,
               "train_seconds": 2.0 * len(rows)}
        pq.write_table(pa.Table.from_pylist([row], schema=TRIAL_SCHEMA), sweep_dir / "trials" / f"{key}.parquet")


def flat(err: float, n: int = 6, spread: float = 1.0) -> list[float]:
    """Val errors over n epochs whose median of the last five is ``err`` (their sd: 1.58 x ``spread``)."""
    return [90.0] * (n - 5) + [err + spread, err - spread, err, err + 2 * spread, err - 2 * spread]


def make_paper_like(sweep_dir: Path, *, seeds=(0,)) -> Path:
    """Norms at batch 32, BN/GN at 32/8/2 (BN degrades, GN flat), groups and channels per group, all completed."""
    for s in seeds:
        jitter = 0.2 * s
        for norm, err in {"bn": 30.0, "ln": 33.0, "in": 36.0}.items():
            studies = ("norms", "batch_size") if norm == "bn" else ("norms",)
            write_trial(sweep_dir, f"{norm}-b32-s{s}", norm, 32, flat(err + jitter), studies=studies, seed=s)
        write_trial(sweep_dir, f"gn-b32-g32-s{s}", "gn", 32, flat(31.0 + jitter),
                    studies=("norms", "batch_size", "groups"), groups=32, seed=s)
        for b, bn_err, gn_err in ((8, 32.0, 31.2), (2, 42.0, 31.4)):
            write_trial(sweep_dir, f"bn-b{b}-s{s}", "bn", b, flat(bn_err + jitter), studies=("batch_size",), seed=s)
            write_trial(sweep_dir, f"gn-b{b}-g32-s{s}", "gn", b, flat(gn_err + jitter), studies=("batch_size",),
                        groups=32, seed=s)
        for g, err in ((8, 30.5), (1, 33.5)):
            write_trial(sweep_dir, f"gn-b32-g{g}-s{s}", "gn", 32, flat(err + jitter), studies=("groups",), groups=g,
                        seed=s)
        for c, err in ((16, 30.8), (4, 31.5), (1, 36.5)):
            write_trial(sweep_dir, f"gn-b32-c{c}-s{s}", "gn", 32, flat(err + jitter), studies=("cpg",), cpg=c,
                        seed=s)
    return sweep_dir


def load(sweep_dir: Path):
    results = trial_results(pd.read_parquet(sweep_dir / "epochs"), pd.read_parquet(sweep_dir / "trials"))
    return results, find_studies(results)


def by_topic(claims):
    return {(c.study, c.topic): c for c in claims}


def test_final_error_is_the_median_of_the_last_five_epochs(tmp_path):
    write_trial(tmp_path, "bn-b32-s0", "bn", 32, [80, 70, 10, 50, 12, 11, 13])
    write_trial(tmp_path, "gn-b32-g8-s0", "gn", 32, [60, 40, 30], status="running", groups=8)
    results, _ = load(tmp_path)
    r = results.set_index("trial_key")
    assert r.loc["bn-b32-s0", "final_val_err"] == 12.0 and r.loc["bn-b32-s0", "complete"]
    assert r.loc["gn-b32-g8-s0", "final_val_err"] == 40.0 and not r.loc["gn-b32-g8-s0", "complete"]
    assert r.loc["gn-b32-g8-s0", "flag"] == "running, 3 epochs so far" and r.loc["bn-b32-s0", "flag"] == ""


def test_trials_without_a_row_or_without_epochs_are_kept_and_flagged(tmp_path):
    write_trial(tmp_path, "bn-b32-s0", "bn", 32, flat(20.0))
    write_trial(tmp_path, "gn-b32-g8-s0", "gn", 32, flat(25.0), groups=8, trial_row=False)
    write_trial(tmp_path, "in-b32-s0", "in", 32, [], status="failed", error="ValueError: boom")
    results, _ = load(tmp_path)
    r = results.set_index("trial_key")
    assert r.loc["gn-b32-g8-s0", "status"] == "unknown" and r.loc["gn-b32-g8-s0", "final_val_err"] == 25.0
    assert r.loc["in-b32-s0", "epochs"] == 0 and pd.isna(r.loc["in-b32-s0", "final_val_err"])
    bad = incomplete_trials(results)
    assert set(bad["trial_key"]) == {"gn-b32-g8-s0", "in-b32-s0"}
    assert "ValueError: boom" in set(bad["error"])


def test_studies_are_classified_by_what_varies(tmp_path):
    _, studies = load(make_paper_like(tmp_path))
    kinds = {s.name: (s.kind, s.dims) for s in studies}
    assert kinds == {"norms": ("norms", ("norm",)), "batch_size": ("batch_size", ("norm", "batch_size")),
                     "groups": ("groups", ("groups",)), "cpg": ("channels_per_group", ("channels_per_group",))}
    assert [s.name for s in studies] == ["norms", "batch_size", "groups", "cpg"]
    assert next(s for s in studies if s.name == "norms").batch_size == 32


def test_study_tables_hold_the_measured_and_paper_numbers(tmp_path):
    results, studies = load(make_paper_like(tmp_path))
    tables = {s.name: study_table(results, s) for s in studies}
    norms = tables["norms"].set_index("norm")
    assert list(norms.index) == ["bn", "ln", "in", "gn"]
    assert norms.loc["gn", "final_val_err"] == 31.0 and norms.loc["gn", "paper"] == 24.1
    assert norms.loc["in", "paper_diff"] == pytest.approx(36.0 - 28.4)
    batch = tables["batch_size"]
    assert list(zip(batch["norm"], batch["batch_size"])) == [("bn", 32), ("bn", 8), ("bn", 2), ("gn", 32),
                                                             ("gn", 8), ("gn", 2)]
    assert list(batch["paper"]) == [23.6, 24.8, 34.7, 24.1, 24.0, 24.1]
    groups = tables["groups"].set_index("groups")
    assert groups.loc[1, "paper"] == 25.3 and groups.loc[8, "final_val_err"] == 30.5
    cpg = tables["cpg"].set_index("channels_per_group")
    assert cpg.loc[1, "paper"] == 28.4 and cpg.loc[16, "paper"] == 24.2
    md = table_markdown(tables["batch_size"], next(s for s in studies if s.name == "batch_size"))
    lines = md.splitlines()
    assert lines[0].startswith("| norm | batch | val err % |") and "paper (ResNet-50, ImageNet) %" in lines[0]
    assert lines[1].startswith("| --- |") and "| BN | 2 | 42.0 | ±3.1 | 34.7 | 6 |" in md and len(lines) == 8
    # one seed, val size unknown: the interval is the last five epochs' spread, 1.96 x their sd (1.58 points)
    bn2 = batch.set_index(["norm", "batch_size"]).loc[("bn", 2)]
    assert (bn2["err_low"], bn2["err_high"]) == pytest.approx((42.0 - 1.96 * 1.5811, 42.0 + 1.96 * 1.5811), abs=0.01)


def test_seeds_are_aggregated_per_configuration(tmp_path):
    results, studies = load(make_paper_like(tmp_path, seeds=(0, 1, 2)))
    assert len(results) == 3 * 13
    table = study_table(results, next(s for s in studies if s.name == "norms")).set_index("norm")
    assert table.loc["bn", "n_seeds"] == 3
    assert table.loc["bn", "final_val_err"] == pytest.approx(30.2)
    assert (table.loc["bn", "err_min"], table.loc["bn", "err_max"]) == pytest.approx((30.0, 30.4))
    assert table.loc["bn", "err_std"] == pytest.approx(0.2)
    md = table_markdown(table.reset_index(), next(s for s in studies if s.name == "norms"))
    assert "| BN | 30.2 | ±1.8 | 30.0-30.4 | 3 |" in md
    assert all(c.rows[0].seeds == 3 and "3 seeds, paired over 3 seeds" in c.text for c in claims(results, studies))


def test_claims_state_the_measured_figures_and_verdicts(tmp_path):
    """One seed, val size unknown: every interval is the epochs' spread (+-4.4 points on a difference of two), so
    the paper's large effects are reproduced and its small ones are inconclusive (the old rule called every
    difference over 0.5 points a direction)."""
    results, studies = load(make_paper_like(tmp_path))
    c = by_topic(claims(results, studies))
    spread = c[("batch_size", "batch_spread")]
    assert "GN's error rose 0.4 points from batch 32 to 2 and BN's rose 12.0 points" in spread.text
    assert "smallest batch minus the error at the largest" in spread.text and "BN's rose 11.1" in spread.text
    assert spread.verdict == "reproduced" and [r.verdict for r in spread.rows] == ["reproduced"] * 3
    assert "is reproduced ((BN b2 - BN b32) - (GN b2 - GN b32): +11.6 points [+5.4, +17.8], 1 seed)" in spread.text
    small = c[("batch_size", "small_batch")]
    assert "At batch 2" in small.text and "GN is 10.6 points lower than BN (paper at batch 2: GN is 10.6" in small.text
    assert "reproduced (GN b2 - BN b2: -10.6 points [-15.0, -6.2], 1 seed)" in small.text
    flat_gn = c[("batch_size", "gn_flat")]
    assert "GN's changed by +0.2 at batch 8, +0.4 at batch 2" in flat_gn.text
    assert flat_gn.verdict == "inconclusive" and "tolerance ±2 points" in flat_gn.text
    order = c[("norms", "norm_order")]
    assert "BN 30.0% < GN 31.0% < LN 33.0% < IN 36.0%" in order.text and order.verdict == "inconclusive"
    assert "The paper's order BN < GN < LN < IN, pair by pair, is inconclusive (GN - BN at batch 32" in order.text
    assert [r.quantity for r in order.rows[1:]] == ["GN - BN at batch 32", "LN - GN at batch 32", "IN - LN at batch 32"]
    assert [r.verdict for r in order.rows[1:]] == ["inconclusive", "inconclusive", "inconclusive"]
    gap = c[("norms", "gn_vs_bn")]
    assert "GN is 1.0 points higher than BN in val error (paper: GN is 0.5 points higher" in gap.text
    assert gap.verdict == "inconclusive" and "~20 seeds per configuration would decide" in gap.text
    groups = c[("groups", "groups")]
    assert "G=8 gave the lowest mean error (30.5%) and G=1 the highest (33.5%), 3.0 points apart" in groups.text
    assert "That G=1 has the highest error of the settings measured is inconclusive" in groups.text
    cpg = c[("cpg", "channels_per_group")]
    assert "16 channels/group gave the lowest mean error (30.8%)" in cpg.text and cpg.verdict == "reproduced"


def test_claims_say_when_the_paper_is_contradicted_or_it_is_too_early(tmp_path):
    """Like the digits demo: GN far worse than BN at batch 32 and IN far better than LN (contradicted), while GN at
    batch 2 still runs (its claims too early, whatever the other numbers say)."""
    write_trial(tmp_path, "bn-b32-s0", "bn", 32, flat(16.0), studies=("norms", "batch_size"))
    write_trial(tmp_path, "gn-b32-g8-s0", "gn", 32, flat(51.0), studies=("norms", "batch_size"), groups=8)
    write_trial(tmp_path, "in-b32-s0", "in", 32, flat(25.0))
    write_trial(tmp_path, "ln-b32-s0", "ln", 32, flat(66.0), train_errs=[1.0] * 6)
    write_trial(tmp_path, "bn-b2-s0", "bn", 2, flat(16.4), studies=("batch_size",))
    write_trial(tmp_path, "gn-b2-g8-s0", "gn", 2, [55, 56, 57], studies=("batch_size",), groups=8, status="running")
    results, studies = load(tmp_path)
    c = by_topic(claims(results, studies))
    spread = c[("batch_size", "batch_spread")]
    assert "GN's error rose 5.0 points from batch 32 to 2 and BN's rose 0.4 points" in spread.text
    assert spread.verdict == "too early" and "wait for 1 trial not finished yet (running, pending or interrupted)" in spread.text
    assert [r.verdict for r in spread.rows[1:]] == ["inconclusive", "too early"]  # BN's own rise: all ended
    assert "GN is 39.6 points higher than BN" in c[("batch_size", "small_batch")].text
    assert c[("batch_size", "small_batch")].verdict == "too early"
    order = c[("norms", "norm_order")]
    assert "BN 16.0% < IN 25.0% < GN 51.0% < LN 66.0%" in order.text
    assert "orders 4 of 6 pairs as the measured means do" in order.text
    assert order.verdict == "contradicted" and "(IN - LN at batch 32: -41.0 points [-45.4, -36.6]" in order.text
    gap = c[("norms", "gn_vs_bn")]
    assert "GN is 35.0 points higher than BN in val error" in gap.text and gap.verdict == "contradicted"
    assert c[("norms", "train_err")].verdict == "contradicted"


def batch_study_claims(sweep_dir: Path, errors: dict[str, dict[int, float]]) -> dict:
    """The claims of a BN/GN batch-size study whose final errors are ``errors[norm][batch]``, by topic."""
    for norm, by_batch in errors.items():
        for b, err in by_batch.items():
            write_trial(sweep_dir, f"{norm}-b{b}-s0", norm, b, flat(err), studies=("batch_size",),
                        groups=8 if norm == "gn" else None)
    return by_topic(claims(*load(sweep_dir)))


def test_both_errors_falling_at_small_batch_is_not_the_papers_effect(tmp_path):
    """The digits demo after 8 epochs: batch 2 takes 16x more steps, so both BN and GN improve."""
    c = batch_study_claims(tmp_path, {"bn": {32: 16.0, 8: 9.0, 2: 4.0}, "gn": {32: 51.0, 8: 30.0, 2: 14.0}})
    spread = c[("batch_size", "batch_spread")]
    assert "GN's error fell 37.0 points from batch 32 to 2 and BN's fell 12.0 points" in spread.text
    assert "(from 32 to 2" not in spread.text
    assert spread.verdict == "contradicted" and "BN b2 - BN b32: -12.0 points" in spread.text
    assert [r.verdict for r in spread.rows[1:]] == ["contradicted", "reproduced"]  # BN falls, though less than GN
    small = c[("batch_size", "small_batch")]
    assert "GN is 10.0 points higher than BN (paper at batch 2: GN is 10.6 points lower" in small.text
    assert small.verdict == "contradicted"
    assert c[("batch_size", "gn_flat")].verdict == "contradicted"


def test_bn_rising_while_gn_swings_more_says_gn_is_not_flat(tmp_path):
    """The demo as measured: BN rises 4.4 points from batch 32 to 2, GN falls 20.3 (its batch 32 is undertrained)."""
    c = batch_study_claims(tmp_path, {"bn": {32: 3.6, 8: 2.8, 2: 8.0}, "gn": {32: 26.7, 8: 6.7, 2: 6.4}})
    spread = c[("batch_size", "batch_spread")]
    assert spread.verdict == "reproduced"  # BN's rise of 4.4 points is just outside the +-4.38 of its epochs
    flat_gn = c[("batch_size", "gn_flat")]
    assert "GN's changed by -20.0 at batch 8, -20.3 at batch 2" in flat_gn.text
    assert flat_gn.verdict == "contradicted" and [r.verdict for r in flat_gn.rows[1:]] == ["contradicted"] * 2
    paper_like = by_topic(claims(*load(make_paper_like(tmp_path / "paper"))))
    assert paper_like[("batch_size", "gn_flat")].verdict == "inconclusive"  # flat, but one seed cannot show it


def test_seed_cnn_is_compared_with_the_notebook(tmp_path):
    for norm, err in {"bn": 74.5, "gn": 73.0, "in": 74.0, "ln": 80.0}.items():
        write_trial(tmp_path, f"{norm}-b32-s0", norm, 32, flat(err), model="seed_cnn",
                    groups=32 if norm == "gn" else None)
    results, studies = load(tmp_path)
    table = study_table(results, studies[0]).set_index("norm")
    assert table.loc["ln", "notebook"] == 79.14 and table.loc["ln", "paper"] == 25.3
    order = by_topic(claims(results, studies))[("norms", "norm_order")].text
    assert "notebook: GN 72.8% < IN 74.2% < BN 74.8% < LN 79.1%, orders them as the measured means do" in order


def test_markdown_table_escapes_pipes():
    md = markdown_table(["a", "b"], [["x|y", "1"]])
    assert md == "| a | b |\n| --- | --- |\n| x\\|y | 1 |"


def test_the_study_kind_recorded_at_launch_wins_over_what_the_rows_show(tmp_path):
    """A batch-size study with only its batch-32 trials so far looks like a norms study; the kind recorded in
    sweep.json says what it is (it was inferred, and the report titled and checked it as a norms study)."""
    write_trial(tmp_path, "bn-b32-s0", "bn", 32, flat(16.0), studies=("batch",))
    write_trial(tmp_path, "gn-b32-g8-s0", "gn", 32, flat(20.0), groups=8, studies=("batch",))
    results, inferred = load(tmp_path)
    assert [(s.name, s.kind) for s in inferred] == [("batch", "norms")]
    recorded = find_studies(results, {"batch": "batch_size"})
    assert [(s.name, s.kind, s.dims) for s in recorded] == [("batch", "batch_size", ("norm",))]
    assert claims(results, recorded) == []  # one batch: nothing to say about batch sizes yet


@pytest.mark.parametrize("varying,kind", [((), "single"), (("norm",), "norms"), (("norm", "batch_size"), "batch_size"),
                                          (("batch_size", "groups"), "groups"),
                                          (("channels_per_group",), "channels_per_group")])
def test_study_kind(varying, kind):
    assert study_kind(varying) == kind
