"""Ctrl-C and SIGTERM during a launch: one exception the launch turns into a clean stop.

Ray Tune's own SIGINT handler is off (``TUNE_DISABLE_SIGINT_HANDLER``): it ends ``fit`` quietly with an exit status
of 0 and advice to call ``Tuner.restore``, which is not how a gnsweep sweep resumes. ``ray.init`` installs a SIGTERM
handler of its own (and its C++ core one that dumps a stack); ``catch`` installs ours again after it.

While Tune runs the trials, a signal is only noted and raised at the next step of Tune's loop
(``Catcher.deferred``, ``orchestrator.tune.stop``): raised anywhere else in that loop, Tune or Ray can swallow it.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Raised in the main thread by the first SIGINT or SIGTERM; an ``Exception`` so that Ray Tune's loop cleans up
    its trials on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Catcher:
    """The signal received first (None until then); the handler raises ``Interrupted`` for it at once, or inside
    ``deferred()`` only notes it. Later signals are only noted: the launch is already stopping."""

    def __init__(self):
        self.received: int | None = None
        self._deferring = False

    def handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            if not self._deferring:
                raise Interrupted(signum)

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal was received (every call after it raises again)."""
        if self.received is not None:
            raise Interrupted(self.received)

    @contextmanager
    def deferred(self):
        """Within the block a signal is only noted, for ``check()`` to raise where the code calls it; a block that
        ends without an exception after a signal raises ``Interrupted`` as it ends."""
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False
        self.check()

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self.handle)

    @property
    def interrupted(self) -> Interrupted | None:
        return Interrupted(self.received) if self.received is not None else None


@contextmanager
def catch():
    """Within the block, SIGINT and SIGTERM raise ``Interrupted`` once; the previous handlers come back after it.
    Call ``install()`` on the yielded Catcher again after anything that replaces handlers (``ray.init``)."""
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    catcher = Catcher()
    catcher.install()
    try:
        yield catcher
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
