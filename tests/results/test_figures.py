"""The report's figures as matplotlib Figure objects and as files: names that say what they hold, PNG and SVG,
integer epoch ticks, the paper's numbers on an axis of their own, interval bars from the seeds and the validation
set's sampling error, one colour-blind-safe colour per batch size, and open markers only where trials are
incomplete."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex

from results.uncertainty import Z
from results.frames import study_table, trial_results
from results.studies import find_studies
from results.intervals import error_interval, sampling_error
from results.paper import PAPER
from results.figure_data import FigureSettings, config_intervals
from results.plots import OKABE_ITO, plot_batch_curves, plot_batch_errors, plot_group_errors, plot_norm_curves
from results.report import write_report
from test_analysis import write_trial

SWEEP_ERRORS = {2: (88.6, 73.4), 4: (81.0, 73.1), 8: (77.0, 72.9), 32: (74.8, 72.8)}  # batch: (BN, GN), far above 24-35


def curve(final: float, epochs: int) -> list[float]:
    return [final + 20.0 * math.exp(-e) for e in range(epochs)]


def make_sweep(root: Path, *, epochs: int = 6, seeds=(0, 1, 2), running: str | None = None,
               val_images: int | None = 500, gpu: bool = False) -> Path:
    """A batch-size study, a norms study and a groups study with errors of 72-89% (the paper's are 24-35%), 3 seeds
    a little apart, on ``epochs`` epochs; plan.json gives the validation size and whether trials held GPUs."""
    sweep = root / "s"
    for s in seeds:
        for b, (bn, gn) in SWEEP_ERRORS.items():
            studies = ("batch_size", "norms") if b == 32 else ("batch_size",)
            write_trial(sweep, f"bn-b{b}-s{s}", "bn", b, curve(bn + s, epochs), studies=studies, seed=s)
            key = f"gn-b{b}-g8-s{s}"
            write_trial(sweep, key, "gn", b, curve(gn + s, epochs), studies=studies + (("groups",) if b == 32 else ()),
                        groups=8, seed=s, status="running" if key == running else "completed")
        write_trial(sweep, f"gn-b32-g1-s{s}", "gn", 32, curve(79.0 + s, epochs), studies=("groups",), groups=1,
                    seed=s)
        write_trial(sweep, f"ln-b32-s{s}", "ln", 32, curve(79.1 + s, epochs), studies=("norms",), seed=s)
    plan = {"trials": {"bn-b32-s0": {"gpu": 0.5 if gpu else 0.0}}}
    if val_images:
        plan["val_images"] = val_images
    (sweep / "plan.json").write_text(json.dumps(plan))
    return sweep


def study_data(sweep: Path):
    epochs, trials = pd.read_parquet(sweep / "epochs"), pd.read_parquet(sweep / "trials")
    results = trial_results(epochs, trials)
    return epochs, results, {s.name: s for s in find_studies(results)}


def test_every_figure_is_a_png_and_an_svg_named_for_what_it_holds(tmp_path):
    sweep = make_sweep(tmp_path)
    report = write_report(sweep)
    names = {"batch_size_error_vs_batch", "batch_size_error_vs_epoch", "norms_error_vs_epoch",
             "groups_error_vs_groups"}
    assert {p.stem for p in report.parent.glob("*.png")} == {p.stem for p in report.parent.glob("*.svg")} == names
    for name in names:
        assert (report.parent / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (report.parent / f"{name}.svg").read_bytes()[:1000]
        assert f"]({name}.png)" in report.read_text()
    manifest = json.loads((report.parent / "report-files.json").read_text())["figures"]
    assert sorted(manifest) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "svg"))
    page = (report.parent / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and page.count("Data of this figure") == 4


@pytest.mark.parametrize("epochs", [3, 7])
def test_epoch_axes_have_integer_ticks(tmp_path, epochs):
    """With 3 epochs matplotlib's default ticks are 1.0, 1.25, 1.5, ...: an epoch is a whole number."""
    ep, _, studies = study_data(make_sweep(tmp_path, epochs=epochs))
    figures = [plot_norm_curves(ep[ep.trial_key.isin(studies["norms"].trial_keys)], studies["norms"],
                                FigureSettings()),
               plot_batch_curves(ep[ep.trial_key.isin(studies["batch_size"].trial_keys)], studies["batch_size"],
                                 FigureSettings())]
    for fig in figures:
        for ax in fig.axes:
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ax.get_xlabel() == "epoch" and ticks and all(float(t).is_integer() for t in ticks), ticks


def _lines_with(fig, values) -> list:
    """The axes of ``fig`` holding a line through exactly ``values`` (y)."""
    return [ax for ax in fig.axes for line in ax.get_lines()
            if len(line.get_ydata()) == len(values) and np.allclose(line.get_ydata(), values)]


def test_the_papers_numbers_are_on_their_own_axis(tmp_path):
    """The sweep's 72-89% and the paper's 24-35% on one y-axis make both curves flat: each gets its own axes, and
    neither axes' y range spans the other's numbers."""
    _, results, studies = study_data(make_sweep(tmp_path))
    table = config_intervals(results, studies["batch_size"], 500)
    fig = plot_batch_errors(table, studies["batch_size"], FigureSettings(500))
    paper_bn = [PAPER.batch["bn"][b] for b in sorted(PAPER.batch["bn"])]
    [paper] = _lines_with(fig, paper_bn)
    ours_bn = table[table.norm == "bn"].sort_values("batch_size")["final_val_err"].tolist()
    [ours] = _lines_with(fig, ours_bn)
    assert ours is not paper
    assert paper.get_ylim()[1] < min(ours_bn) and ours.get_ylim()[0] > max(paper_bn)
    assert ours.get_xlabel() == paper.get_xlabel() == "images per replica (batch size)"
    assert "paper" in paper.get_title() and "this sweep" in ours.get_title()

    groups = config_intervals(results, studies["groups"], 500)
    fig = plot_group_errors(groups, studies["groups"], FigureSettings(500))
    [paper] = _lines_with(fig, [PAPER.groups[g] for g in sorted(PAPER.groups)])
    [ours] = _lines_with(fig, groups.sort_values("groups")["final_val_err"].tolist())
    assert ours is not paper and paper.get_ylim()[1] < ours.get_ylim()[0]


def test_bars_are_the_reports_interval_never_narrower_than_sampling_error(tmp_path):
    _, results, studies = study_data(make_sweep(tmp_path))
    table = config_intervals(results, studies["batch_size"], 500)
    fig = plot_batch_errors(table, studies["batch_size"], FigureSettings(500))
    ours = next(ax for ax in fig.axes if ax.get_title() == "this sweep")
    bars = [c for c in ours.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(bars) == 2  # BN and GN
    bn = table[table.norm == "bn"].sort_values("batch_size")
    segments = bars[0].lines[2][0].get_segments()  # one [(x, low), (x, high)] per batch size
    lows = sorted(round(seg[0][1], 6) for seg in segments)
    report = study_table(results, studies["batch_size"], 500)  # the report's table and verdicts use these
    report = report[report.norm == "bn"].sort_values("batch_size")
    assert lows == sorted(round(v, 6) for v in report["err_low"])
    for r in report.itertuples():
        assert r.err_high - r.err_low >= 2 * Z * sampling_error(r.final_val_err, 500) - 1e-9
    assert any("95% interval" in t.get_text() and "3 seeds" in t.get_text() and "500 val images" in t.get_text()
               for t in fig.texts)


def test_intervals_without_seeds_or_val_size():
    """One seed: only the sampling interval; no val size: the seeds' range; neither: no interval at all."""
    one = error_interval([75.0], 500)
    half = 1.96 * 100 * math.sqrt(0.75 * 0.25 / 500)
    assert (one.low, one.high) == pytest.approx((75.0 - half, 75.0 + half))
    assert error_interval([70.0, 74.0, 71.0]) == error_interval([70.0, 74.0, 71.0], None)
    assert (error_interval([70.0, 74.0, 71.0]).low, error_interval([70.0, 74.0, 71.0]).high) == (70.0, 74.0)
    assert error_interval([75.0]) is None and error_interval([math.nan]) is None


def test_each_batch_size_has_its_own_colour_blind_safe_colour(tmp_path):
    ep, _, studies = study_data(make_sweep(tmp_path))
    fig = plot_batch_curves(ep[ep.trial_key.isin(studies["batch_size"].trial_keys)], studies["batch_size"],
                            FigureSettings())
    for ax in fig.axes:
        colours = {line.get_label(): to_hex(line.get_color()).upper() for line in ax.get_lines()}
        assert set(colours) == {"32", "8", "4", "2"}
        assert len(set(colours.values())) == 4 and set(colours.values()) <= set(OKABE_ITO)
        assert ax.get_legend().get_title().get_text() == "images per replica"
    first, second = ({l.get_label(): l.get_color() for l in ax.get_lines()} for ax in fig.axes)
    assert first == second, "a batch size keeps its colour in the BN and the GN panel"


def test_a_gpu_sweep_counts_images_per_device(tmp_path):
    report = write_report(make_sweep(tmp_path, gpu=True))
    assert "images per device (GPU)" in (report.parent / "batch_size_error_vs_batch.svg").read_text()
    assert "images per replica" not in (report.parent / "batch_size_error_vs_batch.svg").read_text()


def open_markers(ax) -> list:
    """The scatter collections of white-filled markers on ``ax``."""
    return [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())
            and np.allclose(c.get_facecolor()[:, :3], 1.0)]


def test_only_incomplete_configurations_get_open_markers(tmp_path):
    _, results, studies = study_data(make_sweep(tmp_path, running="gn-b2-g8-s1"))
    table = config_intervals(results, studies["batch_size"], 500)
    fig = plot_batch_errors(table, studies["batch_size"], FigureSettings(500))
    ours = next(ax for ax in fig.axes if ax.get_title() == "this sweep")
    rings = open_markers(ours)
    assert len(rings) == 1 and rings[0].get_offsets()[:, 0].round().tolist() == [2]  # GN at batch 2 only
    assert "open marker: not all trials completed (provisional)" in ours.get_legend_handles_labels()[1]

    _, results, studies = study_data(make_sweep(tmp_path / "short", epochs=3))  # every configuration short
    table = config_intervals(results, studies["batch_size"], 500)
    fig = plot_batch_errors(table, studies["batch_size"], FigureSettings(500))
    ours = next(ax for ax in fig.axes if ax.get_title() == "this sweep")
    assert not open_markers(ours)
    assert any("All points provisional" in t.get_text() for t in fig.texts)
