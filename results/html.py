"""``report.html``: the report as one self-contained page (styles inline, figures as data URIs, no script, no network
fetch), with each figure's numbers under it as a table a user can copy, and a banner while the sweep is unfinished.

The page is rendered from report.md's own markdown (markdown-it, which comes with Rich), so its tables, sentences and
trial lists are the report's by construction; only the figures' data is added here. The page is shared, and its text
comes partly from results files anyone with write access to the results could forge: it embeds only the PNGs this
report drew, markdown-it makes no image, link or raw HTML, and a page with any other URL is refused.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from results import figure_data as figure_numbers
from results.figure_data import FigureSettings
from results.frames import trial_results
from results.schema import UNFINISHED
from results.studies import find_studies
from trainer.storage import Location

HTML_FILE = "report.html"
FIGURE_LINE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<src>[^)]+)\)$")
OFF_RULES = ["image", "link", "autolink", "linkify", "reference", "html_inline", "html_block"]
TAG = re.compile(r"<[A-Za-z][^>]*>")  # text is escaped, so every '<' followed by a letter opens a real tag
URL_ATTRIBUTE = re.compile(r"""\s(src|href|srcset|action|formaction|poster|background|xlink:href|data)\s*=\s*"""
                           r"""("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
COLUMNS = {  # figure data column -> header, in display order; absent or all-empty columns are left out
    "norm": "norm", "batch_size": "batch", "groups": "groups G", "channels_per_group": "channels/group",
    "epoch": "epoch", "train_mean": "train err %", "train_low": "train low", "train_high": "train high",
    "val_mean": "val err %", "val_low": "val low", "val_high": "val high", "seeds": "seeds",
    "final_val_err": "val err % (median of last 5)", "low": "low", "high": "high", "n_seeds": "seeds",
    "paper": "paper %", "notebook": "notebook %", "complete": "complete",
}
STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: .3em; }
details { margin: .4em 0 1em; } summary { cursor: pointer; color: #0b5cad; }
pre.csv { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: 12px; user-select: all; }
.banner { padding: .8em 1em; border-radius: 6px; margin: 1em 0; font-weight: 600; }
.partial { background: #fff3cd; border: 1px solid #e0b400; } .final { background: #e7f5e9; border: 1px solid #4a9a5a; }
"""


def figure_data(name: str, epochs: pd.DataFrame, results: pd.DataFrame, studies: list,
                settings: FigureSettings | None = None) -> pd.DataFrame | None:
    """The numbers a report figure draws (``figure_data.figure_data``, found by its file name), with readable headers;
    columns that are empty throughout (intervals where there are none) are left out."""
    data = figure_numbers.figure_data(name, epochs, results, studies, settings)
    if data is None:
        return None
    keep = [c for c in COLUMNS if c in data and data[c].notna().any()]
    return data[keep].rename(columns=COLUMNS)


def _data_html(data: pd.DataFrame) -> str:
    table = data.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}", border=0)
    csv = html.escape(data.to_csv(index=False, float_format="%.3f"))
    return (f"<details><summary>Data of this figure ({len(data)} rows)</summary>{table}"
            f"<details><summary>As CSV</summary><pre class=\"csv\">{csv}</pre></details></details>")


class UnsafePage(Exception):
    """The page would load or link something other than its own embedded figures; it is not written."""


def _drawn_png(report_dir: Path, name: str, drawn: set[str]) -> Path | None:
    """``report_dir/name`` when ``name`` is a figure this report drew: a bare ``.png`` file name (no path, no
    ``..``), not a symlink, inside ``report_dir``. Anything else a figure line names is never read."""
    if name not in drawn or name != Path(name).name or "/" in name or "\\" in name or ".." in name:
        return None
    path = report_dir / name
    if not name.endswith(".png") or name.startswith(".") or path.is_symlink():
        return None
    return path if path.resolve().parent == report_dir.resolve() else None


def _figure_html(caption: str, png: Path, data: pd.DataFrame | None) -> str:
    if not png.is_file():
        return f"<p><em>Figure missing: {html.escape(png.name)}</em></p>"
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    body = (f"<figure><figcaption>{html.escape(caption)}</figcaption>"
            f"<img src=\"data:image/png;base64,{encoded}\" alt=\"{html.escape(caption)}\"></figure>")
    return body + (_data_html(data) if data is not None and len(data) else "")


def _banner(results: pd.DataFrame) -> str:
    unfinished = int(results["status"].isin(UNFINISHED).sum())
    if unfinished:
        return (f"<div class=\"banner partial\">Partial results: the sweep is still running ({unfinished} of "
                f"{len(results)} trials not finished). Numbers marked * are provisional; run "
                f"<code>gnsweep report</code> again for newer ones.</div>")
    return f"<div class=\"banner final\">The sweep has finished: all {len(results)} trials ended.</div>"


def _title(body: str) -> str:
    """The first heading's text, as markdown-it rendered (and escaped) it, without its tags."""
    heading = re.search(r"<h1>(.*?)</h1>", body, re.S)
    return re.sub(r"<[^>]+>", "", heading[1]).strip() if heading else "report"


def _check_fetches_nothing(page: str) -> None:
    """Raise UnsafePage if any attribute of the page could load or link something: only embedded PNGs (``src``)
    and in-page anchors (``href``) are allowed."""
    for tag in TAG.findall(page):
        for name, value in URL_ATTRIBUTE.findall(tag):
            value = value.strip("\"'")
            ok = (value.startswith("data:image/png;base64,") if name.lower() == "src"
                  else value.startswith("#") if name.lower() == "href" else False)
            if not ok:
                raise UnsafePage(f"report.html would carry {name}={value[:80]!r}; not written (a bug: please "
                                 f"report it)")


def render_html(markdown_text: str, epochs: pd.DataFrame, trials: pd.DataFrame, report_dir: Path,
                figures: Iterable[str], settings: FigureSettings | None = None) -> str:
    """The page for report.md's text with the PNGs this report drew (``figures``: their file names in
    ``report_dir``, as ``draw_figures`` wrote them) embedded; a figure line naming anything else stays text.
    ``settings``: what the figures were drawn with, so each figure's data is what it draws."""
    from markdown_it import MarkdownIt

    drawn = set(figures)
    results = trial_results(epochs, trials)
    studies = find_studies(results)
    embedded: dict[str, str] = {}
    lines = []
    for line in markdown_text.splitlines():
        m = FIGURE_LINE.match(line.strip())
        png = _drawn_png(report_dir, m["src"], drawn) if m else None
        if png is not None:
            marker = f"GNSWEEPFIGURE{len(embedded)}"
            embedded[marker] = _figure_html(m["caption"], png,
                                            figure_data(m["src"], epochs, results, studies, settings))
            line = marker
        lines.append(line)
    markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").disable(OFF_RULES)
    body = markdown.render("\n".join(lines))
    for marker, figure in embedded.items():
        body = body.replace(f"<p>{marker}</p>", figure)
    first_heading_end = body.find("</h1>") + len("</h1>") if "</h1>" in body else 0
    body = body[:first_heading_end] + _banner(results) + body[first_heading_end:]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_title(body)}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n")
    _check_fetches_nothing(page)
    return page


def write_html(markdown_text: str, epochs: pd.DataFrame, trials: pd.DataFrame, report_dir: Path,
               figures: Iterable[str], settings: FigureSettings | None = None) -> Path:
    """Write ``report_dir/report.html`` atomically, embedding only ``figures`` (the PNGs the report drew); returns
    its path. Raises UnsafePage, writing nothing, if the page would load or link anything."""
    path = Path(report_dir) / HTML_FILE
    Location.of(path).write_text(render_html(markdown_text, epochs, trials, Path(report_dir), figures, settings))
    return path
