"""The one-line status the script shows (and writes to its status file), and error extraction.

The engine keeps a snapshot dict; `format_status_line` turns it into what a streamer reads in
Tools -> Scripts: running or not, FPS, latency, character, tracking, and the last error.
"""

from __future__ import annotations

import math
import os
import re

SEP = " · "


def latency_ms(value) -> float | None:
    """The worker's end-to-end latency in ms from its status (`latency_ms`, or `latency`).

    Accepts a number of milliseconds or a dict of them (its `p50`, else `total`, else the
    `pipeline` entry, else `p95`); None when there is nothing usable yet.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        for key in ("p50", "total", "pipeline", "p95"):
            if value.get(key) is not None:
                return latency_ms(value[key])
    return None


def character_label(character_id: str) -> str:
    """'alice.png' -> 'alice': ids are file names in the characters folder."""
    base, ext = os.path.splitext(character_id)
    return base if ext.lower() in (".png", ".jpg", ".jpeg", ".webp") else character_id


def tracking_text(value) -> str:
    if value is True:
        return "face tracked"
    if value is False:
        return "no face"
    if isinstance(value, dict):
        state = value.get("state") or value.get("status")
        return str(state) if state else "?"
    return str(value) if value not in (None, "") else "?"


def format_status_line(snap: dict) -> str:
    """One line for humans, e.g. 'Running · 30.0 fps · 41 ms · astronaut · face tracked'."""
    state = snap.get("state", "stopped")
    err = snap.get("last_error") or ""
    if state == "running":
        w = snap.get("worker") or {}
        parts = ["Paused" if w.get("paused") else "Running"]
        fps = w.get("fps")
        if isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps):
            parts.append(f"{fps:.1f} fps")
        lat = latency_ms(w.get("latency_ms", w.get("latency")))
        if lat is not None:
            parts.append(f"{lat:.0f} ms")
        if w.get("character"):
            parts.append(character_label(str(w["character"])))
        if "tracking" in w:
            parts.append(tracking_text(w.get("tracking")))
        warnings = w.get("warnings") or []
        if warnings:
            parts.append("warning: " + str(warnings[-1] if isinstance(warnings, list) else warnings))
        return SEP.join(parts)
    if state == "starting":
        return "Starting worker…"
    if state == "restarting":
        wait = snap.get("restart_in")
        when = f"restarting in {wait:.0f} s" if isinstance(wait, (int, float)) else "restarting"
        return SEP.join(p for p in ("Worker stopped", err, when) if p)
    if state == "error":
        return SEP.join(p for p in ("Not running", err) if p)
    return SEP.join(p for p in ("Stopped", err) if p)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def last_error_line(text: str) -> str:
    """The useful line of a worker's stderr: its last 'error: ...' line, else the last line that
    names a Python exception, else "" (library chatter such as TensorFlow's is no diagnosis).

    The worker prints a user error as one 'error: ...' line; a crash ends with the exception.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith("error:"):
            return ln[len("error:"):].strip()
    for ln in reversed(lines):
        if _EXCEPTION_LINE.match(ln):
            return ln
    return ""


def exit_text(returncode: int, error_line: str) -> str:
    """'exit code 2: <error>' / 'killed by signal 9' for the status line."""
    what = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    return f"{what}: {error_line}" if error_line else what
