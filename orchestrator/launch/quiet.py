"""Quiet by default: gnsweep's commands print only their own lines.

TensorFlow, XLA and absl write their start-up lines (``I0000 ... cudart_stub.cc] Could not find cuda drivers``,
``All log messages before absl::InitializeLog()``) from C++ straight to file descriptor 2, where no Python setting
reaches them. So fd 2 goes to this process's own log file (``~/.cache/gnsweep/native-stderr-PID.log``, the newest 20
kept), and Python's ``sys.stderr`` (gnsweep's own messages, tracebacks, Ray's forwarded trial logs) keeps the
terminal. Ray's notice that a local cluster has token authentication on (its secure
default) is dropped too; its warning that authentication is off still shows. ``--verbose`` leaves all of it alone.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

KEEP_LOGS = 20  # the newest logs kept; older ones go when a new process starts
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
AUTH_ON_NOTICE = "Token authentication is enabled"


def log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gnsweep"


def native_log_path(pid: int | None = None) -> Path:
    """This process's native log: one per gnsweep process, so two commands running at once (a launch and a status
    --watch, two users' launches) never mix their lines."""
    return log_dir() / f"native-stderr-{os.getpid() if pid is None else pid}.log"


def _prune(folder: Path) -> None:
    """Keep the newest KEEP_LOGS native logs."""
    logs = sorted(folder.glob("native-stderr-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[KEEP_LOGS:]:
        old.unlink(missing_ok=True)


def _open_log() -> int:
    path = native_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune(path.parent)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


def quiet_native_output() -> None:
    """Send fd 2 (C/C++ writers, child processes) to the native log; keep Python's stderr on the terminal."""
    sys.stderr.flush()
    terminal = os.dup(2)
    log = _open_log()
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                           errors="backslashreplace")


class _WithoutAuthOnNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(AUTH_ON_NOTICE)


def quiet() -> None:
    """Everything quiet mode does, before any TensorFlow or Ray import. TensorFlow's own Python warnings (a
    tf.function retracing, ...) are about gnsweep's code, not the user's: only its errors show."""
    quiet_native_output()
    logging.getLogger(RAY_AUTH_LOGGER).addFilter(_WithoutAuthOnNotice())
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
