#!/usr/bin/env bash
# Stream Motion Animator for macOS: double-click this file in Finder (or run it in Terminal).
# It finds Python 3.10-3.12 (or says how to get it), installs everything into .venv, adds the
# script to OBS (quit OBS first) and checks the whole setup (doctor).
# Arguments are passed on to installer/install.py (e.g. --gpu cpu, --collection "My Show", --uninstall).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

finish() { echo; read -r -p "Press Enter to close this window." _ || true; exit "$1"; }

python_ok() {  # prints the version when "$1" is a Python 3.10-3.12
    "$1" -c 'import sys; v = sys.version_info[:2]; print("%d.%d" % v) if (3, 10) <= v < (3, 13) else sys.exit(1)' \
        2>/dev/null
}

PY=""
for v in 3.12 3.11 3.10; do
    for cand in "python$v" "/Library/Frameworks/Python.framework/Versions/$v/bin/python$v" \
                "/opt/homebrew/bin/python$v" "/usr/local/bin/python$v"; do
        if command -v "$cand" >/dev/null 2>&1 && python_ok "$cand" >/dev/null; then PY="$cand"; break 2; fi
    done
done
if [ -z "$PY" ] && command -v python3 >/dev/null 2>&1 && python_ok python3 >/dev/null; then PY=python3; fi

if [ -z "$PY" ]; then
    echo
    echo "Python 3.10, 3.11 or 3.12 is needed and was not found."
    echo "  1. Download Python 3.12 from https://www.python.org/downloads/macos/ (the macOS 64-bit"
    echo "     universal2 installer; OBS can use this one for its scripts too)."
    echo "  2. Open the downloaded file and install, then double-click install.command again."
    echo "  (With Homebrew:  brew install python@3.12)"
    open "https://www.python.org/downloads/macos/" 2>/dev/null || true
    finish 1
fi
echo "Using Python: $PY ($(python_ok "$PY"))"

uninstall=0
for a in "$@"; do [ "$a" = "--uninstall" ] && uninstall=1; done

while pgrep -x OBS >/dev/null 2>&1 || pgrep -x obs >/dev/null 2>&1; do
    read -r -p "OBS is running. Quit OBS (it rewrites its settings when it quits), then press Enter." _ || finish 1
done

if [ "$uninstall" = 1 ]; then
    "$PY" installer/install.py "$@"
    finish $?
fi
"$PY" installer/install.py --obs "$@" || finish $?
echo
echo "Checking the setup (stream-animator doctor)..."
.venv/bin/stream-animator doctor
finish $?
