# ruff: noqa: UP030, UP032 - this file must parse on old Pythons (no f-strings) to say they are too old
"""One-command installer for Stream Motion Animator.

    python3 installer/install.py            # Linux / macOS
    py installer\\install.py                 # Windows

Creates `.venv` beside this checkout, installs the project into it (with the ONNX Runtime build
for this machine's GPU), checks that it imports, and prints what to run next. Run it again at any
time: it only does work when something changed. `--obs` also adds the script to OBS
(`stream-animator obs-setup`); `--uninstall` undoes that and removes the venv. `--help` lists the
options. People who do not use a terminal double-click `install.bat` (Windows) or
`install.command` (macOS) instead.

This file is only a guard: it is written so that any Python (even 2.7) can parse it, checks the
version, and hands over to `bootstrap.py`. That way an unsupported Python gets one clear line
instead of a SyntaxError from code it cannot read. Standard library only, here and in the
modules it imports.
"""

import os
import sys

# Supported: 3.10, 3.11, 3.12. MediaPipe 0.10.21 (the last release that bundles its face models)
# publishes wheels for these only; pyproject.toml says the same with requires-python.
MIN_PYTHON = (3, 10)
MAX_PYTHON_EXCLUSIVE = (3, 13)


def python_version_problem(version_info=None):
    """The one-line reason this Python cannot run the installer, or None when it can.

    `version_info` defaults to `sys.version_info`; pass a tuple such as (3, 9, 18) to ask about
    another version (the tests do).
    """
    if version_info is None:
        version_info = sys.version_info
    version = tuple(version_info[:3])
    shown = ".".join(str(part) for part in version)
    if version[:2] < MIN_PYTHON:
        why = "too old"
    elif version[:2] >= MAX_PYTHON_EXCLUSIVE:
        why = "too new (MediaPipe 0.10.21 has no packages for it yet)"
    else:
        return None
    return (
        "Python {0} is {1}: Stream Motion Animator needs Python 3.10, 3.11 or 3.12; "
        "run this script with one of them, e.g. `python3.12 installer/install.py`".format(shown, why)
    )


def main(argv=None):
    problem = python_version_problem()
    if problem is not None:
        sys.stdout.flush()
        sys.stderr.write("install.py: error: {0}\n".format(problem))
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import bootstrap  # only importable once the version is known to be supported

    return bootstrap.main(argv)


if __name__ == "__main__":
    sys.exit(main())
