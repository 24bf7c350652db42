"""The one-line status the script shows (and writes to its status file), and error extraction.

The engine keeps a snapshot dict (``worker``: the last status event, a protocol `Status` as a
dict; ``latency_ms``: its `shown_latency_ms()`; ``character``: the one on stream, from the
worker's ``character`` events); `format_status_line` turns it into what a streamer reads in
Tools -> Scripts: running or not, FPS, latency, character, tracking, and the last error.
"""

from __future__ import annotations

import os
import re

SEP = " · "


def character_label(character_id: str) -> str:
    """'alice.png' -> 'alice': ids are file names in the characters folder."""
    base, ext = os.path.splitext(character_id)
    return base if ext.lower() in (".png", ".jpg", ".jpeg", ".webp") else character_id


def format_status_line(snap: dict) -> str:
    """One line for humans, e.g. 'Running · 30.0 fps · 41 ms · astronaut · meshwarp · tracking · voice on'
    (the renderer once the worker reports it; why that one is in the status file)."""
    state = snap.get("state", "stopped")
    err = snap.get("last_error") or ""
    if state == "running":
        w = snap.get("worker") or {}  # empty until the first status event
        parts = ["Paused" if w.get("paused") else "Running"]
        if w:
            parts.append(f"{w['fps']:.1f} fps")
        if snap.get("latency_ms") is not None:
            parts.append(f"{snap['latency_ms']:.0f} ms")
        if snap.get("character"):
            parts.append(character_label(snap["character"]))
        if w.get("renderer"):
            parts.append(w["renderer"])
        if w:
            parts.append(w.get("camera_issue") or w["tracking"])  # why the character idles, if it does
            voice = w.get("voice") or {}  # {} without a voice (and from workers before it existed)
            if voice:
                parts.append("voice muted" if voice.get("muted") else "voice on")
            if w["warnings"] and not w.get("camera_issue"):
                parts.append("warning: " + w["warnings"][-1])
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
            return ln[len("error:") :].strip()
    for ln in reversed(lines):
        if _EXCEPTION_LINE.match(ln):
            return ln
    return ""


def exit_text(returncode: int, error_line: str) -> str:
    """'exit code 2: <error>' / 'killed by signal 9' for the status line."""
    what = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    return f"{what}: {error_line}" if error_line else what
