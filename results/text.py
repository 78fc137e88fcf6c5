"""Text read from a results file (Parquet or JSON) as safe Markdown: such files are untrusted, since anyone who can
write a shared results folder or bucket can put ``![x](/home/me/.aws/credentials)`` or raw HTML in a trial key, an
error message or a study name. Every such string goes through ``md_inline`` or ``md_code`` before it reaches
report.md, so it shows as the text it is and can never become an image, a link, HTML, a heading or a new table row.
"""
from __future__ import annotations

import re
import unicodedata

LIMIT = 300  # characters shown of one value: a name or a message, not a document
MD_SPECIAL = re.compile(r"([\\`*_\[\]()!#<>|~&])")


def plain(value, limit: int = LIMIT) -> str:
    """``value`` as one line: control and format characters (newlines, escapes, bidirectional overrides) become
    spaces, runs of whitespace one space, and text beyond ``limit`` characters is cut with an ellipsis."""
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def md_inline(value, limit: int = LIMIT) -> str:
    """``plain(value)`` with every character Markdown gives a meaning inline backslash-escaped (links, images, HTML,
    code, emphasis, table pipes, entities) and ``://`` broken, so no renderer autolinks a URL in it."""
    return MD_SPECIAL.sub(r"\\\1", plain(value, limit)).replace("://", ":\\/\\/")


def md_code(value, limit: int = LIMIT) -> str:
    """``plain(value)`` as an inline code span whose fence is longer than any run of backticks in it, so a backtick
    in the text cannot close the span early. Not for table cells (a pipe would still split the cell)."""
    text = plain(value, limit)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
