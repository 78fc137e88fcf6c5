"""report.md and its figures from small Parquet sweeps: what is drawn, what is said, what is listed."""
import re
from pathlib import Path

import pytest

from results.report import ReportError, write_report
from test_analysis import flat, make_paper_like, write_trial


@pytest.fixture(scope="module")
def paper_report(tmp_path_factory) -> Path:
    """A four-study sweep with two seeds and one failed trial, reported once for the tests below."""
    sweep = make_paper_like(tmp_path_factory.mktemp("sweeps") / "paper", seeds=(0, 1))
    write_trial(sweep, "gn-b4-g32-s0", "gn", 4, [70, 60, 55], studies=("batch_size",), groups=32, status="failed",
                error="RuntimeError: out of memory")
    return write_report(sweep)


def test_report_has_header_tables_sentences_and_figures(paper_report):
    text = paper_report.read_text()
    assert paper_report.name == "report.md" and paper_report.parent.name == "report"
    assert text.startswith("# Sweep `paper`") and "- Model: resnet8" in text
    assert "- Trials: 27 (26 completed, 1 failed)" in text and "Generated: " in text
    for heading in ("## Study `norms`", "## Study `batch_size`", "## Study `groups`", "## Study `cpg`"):
        assert heading in text
    assert "| BN | 30.1 | ±2.2 | 30.0-30.2 | 2 | 23.6 | 6 | completed x2 |" in text and "diff vs paper" not in text
    assert "GN's error rose 0.4 points from batch 32 to 2 and BN's rose 12.0 points" in text
    assert "That BN's error rises as the batch shrinks, and more than GN's, is reproduced (" in text
    assert "BN 30.1% < GN 31.1% < LN 33.1% < IN 36.1%" in text


def test_figures_are_linked_relative_and_readable(paper_report):
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", paper_report.read_text())
    assert sorted(links) == ["batch_size_error_vs_batch.png", "batch_size_error_vs_epoch.png",
                             "cpg_error_vs_channels.png", "groups_error_vs_groups.png",
                             "norms_error_vs_epoch.png"]
    for name in links:
        png = paper_report.parent / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert not [p for p in paper_report.parent.iterdir() if p.name.startswith(".")]


def test_failed_trials_are_listed(paper_report):
    text = paper_report.read_text()
    section = text[text.index("## Failed or interrupted trials"):text.index("## All trials")]
    assert "| gn-b4-g32-s0 | failed | 3 | 60.0 | failed, 3 epochs done | RuntimeError: out of memory |" in section
    assert "## Trials not finished yet" not in text and "fewer than 5 epochs" not in text
    assert "| GN | 4 | 60.0 * |" in text and "Study `batch_size`" in text


def test_stopped_and_short_trials_are_two_lists(tmp_path):
    """A sweep of 3-epoch trials that all completed, one failed and one interrupted: the completed ones are listed as
    short (not as 'not completed'), the failed and interrupted ones together, each list saying what it holds."""
    sweep = tmp_path / "short"
    for key, norm, status in (("bn-b32-s0", "bn", "completed"), ("ln-b32-s0", "ln", "completed"),
                              ("in-b32-s0", "in", "failed"), ("gn-b32-g8-s0", "gn", "interrupted")):
        write_trial(sweep, key, norm, 32, [70, 60, 50], status=status, groups=8 if norm == "gn" else None,
                    error="ValueError: boom" if status == "failed" else None)
    text = write_report(sweep).read_text()
    stopped = text[text.index("## Failed or interrupted trials"):text.index("## Trials completed with fewer")]
    short = text[text.index("## Trials completed with fewer than 5 epochs"):text.index("## All trials")]
    assert "2 trials stopped before completing" in stopped
    assert "| in-b32-s0 | failed | 3 | 60.0 | failed, 3 epochs done | ValueError: boom |" in stopped
    assert "| gn-b32-g8-s0 | interrupted | 3 | 60.0 | interrupted, 3 epochs done | - |" in stopped
    assert "bn-b32-s0" not in stopped and "## Trials not finished yet" not in text
    assert "2 completed trials have fewer than 5 epochs" in short
    for key in ("bn-b32-s0", "ln-b32-s0"):
        assert f"| {key} | completed | 3 | 60.0 | completed with 3 epochs: final error is the median of 3, not 5 |" \
            in short
    assert "in-b32-s0" not in short and "Trials not completed" not in text


def test_running_sweep_with_one_study_draws_only_its_figure(tmp_path):
    sweep = tmp_path / "demo"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0))
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, [80, 60, 55], groups=8, status="running")
    path = write_report(sweep)
    text = path.read_text()
    assert sorted(p.name for p in path.parent.glob("*.png")) == ["norms_error_vs_epoch.png"]
    assert "sweep still running (1 trials not finished)" in text
    assert "At batch 32 the measured order is BN 16.0% < GN 60.0%" in text
    assert "the order BN < GN at batch 32: **too early**" in text
    assert "| gn-b32-g8-s0 | running | 3 |" in text


def test_report_is_replaced_and_its_own_stale_figures_go(tmp_path):
    """A figure an earlier report drew and this one does not is removed; a user's PNG in the folder is not (the
    report removed every PNG it did not link)."""
    sweep, out = tmp_path / "s", tmp_path / "out"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0), studies=("norms", "batch"))
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, flat(20.0), groups=8, studies=("norms", "batch"))
    write_trial(sweep, "bn-b2-s0", "bn", 2, flat(18.0), studies=("batch",))
    write_trial(sweep, "gn-b2-g8-s0", "gn", 2, flat(21.0), groups=8, studies=("batch",))
    out.mkdir()
    mine = out / "my_plot.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\n a user's figure")
    first = write_report(sweep, out).read_text()
    assert "GN 20.0%" in first
    assert sorted(p.name for p in out.glob("*.png")) == ["batch_error_vs_batch.png", "batch_error_vs_epoch.png",
                                                         "my_plot.png", "norms_error_vs_epoch.png"]
    assert (out / "batch_error_vs_batch.svg").is_file()
    for key in ("bn-b2-s0", "gn-b2-g8-s0"):
        (sweep / "epochs" / f"{key}.parquet").unlink()
        (sweep / "trials" / f"{key}.parquet").unlink()
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, flat(12.0), groups=8, studies=("norms", "batch"))
    assert "GN 12.0% < BN 16.0%" in write_report(sweep, out).read_text()
    assert sorted(p.name for p in out.glob("*.png")) == ["batch_error_vs_epoch.png", "my_plot.png",
                                                         "norms_error_vs_epoch.png"]
    assert not (out / "batch_error_vs_batch.svg").exists(), "the manifest lists SVGs too, so a stale one goes"
    assert mine.read_bytes().endswith(b"a user's figure")


def test_missing_sweep_or_no_epochs_raise_report_error(tmp_path):
    with pytest.raises(ReportError, match=re.escape(str(tmp_path / "nope"))):
        write_report(tmp_path / "nope")
    (tmp_path / "empty" / "epochs").mkdir(parents=True)
    with pytest.raises(ReportError, match="no epochs recorded yet in .*empty/epochs"):
        write_report(tmp_path / "empty")
    write_trial(tmp_path / "pending", "bn-b32-s0", "bn", 32, [], status="pending")
    with pytest.raises(ReportError) as e:
        write_report(tmp_path / "pending")
    assert "\n" not in str(e.value) and "pending" in str(e.value)


def test_report_titles_studies_by_the_kind_recorded_at_launch(tmp_path):
    from results import store
    from results.records import SweepRecord

    sweep = tmp_path / "s"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0), studies=("batch",))
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, flat(20.0), groups=8, studies=("batch",))
    assert "## Study `batch`: normalization methods at batch 32" in write_report(sweep).read_text()
    store.write_sweep(sweep, SweepRecord("s", {}, ("bn-b32-s0", "gn-b32-g8-s0"), {"batch": "batch_size"}))
    assert "## Study `batch`: batch size, BN against GN" in write_report(sweep).read_text()
