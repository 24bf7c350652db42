"""Logging: concise lines on stderr, the same plus tracebacks in a rotating log file."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from worker.paths import default_log_dir

_configured_file: Path | None = None


def setup_logging(verbose: bool = False, quiet: bool = False, log_file: str | Path | None = None) -> Path | None:
    """Configure the root logger once per process; returns the log file in use (None if unwritable)."""
    global _configured_file
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else (logging.ERROR if quiet else logging.WARNING))
    console.setFormatter(_OneLineFormatter("%(levelname)s: %(message)s"))
    console.addFilter(lambda r: not getattr(r, "file_only", False))
    root.addHandler(console)
    path = Path(log_file) if log_file else default_log_dir() / "stream-animator.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        _configured_file = None
        return None
    fh.setLevel(logging.DEBUG if verbose else logging.INFO)
    fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    _configured_file = path
    return path


class _OneLineFormatter(logging.Formatter):
    """The console gets one line per record; tracebacks go to the log file only."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return super().format(record)


def log_file() -> Path | None:
    return _configured_file
