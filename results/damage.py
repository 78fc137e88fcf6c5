"""A results file that is not what gnsweep wrote there: named in one line, with what to do, and never read as rows.

Every results file is untrusted input, so values quoted from one are shown as Python literals (``repr``: control
characters escaped) and cut short; the message stays one line whatever the file holds.
"""
from __future__ import annotations

from results.terminal import terminal_text


class DamagedResults(Exception):
    """A results file that is not what gnsweep wrote there (not Parquet, empty, another table's columns, broken
    JSON, rows that make no sense); one line naming the file and what to do."""


def damaged(where, what: str, why) -> DamagedResults:
    """``where: not <what> (<why>); move the file out ...`` as one line of at most a few hundred characters."""
    why = terminal_text(" ".join(str(why).split())[:200])
    return DamagedResults(f"{terminal_text(where)}: not {what} ({why}); move the file out of the sweep's folder (or "
                          f"restore it from a backup) and run again")


def quoted(value, limit: int = 60) -> str:
    """A value read from a results file, safe to print: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
