"""Where a worker's start-up time goes: named marks, in seconds since the process began.

A restarted worker is a frozen picture in OBS until its first frame, so each step of the way
(imports, outputs listening, character loaded, tracker built, camera open, first frame tracked,
first frame sent) is logged once as ``start-up: NAME at 1.23 s``; `bench --startup` reads these
lines from the worker's log to say where the time went.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger("worker.startup")

LINE_PREFIX = "start-up: "


def _process_start() -> float:
    """Wall-clock time this process began (its creation, so the interpreter's own start counts)."""
    try:
        import psutil

        return psutil.Process(os.getpid()).create_time()
    except Exception:  # noqa: BLE001 - no psutil or no /proc: count from the first import instead
        return time.time()


class Startup:
    """Marks taken once each; thread-safe (the stage threads mark their first frames)."""

    def __init__(self) -> None:
        self.t0 = _process_start()
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, name: str) -> None:
        with self._lock:
            if name in self.marks:
                return
            at = time.time() - self.t0
            self.marks[name] = round(at, 3)
        log.info("%s%s at %.3f s", LINE_PREFIX, name, at)


STARTUP = Startup()  # one per process: the worker starts once


def parse_log(text: str, pid: int | None = None) -> dict[str, float]:
    """The marks of one worker from its log text (the last run of `pid`, or of any pid)."""
    marks: dict[str, float] = {}
    for line in text.splitlines():
        i = line.find(LINE_PREFIX)
        if i < 0 or (pid is not None and f" {pid} " not in line[:i]):
            continue
        name, _, rest = line[i + len(LINE_PREFIX) :].rpartition(" at ")
        try:
            at = float(rest.split()[0])
        except (ValueError, IndexError):
            continue
        if name in marks:  # a later run logging to the same file: its marks replace these
            marks = {}
        marks[name] = at
    return marks
