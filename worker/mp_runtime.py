"""Import MediaPipe quietly: its C++ side logs to stderr (glog, TFLite) on first use."""

from __future__ import annotations

import contextlib
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence file descriptor 2 (C++ logging) for the duration; Python errors still propagate."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def mediapipe():
    """The `mediapipe` module, imported with its native logging turned down."""
    with quiet_native_stderr():
        import mediapipe as mp
    return mp
