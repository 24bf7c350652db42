"""Is OBS running on this configuration? (It rewrites its files when it exits: never edit under it.)"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from worker.setup.obs_paths import config_dir_of_process

OBS_PROCESS_NAMES = {"obs", "obs64.exe", "obs32.exe", "obs.exe"}  # Linux/Flatpak, Windows, macOS ("OBS")


@dataclass(frozen=True)
class ObsProcess:
    pid: int
    name: str
    config_dir: str | None  # None: its environment could not be read


def _same(a: str, b: Path) -> bool:
    try:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
    except OSError:
        return False


def running_obs(config_dir: Path | None = None, platform: str = sys.platform) -> list[ObsProcess]:
    """OBS processes using `config_dir` (all OBS processes when None). A process whose environment
    cannot be read counts as using it: refusing wrongly is safer than editing under a running OBS."""
    import psutil

    found = []
    for p in psutil.process_iter(["name", "cmdline", "status"]):
        name = (p.info.get("name") or "").lower()
        if name not in OBS_PROCESS_NAMES or p.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        cmdline = p.info.get("cmdline") or []
        if any(a in ("--portable", "-p") for a in cmdline):
            continue  # portable mode keeps its configuration beside the program
        try:
            where = config_dir_of_process(platform, p.environ())
        except (psutil.AccessDenied, psutil.NoSuchProcess, OSError):
            where = None
        if config_dir is None or where is None or _same(where, config_dir):
            found.append(ObsProcess(p.pid, p.info.get("name") or name, where))
    return found
