"""A one-line progress counter for the data commands (prepare, download)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line "\\r<label> done/total" counter on stderr, shown only on a terminal and at most 10 times a second."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.done, self.last = label, total, 0, 0.0
        self.enabled = enabled and sys.stderr.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and time.monotonic() - self.last > 0.1:
            self.last = time.monotonic()
            self._show()

    def _show(self) -> None:
        sys.stderr.write(f"\r{self.label} {self.done}/{self.total or '?'}")
        sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._show()
            sys.stderr.write("\n")
