"""Text from results files, made safe for a terminal: a trial key, an error message or a host name read back from a
sweep's files is untrusted, and raw it could move the cursor, recolour or clear the screen, or forge lines (C0 and C1
control characters, ANSI escape sequences, bidirectional overrides), or restyle a Rich table (``[red]``, ``[link]``).

Every control character is shown as its escape (``\\x1b``, ``\\u202e``), so a line stays one line and the reader
sees that something odd is there; ``markup=True`` also escapes Rich markup for text printed through Rich.
"""
from __future__ import annotations

import re

# C0 controls (tab and newline too: one value, one line), DEL, C1 controls, and Unicode's bidirectional overrides
# and isolates, which reorder what follows them on screen.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def terminal_text(value: object, *, markup: bool = False) -> str:
    """``value`` as text with control characters escaped; with ``markup``, Rich markup escaped too (for cells and
    lines printed through Rich)."""
    text = _CONTROLS.sub(_escape, str(value))
    if markup:
        from rich.markup import escape

        text = escape(text)
    return text
