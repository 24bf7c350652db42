"""The OBS script imports under every Python it claims (3.7 and newer; `obs_paths.SCRIPT_PYTHON_MIN`)
and, where an older one is installed, really needs that minimum (so the claim is the truth)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
from pathlib import Path

from worker.setup.obs_paths import OBS_PYTHON_MINORS, SCRIPT_PYTHON_MIN

REPO = Path(__file__).resolve().parents[1]
IMPORT = (
    "import sys, types; sys.path.insert(0, sys.argv[1]); "
    "sys.modules['obspython'] = types.ModuleType('obspython'); import stream_animator; print('ok')"
)


def interpreters() -> dict[tuple[int, int], str]:
    """Every Python 3 this machine has (system, pyenv), one per minor version."""
    found: dict[tuple[int, int], str] = {}
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for exe in sorted(glob.glob("/usr/bin/python3.*") + glob.glob(f"{pyenv}/versions/3.*/bin/python3")):
        m = re.search(r"python3\.(\d+)$", exe) or re.search(r"versions/3\.(\d+)", exe)
        if m and os.access(exe, os.X_OK):
            found.setdefault((3, int(m.group(1))), exe)
    return found


def test_script_imports_under_every_python_it_claims():
    pythons = interpreters()
    claimed = {v: exe for v, exe in pythons.items() if v >= SCRIPT_PYTHON_MIN}
    assert claimed, "no Python 3 to test with"
    for version, exe in claimed.items():
        r = subprocess.run(
            [exe, "-c", IMPORT, str(REPO / "obs_script")],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert r.stdout.strip() == "ok", (version, r.stderr[-500:])
    older = {v: exe for v, exe in pythons.items() if v < SCRIPT_PYTHON_MIN}
    for version, exe in older.items():  # the minimum is not set too high either
        r = subprocess.run(
            [exe, "-c", IMPORT, str(REPO / "obs_script")],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert r.returncode != 0, version


def test_obs_setup_only_offers_pythons_the_script_runs_under():
    assert min(OBS_PYTHON_MINORS) == SCRIPT_PYTHON_MIN[1] and max(OBS_PYTHON_MINORS) == 12
    text = (REPO / "obs_script" / "README.md").read_text(encoding="utf-8")
    assert "3.7–3.12" in text
