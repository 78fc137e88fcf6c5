"""A study's table as markdown: the columns that vary, the measured error and each reference beside it."""
from __future__ import annotations

import re

import pandas as pd

from results.paper import references_for
from results.studies import Study
from results.text import md_inline


UNESCAPED_PIPE = re.compile(r"(?<!\\)((?:\\\\)*)\|")
DIM_HEADERS = {"norm": "norm", "batch_size": "batch", "groups": "groups G", "channels_per_group": "channels/group"}


def table_markdown(table: pd.DataFrame, study: Study) -> str:
    """The study table as markdown: the varying columns, error (mean over seeds, the half-width of its 95% interval,
    min-max when several), the references and differences, seeds, epochs and status."""
    dims = list(study.dims) or ["norm"]
    several = table["n_seeds"].max() > 1
    refs = [r for r in references_for(study.model) if r.key in table]
    header = [DIM_HEADERS[d] for d in dims] + ["val err %", "±95%"]
    header += ["min-max %", "seeds"] if several else []
    for ref in refs:  # another model or dataset than the reference's: its numbers give direction, not a diff
        header += [f"{ref.label} %"] + ([] if ref.direction_only else [f"diff vs {ref.key}"])
    header += ["epochs", "status"]
    body = []
    for r in table.itertuples():
        row = [md_inline(r.norm.upper()) if d == "norm" else _fmt(getattr(r, d)) for d in dims]
        row.append(_fmt(r.final_val_err) + ("" if r.complete else " *"))
        row.append("-" if pd.isna(r.err_high) else f"±{(r.err_high - r.err_low) / 2:.1f}")
        if several:
            row += [f"{_fmt(r.err_min)}-{_fmt(r.err_max)}" if r.n_seeds > 1 else "", str(r.n_seeds)]
        for ref in refs:
            row += [_fmt(getattr(r, ref.key))]
            row += [] if ref.direction_only else [_fmt(getattr(r, f"{ref.key}_diff"), signed=True)]
        row += [str(r.epochs), md_inline(r.status)]
        body.append(row)
    return markdown_table(header, body)


def _fmt(value, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "-"
    if isinstance(value, float):
        return f"{value:+.1f}" if signed else f"{value:.1f}"
    return str(value)


def _cell(text) -> str:
    """One line, every pipe escaped once: a cell already escaped (``results.text.md_inline``) keeps its ``\\|``."""
    return UNESCAPED_PIPE.sub(r"\1\\|", " ".join(str(text).splitlines()))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table (no dependency on ``tabulate``); cells are given as Markdown strings (text from
    results files escaped by the caller), kept to one line each with their pipes escaped."""
    def line(cells):
        return "| " + " | ".join(_cell(c) for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])
