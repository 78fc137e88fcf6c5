"""report.html from small Parquet sweeps: self-contained, the report's content plus each figure's data, a banner
while the sweep runs, and the page as a real browser (headless Chromium) renders it."""
import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from results.report import write_report
from test_analysis import flat, make_paper_like, write_trial

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def running_page(tmp_path_factory) -> Path:
    """The four-study sweep with one failed and one still running trial."""
    sweep = make_paper_like(tmp_path_factory.mktemp("sweeps") / "paper")
    write_trial(sweep, "gn-b4-g32-s0", "gn", 4, [70, 60, 55], studies=("batch_size",), groups=32, status="failed",
                error="RuntimeError: out of memory <oom>")
    write_trial(sweep, "bn-b4-s0", "bn", 4, [80, 70], studies=("batch_size",), status="running")
    return write_report(sweep).with_name("report.html")


def test_page_is_self_contained_with_the_reports_content(running_page):
    page = running_page.read_text()
    md = running_page.with_name("report.md").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "the page must fetch nothing"
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[[^\]]+\]\(([^)]+)\)", md)) == 5
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Partial results: the sweep is still running (1 of 15 trials not finished)" in page
    assert "<td>BN</td>" in page and "At batch 32 the measured order is BN 30.0% &lt; GN 31.0%" in page
    section = page[page.index("Failed or interrupted trials"):page.index("Trials not finished yet")]
    assert "gn-b4-g32-s0" in section and "RuntimeError: out of memory &lt;oom&gt;" in section, "escaped, listed"
    section = page[page.index("Trials not finished yet"):page.index("All trials")]
    assert "bn-b4-s0" in section and "running" in section


def test_each_figure_has_its_data_as_a_table_and_csv(running_page):
    page = running_page.read_text()
    assert page.count("Data of this figure") == 5 and page.count('<pre class="csv">') == 5
    csv = re.search(r'<pre class="csv">([^<]*)</pre>', page)[1]
    assert csv.splitlines()[0] == "norm,batch,groups G,epoch,train err %,val err %,seeds"
    assert "bn,32,,6,23.000,28.000,1" in csv.splitlines(), csv[:400]
    batch_csv = re.findall(r'<pre class="csv">([^<]*)</pre>', page)[1]
    assert "val err % (median of last 5)" in batch_csv and "paper %" in batch_csv


def test_finished_sweep_says_so(tmp_path):
    sweep = tmp_path / "demo"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0))
    page = write_report(sweep).with_name("report.html").read_text()
    assert "The sweep has finished: all 1 trials ended." in page and "Partial results" not in page


def test_page_and_report_agree_that_an_interrupted_trial_is_unfinished(tmp_path):
    """report.md and the page's banner read one set of unfinished statuses (results.schema.UNFINISHED)."""
    sweep = tmp_path / "demo"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0))
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, [40.0, 30.0], groups=8, status="interrupted")
    report = write_report(sweep)
    assert "sweep still running (1 trials not finished)" in report.read_text()
    page = report.with_name("report.html").read_text()
    assert "Partial results: the sweep is still running (1 of 2 trials not finished)" in page


@pytest.mark.parametrize("model, diff", [("resnet8", False), ("resnet50", False), ("seed_cnn", True)])
def test_paper_numbers_are_for_direction_only_off_imagenet(tmp_path, model, diff):
    """No sweep here runs on ImageNet: the paper's column stays, its diff goes; the notebook (same model and data
    set as seed_cnn's reference) keeps its diff."""
    sweep = tmp_path / "s"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(70.0), model=model)
    write_trial(sweep, "gn-b32-g8-s0", "gn", 32, flat(71.0), groups=8, model=model)
    text = write_report(sweep).read_text()
    assert "paper (ResNet-50, ImageNet) %" in text and "diff vs paper" not in text
    assert "for direction only" in text
    assert ("diff vs notebook" in text) == diff


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it: apt-get install chromium)")
def test_page_renders_in_headless_chromium(running_page, tmp_path):
    """A real browser loads the page: every image decodes (naturalWidth > 0), the text is there, a screenshot is
    taken (kept next to the page as report-screenshot.png for a person to look at)."""
    probe = tmp_path / "probe.html"
    probe.write_text(running_page.read_text().replace("</body>", """<script>
window.addEventListener('load', () => { const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]));
  document.body.appendChild(p); });</script></body>"""))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120)
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom.stdout)
    assert found, f"no probe in the DOM: {dom.stderr[-2000:]}"
    images = json.loads(found[1])
    assert len(images) == 5 and all(done and w > 0 and h > 0 for done, w, h in images), images
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for phrase in ("Partial results", "Findings", "Failed or interrupted trials", "gn-b4-g32-s0",
                   "Data of this figure"):
        assert phrase in text
    shot = running_page.with_name("report-screenshot.png")
    subprocess.run([*flags, "--window-size=1200,2400", f"--screenshot={shot}", running_page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
