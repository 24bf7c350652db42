"""A package that fails to import, named with the fix that works.

Standard library only and no `worker` imports: the installer loads this file by path (before the
worker is installed) and the CLI uses it when a command's import fails, so one table serves both.
"""

from __future__ import annotations

import os

INSTALL = "python3 installer/install.py" if os.name != "nt" else "py installer\\install.py"

# (text in the import error, what fixes it); the first match wins
HINTS = (
    ("libGL.so.1", "install the OpenGL library OpenCV needs: sudo apt install libgl1"),
    ("libgthread", "install the GLib library OpenCV needs: sudo apt install libglib2.0-0"),
    ("libEGL", "install the EGL library MediaPipe needs: sudo apt install libegl1"),
    ("libportaudio", "install PortAudio: sudo apt install libportaudio2"),
    ("PortAudio library not found", "install PortAudio: sudo apt install libportaudio2"),
    ("NumPy 1.x cannot be run in", f"numpy 2 got installed but MediaPipe needs numpy<2; run {INSTALL} --force"),
    ("DLL load failed", "install the Microsoft Visual C++ Redistributable (x64) and run again"),
)

# import name -> the pip distribution that provides it (when they differ)
DISTRIBUTIONS = {
    "cv2": "opencv-contrib-python",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "av": "av (PyAV)",
    "sounddevice": "sounddevice",
}


def hint(error: str) -> str | None:
    """The fix for an import error's text, if it is a known one."""
    return next((fix for key, fix in HINTS if key in error), None)


def top_module(e: BaseException) -> str | None:
    """The top-level package an ImportError is about (`cv2` for `cv2.data`), if it says."""
    name = getattr(e, "name", None)
    return name.split(".")[0] if name else None


def explain(package: str, error: str) -> str:
    """One line: which package cannot be imported, why, and what to do."""
    first = error.strip().splitlines()[0] if error.strip() else "import failed"
    dist = DISTRIBUTIONS.get(package, package)
    shown = package if dist == package else f"{package} (package {dist})"
    fix = hint(error) or f"repair the install: {INSTALL} --force"
    return f"cannot import {shown}: {first} -> {fix}"


def culprit(e: BaseException, ours: str) -> str | None:
    """The top-level package whose import raised `e`: the first traceback frame outside `ours`
    (the worker's own folder) and the standard library, as a module name under its `sys.path` entry;
    else the name the error carries (a package that is not installed at all)."""
    import sys
    import sysconfig

    tb = e.__traceback__
    roots = sorted((os.path.abspath(p) for p in sys.path if p), key=len, reverse=True)
    skip = [os.path.abspath(ours)] + [os.path.abspath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")]
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
        if path.startswith("<"):  # frozen importlib
            continue
        path = os.path.abspath(path)
        if any(path.startswith(s + os.sep) for s in skip):
            continue
        for root in roots:
            if path.startswith(root + os.sep):
                first = path[len(root) + 1 :].split(os.sep)[0]
                return first[:-3] if first.endswith(".py") else first
    return top_module(e)
