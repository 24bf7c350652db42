"""Launch, watch and stop the worker process (its own venv Python, never OBS's).

The worker gets the secret token in its environment and OBS's PID on its command line; it exits
by itself when that PID dies, which covers OBS being killed (SIGTERM does not run script_unload).
Its stdin is a pipe held by OBS as a second, OS-level signal: the pipe closes when OBS dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from .status import last_error_line

ENV_DROP = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")  # OBS's embedded Python may set them


def worker_command(
    python: str,
    config_path: str,
    source: str,
    parent_pid: int,
    log_file: str | None = None,
    mic: str | None = None,
    lipsync: str | None = None,
) -> list[str]:
    """argv of `python -m worker run ...` as the script launches it; `mic` (a microphone or a
    file) adds the voice, `lipsync` how it shares the mouth with the camera."""
    cmd = [python, "-m", "worker"]
    if log_file:
        cmd += ["--log-file", log_file]
    cmd += ["run", "--config", config_path, "--source", source, "--parent-pid", str(parent_pid), "--ready-json"]
    if mic:
        cmd += ["--mic", mic]
        if lipsync:
            cmd += ["--lipsync", lipsync]
    return cmd


def parse_ready_line(line: str) -> dict | None:
    """The worker's `{"event": "ready", ...}` stdout line as a dict, else None."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("event") != "ready":
        return None
    if not isinstance(msg.get("control_port"), int):
        return None
    return msg


def child_env(token_var: str, token: str, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    for k in ENV_DROP:
        env.pop(k, None)
    env[token_var] = token
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


class _KillOnCloseJob:
    """Windows: a job object holding the worker's process tree, killed as a whole by `kill()`
    and by Windows itself when OBS exits (the handle closes). A venv's python.exe is a launcher
    that starts the real interpreter as a child, so killing the launcher alone would orphan it.
    Best effort: the child is assigned right after it starts.
    """

    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
    JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9
    handle: Any = None

    def __init__(self) -> None:
        if sys.platform != "win32":  # (also tells the type checker that the rest is Windows code)
            raise OSError("job objects exist only on Windows")
        import ctypes
        from ctypes import wintypes

        class Basic(ctypes.Structure):
            _fields_ = [
                ("PerProcessUserTimeLimit", ctypes.c_int64),
                ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", wintypes.DWORD),
                ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t),
                ("ActiveProcessLimit", wintypes.DWORD),
                ("Affinity", ctypes.c_size_t),
                ("PriorityClass", wintypes.DWORD),
                ("SchedulingClass", wintypes.DWORD),
            ]

        class Extended(ctypes.Structure):
            _fields_ = [
                ("BasicLimitInformation", Basic),
                ("IoInfo", ctypes.c_ulonglong * 6),
                ("ProcessMemoryLimit", ctypes.c_size_t),
                ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t),
            ]

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.CreateJobObjectW.restype = wintypes.HANDLE
        k32.CreateJobObjectW.argtypes = [ctypes.c_void_p, wintypes.LPCWSTR]
        k32.SetInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD]
        k32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
        k32.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        self.k32: Any = k32
        self.ctypes: Any = ctypes
        self.handle = k32.CreateJobObjectW(None, None)
        if not self.handle:
            raise OSError(ctypes.get_last_error(), "CreateJobObject failed")
        info = Extended()
        info.BasicLimitInformation.LimitFlags = self.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not k32.SetInformationJobObject(
            self.handle, self.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), ctypes.sizeof(info)
        ):
            err = ctypes.get_last_error()
            self.close()
            raise OSError(err, "SetInformationJobObject failed")

    def assign(self, proc: subprocess.Popen) -> None:
        if not self.k32.AssignProcessToJobObject(self.handle, int(proc._handle)):  # type: ignore[attr-defined]
            raise OSError(self.ctypes.get_last_error(), "AssignProcessToJobObject failed")

    def kill(self) -> None:
        if self.handle:
            self.k32.TerminateJobObject(self.handle, 1)

    def close(self) -> None:
        if self.handle:
            self.k32.CloseHandle(self.handle)
            self.handle = None


class WorkerProcess:
    """One run of the worker. `start()` returns at once; `ready` fills in from a reader thread."""

    def __init__(self, argv: list[str], env: dict, cwd: str | None, stderr_path: str):
        self.argv, self.env, self.cwd, self.stderr_path = argv, env, cwd, stderr_path
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self._ready: dict | None = None
        self._stdout_tail: list[str] = []
        self._reader: threading.Thread | None = None
        self._job: _KillOnCloseJob | None = None
        self.job_error = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def ready(self) -> dict | None:
        return self._ready

    def start(self) -> None:
        flags = 0
        if sys.platform.startswith("win"):
            # no console window flashing up next to OBS; own group so Ctrl+C in OBS does not hit it
            flags = subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP
        os.makedirs(os.path.dirname(self.stderr_path) or ".", exist_ok=True)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                creationflags=flags,
                close_fds=True,
            )
        self.started_at = time.monotonic()
        if sys.platform.startswith("win"):
            try:
                self._job = _KillOnCloseJob()
                self._job.assign(self.proc)
            except OSError as e:  # still works, only a killed worker's child could linger
                self.job_error = f"job object: {e}"
        self._reader = threading.Thread(target=self._read_stdout, name="stream-animator-worker-stdout", daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if self._ready is None:
                ready = parse_ready_line(line)
                if ready is not None:
                    self._ready = ready
                    continue
            self._stdout_tail = (self._stdout_tail + [line])[-20:]
        self.proc.stdout.close()

    def poll(self) -> int | None:
        """The exit code once the worker has exited, else None (never blocks)."""
        return None if self.proc is None else self.proc.poll()

    def run_seconds(self) -> float:
        return time.monotonic() - self.started_at if self.started_at else 0.0

    def error_text(self) -> str:
        """The worker's last error line from its stderr (the file holds the whole story)."""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        return last_error_line(text) or last_error_line("\n".join(self._stdout_tail))

    def stop(self, grace: float = 2.0) -> int | None:
        """Make sure the worker is gone: wait `grace` s (after a shutdown request), then kill."""
        if self.proc is None:
            return None
        p = self.proc
        if p.poll() is None:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    p.kill()
                    try:
                        p.wait(timeout=2.0)
                    except subprocess.TimeoutExpired:
                        pass
        if self._job is not None:  # the whole tree, e.g. the interpreter behind a venv launcher
            self._job.kill()
            self._job.close()
            self._job = None
        if p.stdin:
            try:
                p.stdin.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        return p.poll()
