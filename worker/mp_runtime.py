"""Keep MediaPipe's native logging (absl/glog, TensorFlow Lite) off the terminal.

Its C++ side writes straight to file descriptor 2, from its own threads, at any time (e.g.
"All log messages before absl::InitializeLog() is called are written to STDERR",
"inference_feedback_manager.cc:114] Feedback manager requires ..."). A Python redirect around
a call cannot catch lines written later by a graph thread, so the CLI routes fd 2 through a pipe
for the whole process (`route_native_stderr`): native info/warning lines go to the log file only,
a native error shows once as one console line, anything else passes through unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

log = logging.getLogger("worker.native")

# absl/glog: "W0000 00:00:1796290355.335760   13540 inference_feedback_manager.cc:114] message"
_GLOG = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^:\s]+:\d+)\] ?(.*)$")
# TensorFlow Lite / absl pre-init lines: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_TFLITE = re.compile(r"^(INFO|WARNING|ERROR|VERBOSE): (.*)$")

_router: _StderrRouter | None = None


def classify_native_line(line: str) -> tuple[str, str] | None:
    """('info'|'warning'|'error', message) for a native log line, None for anything else."""
    m = _GLOG.match(line)
    if m:
        level = {"I": "info", "W": "warning", "E": "error", "F": "error"}[m.group(1)]
        return level, f"{m.group(2)}: {m.group(3)}"
    m = _TFLITE.match(line)
    if m:
        level = {"INFO": "info", "VERBOSE": "info", "WARNING": "warning", "ERROR": "error"}[m.group(1)]
        return level, m.group(2)
    return None


class _StderrRouter:
    """fd 2 -> pipe -> a reader thread that sorts lines; Python's own stderr keeps the terminal."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.terminal_fd = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        self._read_fd = r
        self._seen_errors: set[str] = set()
        self.terminal = os.fdopen(self.terminal_fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace")
        self._thread = threading.Thread(target=self._pump, name="native-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._line(pending.decode("utf-8", "replace"))
                os.close(self._read_fd)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        kind = classify_native_line(line)
        if kind is None:  # not MediaPipe's logging (a subprocess, a crash report): show as is
            log.info("stderr: %s", line, extra={"file_only": True})
            self.terminal.write(line + "\n")
            return
        level, msg = kind
        if level != "error" or msg in self._seen_errors:
            log.info("native %s: %s", level, msg, extra={"file_only": True})
            return
        self._seen_errors.add(msg)  # a real problem: one console line, once
        log.warning("MediaPipe: %s", msg)

    def close(self) -> None:
        """At exit: let the reader drain what is left in the pipe, and send later native writes
        nowhere. MediaPipe threads still starting or stopping during interpreter teardown log
        after this; on the terminal those lines would follow, and hide, the command's last line
        (its error). Python's own stderr keeps the terminal."""
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # closes the pipe's last write end: the reader sees EOF
        os.close(devnull)
        self._thread.join(timeout=1.0)


def route_native_stderr() -> bool:
    """Route native stderr as described above, once per process. Returns whether it is active.

    Only for a real process stderr (not under a test runner's capture, which replaced sys.stderr).
    Call before logging's console handler is made: that handler writes to the new sys.stderr.
    """
    global _router
    if _router is not None:
        return True
    if sys.stderr is not sys.__stderr__ or os.environ.get("STREAM_ANIMATOR_NATIVE_STDERR") == "show":
        return False
    try:
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return False
    except (AttributeError, OSError, ValueError):
        return False
    _router = _StderrRouter()
    sys.stderr = sys.__stderr__ = _router.terminal  # type: ignore[misc]  # native code writes to fd 2's Python side too
    atexit.register(_router.close)
    return True


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence fd 2 (C++ logging) for the duration; Python errors still propagate.

    A no-op when `route_native_stderr` is active: the lines then belong in the log file.
    """
    if _router is not None:
        yield
        return
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
