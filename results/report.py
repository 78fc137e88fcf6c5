"""``gnsweep report NAME``: the sweep's tables, claims and figures beside the paper's numbers, as one markdown file.

The report reads whatever the sweep has recorded so far, so it works while trials run or after some failed; every
trial whose numbers are not final is listed by why (stopped, not finished yet, completed on fewer than FINAL_EPOCHS
epochs), and every sentence says what was measured.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from results import html, store, uncertainty
from results.claims import Claim, claims as paper_claims
from results.frames import short_trials, stopped_trials, study_table, trial_results, unfinished_trials
from results.paper import references_for
from results.figure_data import FigureSettings
from results.plots import draw_figures
from results.records import ClaimRow
from results.schema import UNFINISHED
from results.shared_runs import expand_shared, read_plan, report_lines
from results.studies import DIMS, Study, find_studies
from results.tables import markdown_table, table_markdown
from results.text import md_code, md_inline
from trainer.config import FINAL_EPOCHS
from trainer.storage import Location

REPORT_DIR = "report"
REPORT_FILE = "report.md"
MANIFEST_FILE = "report-files.json"  # the figures (PNG, SVG) this report wrote: the only files a later one may remove


class ReportError(Exception):
    """The sweep cannot be reported on (no such directory, or no epoch recorded yet); the message is one line."""


def _read_sweep(sweep_dir: Location) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, int]]:
    """The epochs and trials tables (the trials table may be empty), the study kinds and the dataset's image counts
    recorded at launch (none for sweeps launched before they were recorded)."""
    if not sweep_dir.is_dir():
        raise ReportError(f"no sweep directory at {sweep_dir}")
    record = store.read_sweep(sweep_dir)
    epochs = store.read_epochs(sweep_dir)
    if epochs.empty:
        raise ReportError(f"no epochs recorded yet in {sweep_dir / store.EPOCHS}")
    epochs, trials = expand_shared(sweep_dir, epochs, store.read_trials(sweep_dir))
    return epochs, trials, dict(record.studies) if record else {}, _images(sweep_dir, record)


def _images(sweep_dir: Location, record) -> dict[str, int]:
    """The dataset's image counts by split: sweep.json's, else the validation size plan.json recorded (sweeps
    launched before sweep.json held them; plan.json is untrusted, so checked)."""
    images = dict(record.images) if record else {}
    if "val" not in images:
        plan = read_plan(sweep_dir)
        val = plan.get("val_images") if isinstance(plan, dict) else None
        if isinstance(val, int) and not isinstance(val, bool) and val > 0:
            images["val"] = val
    return images


STUDY_TITLES = {
    "norms": "normalization methods{batch} (paper Table 1, Fig. 4)",
    "batch_size": "batch size, BN against GN (paper Table 2, Figs. 1 and 5)",
    "groups": "number of groups G{batch} (paper Table 3, top)",
    "channels_per_group": "channels per group{batch} (paper Table 3, bottom)",
    "single": "one configuration{batch}",
}
TOPICS = {
    "batch_spread": "error growth from the largest to the smallest batch, GN against BN",
    "small_batch": "GN against BN at the smallest batch",
    "norm_order": "order of BN, LN, IN and GN",
    "gn_vs_bn": "GN's gap to BN at a regular batch",
    "train_err": "GN's training error against BN's",
    "gn_flat": "GN's error across batch sizes (no change)",
    "groups": "best and worst group count",
    "channels_per_group": "best and worst channels per group",
}


def _header(sweep_dir: Location, epochs: pd.DataFrame, results: pd.DataFrame, images: dict[str, int]) -> list[str]:
    name = str(epochs["sweep"].mode().iloc[0]) if epochs["sweep"].notna().any() else sweep_dir.name
    model_names = sorted(results["model"].dropna().astype(str).unique())
    models = ", ".join(model_names)
    counts = results["status"].value_counts()
    statuses = ", ".join(f"{n} {md_inline(s)}" for s, n in counts.items())
    done = results["epochs"]
    unfinished = int(results["status"].isin(UNFINISHED).sum())
    state = f"still running ({unfinished} trials not finished)" if unfinished else "finished"
    refs = "; ".join(f"{r.label}" + (f" ({r.note})" if r.note else "") for r in references_for(models))
    return [
        f"# Sweep {md_code(name)}: Group Normalization reproduction report",
        "",
        f"- Model: {', '.join(md_inline(m) for m in model_names)}",
        f"- Trials: {len(results)} ({statuses}); sweep {state}",
        f"- Epochs done per trial: {int(done.max())} at most, {int(done.min())} at least "
        f"({len(epochs)} epoch rows)",
        f"- Generated: {datetime.now(timezone.utc).isoformat(timespec='seconds')} from {md_code(sweep_dir)}",
        f"- Error is top-1 validation error in percent; a trial's error is the median of its last {FINAL_EPOCHS} "
        f"epochs, as in the paper. References: {refs}.",
        f"- Seeds per configuration: {_seeds(results)}; validation set: {_val_size(images)}.",
        f"- Uncertainty: {uncertainty.MODEL}",
        "",
    ]


def _seeds(results: pd.DataFrame) -> str:
    per_config = results.groupby(list(DIMS), dropna=False)["seed"].nunique()
    low, high = int(per_config.min()), int(per_config.max())
    return (f"{low}" if low == high else f"{low} to {high}") + (" (the seeds' spread is not measured)"
                                                                 if high == 1 else "")


def _val_size(images: dict[str, int]) -> str:
    if "val" in images:
        return f"{images['val']:,} images (dataset.json, recorded at launch)"
    return ("val size unknown (the sweep was launched before gnsweep recorded it): intervals use the seeds and the "
            "epochs' spread only")


def _study_section(study: Study, results: pd.DataFrame, claims: list[Claim],
                   figures: list[tuple[str, Path]], val_images: int | None = None) -> list[str]:
    table = study_table(results, study, val_images)
    batch = f" at batch {study.batch_size}" if study.batch_size else ""
    lines = [f"## Study {md_code(study.name)}: {STUDY_TITLES[study.kind].format(batch=batch)}", "",
             table_markdown(table, study), ""]
    notes = []
    if not table["complete"].all():
        notes.append(f"`*` marks configurations with trials not completed with {FINAL_EPOCHS}+ epochs "
                     f"(provisional).")
    for ref in references_for(study.model):
        if ref.key in table and ref.note:
            notes.append(f"{ref.label}: {ref.note}.")
    if notes:
        lines += [" ".join(notes), ""]
    lines += [f"- {c.text}" for c in claims if c.study == study.name]
    if any(c.study == study.name for c in claims):
        lines.append("")
    for caption, path in figures:
        lines += [f"![{caption}]({path.name})", ""]
    return lines


def _cell(value) -> str:
    """A trials-table cell: numbers formatted, text (keys, statuses, messages, study lists: read from results files)
    escaped."""
    if isinstance(value, list):
        return ", ".join(md_inline(v) for v in value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else md_inline(value)


def _trials_table(rows: pd.DataFrame, columns: dict[str, str]) -> str:
    body = [[_cell(r[col]) for col in columns] for r in rows.to_dict("records")]
    return markdown_table(list(columns.values()), body)


VERDICT_GUIDE = (
    "Each paper claim this sweep has data for, with its verdict: **reproduced** when the 95% interval of the measured "
    "quantity (in points of error) lies wholly on the paper's side of zero, or, for a no-change claim, wholly within "
    "its tolerance; **contradicted** when it lies wholly on the other side (or outside the tolerance); "
    "**inconclusive** when it straddles, with the seeds or validation images that would decide it; **too early** "
    f"while trials still run, or before they have the {FINAL_EPOCHS} epochs the final error needs. A claim made of "
    "several (an order, a worst setting, a change at every batch) holds when each part does; its parts are listed "
    "under it, and its figures are those of the part that decides it. The same rows are in `claims.parquet` beside "
    "this report; the sentences with the measured figures are in the study sections below.")


def _finding(row: ClaimRow) -> str:
    """One row of the claims table as a Findings line."""
    if row.measured is None:
        figures = f"{row.quantity}: not measured"
    else:
        figures = f"{row.quantity}: {row.measured:+.1f} points [{row.low:+.1f}, {row.high:+.1f}]"
    if row.paper is not None:
        figures += f" (paper {row.paper:+.1f})"
    seeds = f"{row.seeds} seed{'' if row.seeds == 1 else 's'}" + (f", {row.method}" if row.seeds > 1 else "")
    extra = f"; tolerance ±{row.tolerance:g} points" if row.tolerance is not None else ""
    decide = f"; {row.would_decide}" if row.would_decide else ""
    return f"{row.claim}: **{row.verdict}**; {figures}; {seeds}{extra}{decide}"


def findings(claims: list[Claim]) -> list[str]:
    """The Findings list: each claim's row, its parts' rows indented under it."""
    lines = []
    for c in claims:
        for row in c.rows:
            if row.part_of is None:
                lines.append(f"- Study {md_code(c.study)}, {TOPICS.get(c.topic, c.topic)}: {_finding(row)}")
            else:
                lines.append(f"  - {_finding(row)}")
    return lines or ["- No paper claim can be checked yet: the sweep lacks the configurations a claim compares."]


LIST_COLUMNS = {"trial_key": "trial", "status": "status", "epochs": "epochs", "final_val_err": "val err %",
                "flag": "why", "error": "error"}


def _trial_lists(results: pd.DataFrame) -> list[str]:
    """The trials whose numbers above are not final, each list saying what its trials have in common: stopped
    (failed, diverged, interrupted), not finished yet, and completed on fewer than FINAL_EPOCHS epochs."""
    stopped, unfinished, short = stopped_trials(results), unfinished_trials(results), short_trials(results)
    lines = ["## Failed or interrupted trials", ""]
    if stopped.empty:
        lines += ["None.", ""]
    else:
        lines += [f"{len(stopped)} trial{'s' if len(stopped) > 1 else ''} stopped before completing; an "
                  f"interrupted trial resumes when the sweep is launched again. Their numbers above rest on the "
                  f"epochs they did.", "", _trials_table(stopped, LIST_COLUMNS), ""]
    if len(unfinished):
        lines += ["## Trials not finished yet", "", f"{len(unfinished)} trial{'s' if len(unfinished) > 1 else ''} "
                  f"still running or waiting to run; their numbers above are provisional.", "",
                  _trials_table(unfinished, LIST_COLUMNS), ""]
    if len(short):
        lines += [f"## Trials completed with fewer than {FINAL_EPOCHS} epochs", "",
                  f"{len(short)} completed trial{'s have' if len(short) > 1 else ' has'} fewer than {FINAL_EPOCHS} "
                  f"epochs: a final error here is the median of all its epochs, not of the last {FINAL_EPOCHS} as in "
                  f"the paper.",
                  "", _trials_table(short, {k: v for k, v in LIST_COLUMNS.items() if k != "error"}), ""]
    return lines


def render_report(sweep_dir: Location, epochs: pd.DataFrame, trials: pd.DataFrame, report_dir: Path,
                  kinds: dict[str, str] | None = None, images: dict[str, int] | None = None
                  ) -> tuple[str, list[str], list[ClaimRow]]:
    """The report's markdown for these tables, the file names of the figures it drew into ``report_dir`` (the only
    files its page may embed) and the rows of its claims table (the Findings' rows, for ``claims.parquet``);
    ``kinds`` and ``images``: the studies' kinds and the dataset's image counts as recorded at launch."""
    images = images or {}
    results = trial_results(epochs, trials)
    studies = find_studies(results, kinds)
    claims = paper_claims(results, studies, images)
    figures = draw_figures(epochs, results, studies, report_dir, figure_settings(sweep_dir, images))
    lines = _header(sweep_dir, epochs, results, images) + report_lines(trials)
    lines += ["## Findings", "", VERDICT_GUIDE, ""] + findings(claims) + [""]
    for study in studies:
        lines += _study_section(study, results, claims, figures.get(study.name, []), images.get("val"))
    lines += _trial_lists(results)
    lines += ["## All trials", "", _trials_table(results, {
        "trial_key": "trial", "norm": "norm", "batch_size": "batch", "groups": "G",
        "channels_per_group": "channels/group", "seed": "seed", "status": "status", "epochs": "epochs",
        "final_val_err": "val err %", "final_train_err": "train err %", "last_val_err": "last val err %",
        "studies": "studies"}), ""]
    drawn = sorted({path.name for drawn in figures.values() for _, path in drawn})
    return "\n".join(lines), drawn, [row for c in claims for row in c.rows]


def figure_settings(sweep_dir: Location, images: dict[str, int]) -> FigureSettings:
    """What the figures need from the launch's records: the validation set's size (``_images``), and whether the
    trials ran on GPUs (a batch is then images per device; plan.json is untrusted, so checked)."""
    plan = read_plan(sweep_dir)
    entries = plan.get("trials") if isinstance(plan, dict) else None
    entries = entries.values() if isinstance(entries, dict) else []
    gpu = any(isinstance(e, dict) and isinstance(e.get("gpu"), (int, float)) and e["gpu"] > 0 for e in entries)
    return FigureSettings(images.get("val"), "images per device (GPU)" if gpu else "images per replica")


def default_report_dir(sweep_dir: Location) -> Path:
    """The sweep's own ``report/`` folder; for a sweep at a URI, ``results/<name>/report`` here (a report is read
    locally)."""
    return sweep_dir.as_path() / REPORT_DIR if sweep_dir.local else Path("results") / sweep_dir.name / REPORT_DIR


def _written_before(report_dir: Path) -> set[str]:
    """The figures an earlier report listed in its manifest; none if there is no readable one."""
    try:
        names = json.loads((report_dir / MANIFEST_FILE).read_text()).get("figures", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in names if isinstance(n, str) and n == Path(n).name and n.endswith((".png", ".svg"))}


def write_report(sweep_dir: store.Where, report_dir: Path | None = None) -> Path:
    """Write ``report.md``, its figures (PNG and SVG), ``claims.parquet`` and ``report.html`` (the same,
    self-contained) into ``report_dir`` (default ``default_report_dir``), replacing any earlier report atomically;
    returns the path of report.md. Of the figures there, only those an earlier report wrote (listed in its manifest)
    and this one did not
    are removed: a user's own files stay. Raises ReportError when the sweep directory is missing or holds no epochs
    yet, DamagedResults when a results file is not what gnsweep wrote."""
    sweep_dir = Location.of(sweep_dir)
    epochs, trials, kinds, images = _read_sweep(sweep_dir)
    report_dir = Path(report_dir) if report_dir is not None else default_report_dir(sweep_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    before = _written_before(report_dir)
    text, drawn, claims = render_report(sweep_dir, epochs, trials, report_dir, kinds, images)
    try:
        page = html.render_html(text, epochs, trials, report_dir, drawn, figure_settings(sweep_dir, images))
    except html.UnsafePage as e:
        raise ReportError(str(e)) from None
    path = report_dir / REPORT_FILE
    store.write_claim_rows(report_dir, claims)
    Location.of(path).write_text(text)
    Location.of(report_dir / html.HTML_FILE).write_text(page)
    written = sorted(drawn + [str(Path(name).with_suffix(".svg")) for name in drawn])  # draw_figures writes both
    Location.of(report_dir / MANIFEST_FILE).write_text(json.dumps({"written_by": "gnsweep report",
                                                                    "figures": written}, indent=2))
    for stale in before - set(written):
        (report_dir / stale).unlink(missing_ok=True)
    return path
