"""Results files are untrusted input: text forged into a sweep's Parquet tables or plan.json reaches report.md and
report.html escaped, and the page embeds only the figures the report drew, so a forged ``![x](/path)`` cannot copy a
file into the page a user shares, nor make it fetch anything."""
import base64
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt

from results.report import MANIFEST_FILE, write_report
from results.shared_runs import PLAN_FILE
from test_analysis import flat, make_paper_like, write_trial

ROOT = Path(__file__).resolve().parents[2]
USER_PNG = "my_plot.png"
URL_ATTRIBUTE = re.compile(r"""(?:https?|ftp|file|data|javascript)\s*:|//""", re.I)


def forged(secret: Path) -> str:
    """Every trick at once: images naming files outside (absolute, relative) and in the report folder, raw HTML, a
    link, backticks, pipes and newlines (each payload a paragraph of its own, as a figure line is)."""
    return "\n\n".join([f"![x]({secret})", "![x](../secret)", "![x](../../../outside/credentials)",
                        f"![x]({USER_PNG})", "<img src=http://evil/>", "[link](http://evil.example/)",
                        "a`b``c | d || e", "\r\t# heading?\x1b[31m"])


def forge(parquet: Path, **columns) -> None:
    """Rewrite columns of a results file as someone who can write the shared folder would."""
    table = pq.read_table(parquet)
    for name, value in columns.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(name), pa.array([value] * len(table),
                                                                            table.schema.field(name).type))
    pq.write_table(table, parquet)


def forged_sweep(root: Path) -> dict:
    """A paper-like sweep under ``root/results/paper`` whose text columns and plan.json hold the forged text, a
    secret file outside the sweep and beside it, and a user's PNG in the report folder."""
    secret_bytes = b"SECRET-" + os.urandom(48).hex().encode() + b"-" + os.urandom(200)
    outside = root / "outside"
    outside.mkdir()
    secret = outside / "credentials"
    secret.write_bytes(secret_bytes)
    sweep = make_paper_like(root / "results" / "paper")
    (sweep / "secret").write_bytes(secret_bytes)
    text = forged(secret)
    write_trial(sweep, "gn-b4-g32-s0", "gn", 4, [70, 60, 55], studies=("batch_size",), groups=32, status="failed",
                error=text)
    for f in [*(sweep / "epochs").glob("*.parquet"), *(sweep / "trials").glob("*.parquet")]:
        forge(f, sweep=f"paper{text}")
    key = f"in-b32-s0{text}"
    forge(sweep / "epochs" / "in-b32-s0.parquet", trial_key=key, model=f"resnet8{text}")
    forge(sweep / "trials" / "in-b32-s0.parquet", trial_key=key, model=f"resnet8{text}",
          status=f"completed{text}")
    for norm in ("bn", "ln"):  # a forged study of two norms: the report draws a figure for it
        forge(sweep / "trials" / f"{norm}-b32-s0.parquet", studies=["norms", text])
    plan = {"trials": {
        f"gn-b32-g1-s0{text}": {"config": {"norm": "gn", "groups": 1, "channels_per_group": None},
                                "studies": ["groups", text], "same_as": "ln-b32-s0", "why": text},
        "gn-b32-g2-s0": {"config": {"norm": "gn", "groups": 2}, "studies": ["groups"], "same_as": text,
                         "why": text},
    }}
    (sweep / PLAN_FILE).write_text(json.dumps(plan))
    report_dir = sweep / "report"
    report_dir.mkdir()
    (report_dir / USER_PNG).write_bytes(b"\x89PNG\r\n\x1a\nUSER-FIGURE-" + os.urandom(32))
    return {"sweep": sweep, "secret": secret, "secret_bytes": secret_bytes, "text": text,
            "user_png": (report_dir / USER_PNG).read_bytes()}


def gnsweep(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def forged_reports(tmp_path_factory) -> dict:
    """The forged sweep reported twice: by ``gnsweep report`` as a user runs it (into the sweep's report folder),
    and by ``write_report`` into another folder holding the same user PNG; the report folders by how."""
    root = tmp_path_factory.mktemp("forged")
    sweep = forged_sweep(root)
    run = gnsweep("report", "paper", "--results", root / "results", cwd=root)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    other = root / "elsewhere"
    other.mkdir()
    (other / USER_PNG).write_bytes(sweep["user_png"])
    return {**sweep, "cli": sweep["sweep"] / "report", "write_report": write_report(sweep["sweep"], other).parent}


def drawn(report_dir: Path) -> list[str]:
    return json.loads((report_dir / MANIFEST_FILE).read_text())["figures"]


def page_text(page: str) -> str:
    """What a reader sees: the page without its tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("which", ["cli", "write_report"])
def test_no_file_outside_the_drawn_figures_reaches_the_report(forged_reports, which):
    sweep, report_dir = forged_reports, forged_reports[which]
    secret = sweep["secret_bytes"]
    for f in report_dir.rglob("*"):
        if f.is_file() and f.name != USER_PNG:
            data = f.read_bytes()
            assert secret not in data and base64.b64encode(secret) not in data, f"the secret is in {f.name}"
            assert base64.b64encode(sweep["user_png"]) not in data, f"the user's PNG is in {f.name}"
    listed = drawn(report_dir)
    figures = [n for n in listed if n.endswith(".png")]  # each with its SVG beside it, listed too
    assert USER_PNG not in listed and len(figures) == 6, listed
    assert sorted(listed) == sorted(figures + [n.removesuffix(".png") + ".svg" for n in figures]), listed
    page = (report_dir / "report.html").read_text()
    images = re.findall(r"<img\b[^>]*>", page)
    embedded = [base64.b64decode(src) for src in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert len(images) == len(embedded) == len(figures)
    assert sorted(embedded) == sorted((report_dir / name).read_bytes() for name in figures)


@pytest.mark.parametrize("which", ["cli", "write_report"])
def test_the_page_fetches_nothing_and_links_nowhere(forged_reports, which):
    report_dir = forged_reports[which]
    page = (report_dir / "report.html").read_text()
    assert "<script" not in page.lower() and "url(" not in page.lower()
    for tag in re.findall(r"<[A-Za-z][^>]*>", page):
        for name, value in re.findall(r"""\s([\w:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", tag):
            value = value.strip("\"'")
            if name.lower() in ("src", "href"):
                assert value.startswith("data:image/png;base64,") or value.startswith("#"), tag[:200]
            else:
                assert not URL_ATTRIBUTE.search(value), tag[:200]
    assert not re.search(r"\s(srcset|action|formaction|poster|background|xlink:href)\s*=", page, re.I)


@pytest.mark.parametrize("which", ["cli", "write_report"])
def test_the_forged_text_is_shown_escaped(forged_reports, which):
    sweep, report_dir = forged_reports, forged_reports[which]
    page = (report_dir / "report.html").read_text()
    seen = page_text(page)
    for payload in (f"![x]({sweep['secret']})", "![x](../secret)", f"![x]({USER_PNG})", "<img src=http://evil/>",
                    "[link](http://evil.example/)", "a`b``c | d || e"):
        assert payload in seen, payload
    title = re.search(r"<title>([^<]*)</title>", page)[1]
    assert "&lt;img src=http://evil/&gt;" in title and "![x](../secret)" in html.unescape(title)
    assert "\x1b" not in page and "\r" not in page


@pytest.mark.parametrize("which", ["cli", "write_report"])
def test_report_md_renders_no_image_link_or_html_of_its_data(forged_reports, which):
    """report.md itself is shared and rendered too (GitHub, an editor's preview): rendered as CommonMark with raw
    HTML allowed, its only images are the drawn figures and it has no links; every forged line stays one line."""
    report_dir = forged_reports[which]
    md = (report_dir / "report.md").read_text()
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    pngs = [n for n in drawn(report_dir) if n.endswith(".png")]
    assert sorted(re.findall(r'<img src="([^"]*)"', rendered)) == sorted(pngs)
    assert "<a " not in rendered and "<img src=http" not in rendered and "<h1>" in rendered
    assert rendered.count("<h1>") == 1
    assert "\x1b" not in md and "\r" not in md and "\t" not in md
    for line in md.splitlines():
        assert not line.startswith("|") or line.endswith("|"), f"a table row broken by the data: {line[:120]}"
        assert not line.startswith("![") or re.fullmatch(r"!\[[^\]]+\]\([\w-]+\.png\)", line), line[:120]


def test_a_png_the_report_did_not_draw_is_never_read(tmp_path):
    """render_html embeds only the names it is given, each a plain PNG file inside the report folder: a user's
    PNG, a symlink leading out, a path or a missing file named by a figure line is not read."""
    import pandas as pd

    from results.html import render_html

    sweep = tmp_path / "s"
    write_trial(sweep, "bn-b32-s0", "bn", 32, flat(16.0))
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-" + os.urandom(64))
    (report_dir / "drawn.png").write_bytes(b"\x89PNG\r\n\x1a\nDRAWN")
    (report_dir / USER_PNG).write_bytes(b"\x89PNG\r\n\x1a\nUSER")
    (report_dir / "link.png").symlink_to(secret)
    md = "\n\n".join(["# Sweep `s`", "![a](drawn.png)", f"![b]({USER_PNG})", "![c](link.png)", f"![d]({secret})",
                      "![e](../secret.png)", "![f](missing.png)"])
    epochs, trials = pd.read_parquet(sweep / "epochs"), pd.read_parquet(sweep / "trials")
    page = render_html(md, epochs, trials, report_dir, ["drawn.png", "link.png", "../secret.png", str(secret),
                                                         "missing.png"])
    embedded = [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert embedded == [b"\x89PNG\r\n\x1a\nDRAWN"]
    assert b"SECRET" not in b"".join(embedded) and len(re.findall(r"<img\b", page)) == 1
    assert f"![b]({USER_PNG})" in page_text(page) and "Figure missing: missing.png" in page


HOSTILE = ["![x](/etc/passwd)", "<img src=x onerror=alert(1)>", "`a``b`", "a|b\\|c\\", "*em* _u_ ~~s~~ **b**",
           "&lt;&#60;", "line1\nline2\r\n# h\n---", "\u202etxt\x00\x07", "[a]: http://x", "<http://evil.example/>",
           "trailing\\", "x" * 1000]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_itself_inline_in_code_and_in_a_table(text):
    from results.tables import markdown_table
    from results.text import LIMIT, md_code, md_inline, plain

    md = MarkdownIt("commonmark").enable("table")  # raw HTML allowed, as GitHub and editors render report.md
    shown = plain(text)
    assert "\n" not in shown and len(shown) <= LIMIT
    assert md.render(f"before {md_inline(text)} after") == f"<p>before {html.escape(shown, quote=False)} after</p>\n"
    code = md.render(f"before {md_code(text)} after")
    assert code == f"<p>before <code>{html.escape(shown, quote=False)}</code> after</p>\n"
    table = md.render(markdown_table(["a", "b"], [[md_inline(text), "1"]]))
    cells = re.findall(r"<td>(.*?)</td>", table)
    assert cells == [html.escape(shown, quote=False), "1"], table


def test_a_malformed_plan_json_is_ignored_not_fatal(tmp_path):
    """plan.json is read for shared runs; entries that are not what the launch writes are left out."""
    from results import store
    from results.shared_runs import expand_shared

    write_trial(tmp_path, "bn-b32-s0", "bn", 32, flat(16.0))
    bad_entries = ["str", {"same_as": "bn-b32-s0"}, {"same_as": "bn-b32-s0", "config": {"norm": 1}},
                   {"same_as": "bn-b32-s0", "config": {"norm": "gn", "groups": "8"}},
                   {"same_as": "bn-b32-s0", "config": {"norm": "gn"}, "studies": "abc"},
                   {"same_as": ["bn-b32-s0"], "config": {"norm": "gn"}}]
    for plan in ([], {"trials": []}, *({"trials": {"alias": e}} for e in bad_entries)):
        (tmp_path / PLAN_FILE).write_text(json.dumps(plan))
        epochs, trials = expand_shared(tmp_path, store.read_epochs(tmp_path), store.read_trials(tmp_path))
        assert list(trials["trial_key"]) == ["bn-b32-s0"] and set(epochs["trial_key"]) == {"bn-b32-s0"}, plan
    assert "alias" not in write_report(tmp_path).read_text()
