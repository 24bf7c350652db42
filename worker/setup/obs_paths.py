"""Where OBS Studio keeps its configuration, and which Python it can embed, per OS.

Pure functions of (platform, environment, file-exists): the same code answers for Windows and
macOS when it runs on Linux, which is how the tests check those paths.

Facts from OBS's sources (frontend-tools/scripts.cpp, obs-scripting-python-import.c):
- The user config (`global.ini` up to OBS 30, `user.ini` from 31 on) holds `[Basic]
  SceneCollectionFile` (the current collection's file name) and `[Python] Path64bit`.
- Windows: Path64bit is the folder holding `python3XY.dll`; macOS: the folder holding
  `Python.framework` (OBS appends `Python.framework/Versions/3.X/lib/libpython3.X.dylib`).
  OBS tries 3.12 down to 3.6; the script imports under 3.7 and newer (tests/test_obs_python_range.py
  imports it under every Python from 3.7 on that the machine has), so 3.6 counts as unusable.
  Linux OBS links the distribution's Python: nothing to set.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FLATPAK_ID = "com.obsproject.Studio"
SCRIPT_PYTHON_MIN = (3, 7)  # the oldest Python the OBS script runs under (`from __future__ import annotations`)
# what OBS tries (3.12 .. 3.6), newest first, that the script can run under
OBS_PYTHON_MINORS = tuple(m for m in range(12, 5, -1) if (3, m) >= SCRIPT_PYTHON_MIN)
PYTHON_SECTION, PYTHON_KEY = "Python", "Path64bit"


def os_kind(platform: str) -> str:
    """'windows', 'macos' or 'linux' for a sys.platform value."""
    if platform.startswith("win"):
        return "windows"
    if platform == "darwin":
        return "macos"
    return "linux"


def _join(kind: str, *parts: str) -> str:
    return ntpath.join(*parts) if kind == "windows" else posixpath.join(*parts)


def obs_config_dirs(platform: str, env: Mapping[str, str], home: str) -> list[str]:
    """OBS's configuration folders on this OS, the usual one first (Linux: native, then Flatpak)."""
    kind = os_kind(platform)
    if kind == "windows":
        appdata = env.get("APPDATA") or ntpath.join(home, "AppData", "Roaming")
        return [ntpath.join(appdata, "obs-studio")]
    if kind == "macos":
        return [posixpath.join(home, "Library", "Application Support", "obs-studio")]
    xdg = env.get("XDG_CONFIG_HOME") or posixpath.join(home, ".config")
    return [posixpath.join(xdg, "obs-studio"), posixpath.join(home, ".var", "app", FLATPAK_ID, "config", "obs-studio")]


def config_dir_of_process(platform: str, env: Mapping[str, str]) -> str | None:
    """The configuration folder an OBS process with environment `env` uses (None: cannot tell)."""
    home = env.get("HOME") or env.get("USERPROFILE")
    kind = os_kind(platform)
    if kind == "windows":
        if not env.get("APPDATA") and not home:
            return None
        return obs_config_dirs(platform, env, home or "")[0]
    if not home:
        return None
    if kind == "linux" and env.get("FLATPAK_ID") == FLATPAK_ID and not env.get("XDG_CONFIG_HOME"):
        return obs_config_dirs(platform, env, home)[1]
    return obs_config_dirs(platform, env, home)[0]


def obs_python_library(platform: str, folder: str, minor: int) -> str | None:
    """The file OBS loads for Python 3.`minor` from the configured `folder` (None on Linux)."""
    kind = os_kind(platform)
    if kind == "windows":
        return ntpath.join(folder, f"python3{minor}.dll")
    if kind == "macos":
        return posixpath.join(folder, "Python.framework", "Versions", f"3.{minor}", "lib", f"libpython3.{minor}.dylib")
    return None


def python_obs_would_load(platform: str, folder: str, exists: Callable[[str], bool]) -> str | None:
    """'3.X' that OBS would load from `folder` and the script runs under (3.12 down to 3.7), or None."""
    if not folder:
        return None
    for minor in OBS_PYTHON_MINORS:
        lib = obs_python_library(platform, folder, minor)
        if lib and exists(lib):
            return f"3.{minor}"
    return None


def obs_folder_for_python(platform: str, base_prefix: str) -> str | None:
    """What to put in OBS's Python setting for the Python installed at `base_prefix`.

    Windows: the install folder itself (python3XY.dll sits there). macOS: the folder that holds
    `Python.framework` (python.org: /Library/Frameworks; Homebrew: .../python@3.X/Frameworks).
    None when that Python cannot be embedded by OBS (Microsoft Store Python, a non-framework macOS
    build such as pyenv's default, Linux).
    """
    kind = os_kind(platform)
    if kind == "windows":
        if "windowsapps" in base_prefix.lower():  # Store Python: OBS cannot load its DLL
            return None
        return base_prefix.rstrip("\\/")
    if kind == "macos":
        marker = "/Python.framework/Versions/"
        pos = base_prefix.find(marker)
        if pos <= 0:
            return None
        folder = base_prefix[:pos]
        # Homebrew: the versioned Cellar folder disappears on `brew upgrade`; its opt/ link stays
        m = re.fullmatch(r"(.*)/Cellar/(python@3\.\d+)/[^/]+/Frameworks", folder)
        return f"{m.group(1)}/opt/{m.group(2)}/Frameworks" if m else folder
    return None


def python_install_candidates(platform: str, env: Mapping[str, str], home: str) -> list[str]:
    """Where compatible Pythons are usually installed, as OBS-setting folders, newest first."""
    kind = os_kind(platform)
    out: list[str] = []
    if kind == "windows":
        local = env.get("LOCALAPPDATA") or ntpath.join(home, "AppData", "Local")
        program_files = env.get("ProgramFiles") or "C:\\Program Files"
        for minor in OBS_PYTHON_MINORS:
            out.append(ntpath.join(local, "Programs", "Python", f"Python3{minor}"))
            out.append(ntpath.join(program_files, f"Python3{minor}"))
    elif kind == "macos":
        out.append("/Library/Frameworks")  # python.org installers
        for minor in OBS_PYTHON_MINORS:
            for brew in ("/opt/homebrew", "/usr/local"):
                out.append(f"{brew}/opt/python@3.{minor}/Frameworks")
    return out


@dataclass(frozen=True)
class PythonChoice:
    """What OBS's Python setting should be: `folder` to set ("" = leave it), and why."""

    folder: str
    version: str
    message: str
    ok: bool


INSTALL_ADVICE = {
    "windows": "install Python 3.12 (64-bit) from https://www.python.org/downloads/windows/ "
    "(not the Microsoft Store one), then run `stream-animator obs-setup` again",
    "macos": "install Python 3.12 from https://www.python.org/downloads/macos/ (the universal2 "
    "installer), then run `stream-animator obs-setup` again",
}


def choose_obs_python(
    platform: str, current: str, base_prefix: str, env: Mapping[str, str], home: str, exists: Callable[[str], bool]
) -> PythonChoice:
    """Decide OBS's Python setting: keep a working one, else the worker's base Python, else a known install."""
    kind = os_kind(platform)
    if kind == "linux":
        return PythonChoice("", "", "Linux: OBS uses the system's Python, nothing to set", True)
    have = python_obs_would_load(platform, current, exists)
    if have:
        return PythonChoice("", have, f"OBS's Python is already set: {current} (Python {have})", True)
    tried = []
    own = obs_folder_for_python(platform, base_prefix)
    for folder in ([own] if own else []) + python_install_candidates(platform, env, home):
        if folder in tried:
            continue
        tried.append(folder)
        version = python_obs_would_load(platform, folder, exists)
        if version:
            why = "the Python the worker was installed with" if folder == own else "found installed"
            was = f" (was {current!r}, which OBS cannot load)" if current else ""
            return PythonChoice(folder, version, f"OBS's Python set to {folder} (Python {version}, {why}){was}", True)
    return PythonChoice("", "", f"no Python that OBS can load was found; {INSTALL_ADVICE[kind]}", False)
