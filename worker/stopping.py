"""Stopping an offline job (render, demo) by SIGTERM or SIGHUP as cleanly as by Ctrl+C.

The handler raises `Stopped` where the main thread happens to be, but Python ignores an
exception raised inside a `__del__`, a weakref or GC callback, or a callback from C (it prints
"Exception ignored in ..." and goes on), so a stop landing there would be lost and the job would
run to the end. The handler therefore also records the stop, and the frame loops call
`check_stop()` once a frame.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested: str | None = None  # the name of the signal that asked to stop, until the job ends


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a job: unwinds like Ctrl+C, so the half-written output is removed."""


def check_stop() -> None:
    """Raise `Stopped` if a stop was asked for and its first raise was swallowed."""
    if _requested is not None:
        raise Stopped(_requested)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP raise `Stopped` inside the block (main thread only; elsewhere a no-op)."""
    global _requested
    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        global _requested
        _requested = signal.Signals(signum).name
        raise Stopped(_requested)

    _requested = None
    before = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        _requested = None
