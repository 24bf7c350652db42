"""Quiet by default: MediaPipe's native log lines go to the log file, not the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from worker.mp_runtime import classify_native_line

NATIVE_MARKERS = ("absl::", "inference_feedback_manager", "TensorFlow Lite", "W0000 ", "I0000 ")


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"), STREAM_ANIMATOR_CACHE=str(tmp_path / "cache"))
    env.pop("STREAM_ANIMATOR_NATIVE_STDERR", None)
    return env


def test_demo_stderr_has_no_native_lines_and_the_log_file_has_them(tmp_path):
    # a fresh cache: the character's preprocessing (face finder, segmentation) runs too
    log_file = tmp_path / "sa.log"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "--log-file",
            str(log_file),
            "demo",
            "--size",
            "128",
            "--max-frames",
            "20",
            "--out",
            "o.mp4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    for marker in NATIVE_MARKERS:
        assert marker not in r.stderr, r.stderr
    assert "wrote o.mp4" in r.stdout + r.stderr, r.stderr  # the command's own lines stay
    logged = log_file.read_text()
    assert "absl::InitializeLog" in logged
    assert "inference_feedback_manager" in logged


def test_native_error_shows_once_and_other_output_passes_through(tmp_path):
    """Lines written to fd 2 by native code (here: os.write, as C++ does) are sorted by kind."""
    log_file = tmp_path / "sa.log"
    code = textwrap.dedent(f"""
        import logging, os, sys
        from worker.mp_runtime import route_native_stderr
        from worker.log import setup_logging
        assert route_native_stderr()
        setup_logging(log_file={str(log_file)!r})
        os.write(2, b"W0000 00:00:1796290355.335760   13540 calc.cc:114] a warning\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        for _ in range(3):
            os.write(2, b"E0000 00:00:1796290355.4  13541 graph.cc:7] model file broken\\n")
        os.write(2, b"something else entirely\\n")
        print("python's own stderr", file=sys.stderr)
        logging.getLogger("x").warning("a real warning")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "a warning" not in r.stderr and "TensorFlow Lite" not in r.stderr
    assert [x for x in lines if "model file broken" in x] == ["WARNING: MediaPipe: graph.cc:7: model file broken"]
    assert "something else entirely" in lines
    assert "python's own stderr" in lines
    assert "WARNING: a real warning" in lines
    logged = log_file.read_text()
    assert "calc.cc:114: a warning" in logged and "TensorFlow Lite" in logged
    assert logged.count("model file broken") == 3


def test_classify_native_line():
    assert classify_native_line("W0000 00:00:1.5  12 a.cc:3] hi there") == ("warning", "a.cc:3: hi there")
    assert classify_native_line("F1203 09:33:28.950000 1 b.cc:9] Check failed") == ("error", "b.cc:9: Check failed")
    assert classify_native_line("WARNING: All log messages before absl::InitializeLog() is called")[0] == "warning"
    assert classify_native_line("wrote out.mp4: 3 frames") is None
    assert classify_native_line("Traceback (most recent call last):") is None
