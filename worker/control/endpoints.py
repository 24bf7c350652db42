"""Where a worker started by hand leaves its control port and token, for `stream-animator ctl`.

One owner-only file per worker (`<logs>/control/<pid>.json`), removed when the worker stops, so
two workers never overwrite each other's. A reader trusts a file only while its process is alive
and is the one that wrote it (same PID and start time: a reused PID does not count); files of
workers that died without cleaning up are deleted on sight.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from worker.paths import default_log_dir


@dataclass(frozen=True)
class Endpoint:
    pid: int
    port: int
    token: str
    started: float  # the process's start time (seconds since the epoch)
    path: Path


def folder() -> Path:
    return default_log_dir() / "control"


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def save(port: int, token: str) -> Path | None:
    """Record this process's port and token (mode 0600, atomically); None when it cannot be written."""
    pid = os.getpid()
    path = folder() / f"{pid}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": port, "token": token, "pid": pid, "started": _started(pid)}, f)
        os.replace(tmp, path)
        return path
    except OSError:
        return None


def remove(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def running() -> list[Endpoint]:
    """The workers started by hand that are running now, oldest first (stale files deleted)."""
    out = []
    for path in sorted(folder().glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            ep = Endpoint(int(data["pid"]), int(data["port"]), str(data["token"]), float(data["started"]), path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: leave it
        started = _started(ep.pid)
        if started is None or abs(started - ep.started) > 1.0:
            remove(path)  # that worker is gone (killed before it could clean up)
            continue
        out.append(ep)
    return sorted(out, key=lambda e: e.started)
