"""Device outputs (spout, virtualcam, window), the factory, and the shared helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from worker.errors import UserError
from worker.output.base import checkerboard, composite, parse_colour
from worker.output.metrics import OutputMetrics, RateMeter
from worker.output.registry import OUTPUTS, create_output
from worker.tools.obs_run import Xvfb

FRAME = np.zeros((48, 64, 4), np.uint8)


def test_factory_knows_every_backend_and_rejects_unknown_types():
    assert set(OUTPUTS) == {"obs", "nut", "spout", "virtualcam", "ndi", "window", "file", "ws"}
    for bad in ({"type": "rtmp"}, {}, {"type": None}):
        with pytest.raises(UserError, match="outputs\\[\\].type must be one of obs, nut"):
            create_output(bad)
    with pytest.raises(UserError, match="mapping"):
        create_output(["obs"])
    with pytest.raises(UserError, match="unknown key\\(s\\) prot; allowed: host, max_clients, port, token"):
        create_output({"type": "obs", "prot": 1, "token": "t" * 20})
    obs = create_output({"type": "obs", "token": "t" * 20, "port": 0})
    assert obs.name == "obs"


@pytest.mark.skipif(sys.platform == "win32", reason="checks the message shown off Windows")
def test_spout_needs_windows():
    out = create_output({"type": "spout", "sender_name": "Anim"})
    with pytest.raises(UserError, match="^spout output needs Windows and SpoutGL$"):
        out.start()


def test_virtualcam_reports_a_missing_device_clearly():
    has_loopback = any(p.startswith("video") for p in os.listdir("/dev")) if os.path.isdir("/dev") else False
    out = create_output({"type": "virtualcam", "fps": 30})
    if sys.platform.startswith("linux") and not has_loopback:
        with pytest.raises(UserError, match="virtualcam output: no virtual camera available .*v4l2loopback"):
            out.start()
        return
    out.start()  # a real virtual camera is present: frames must go through
    out.send(np.full((48, 64, 4), 255, np.uint8), 0, time.time())
    assert out.stats()["delivered"] == 1
    out.close()


def test_virtualcam_config_errors():
    with pytest.raises(UserError, match="both width and height"):
        create_output({"type": "virtualcam", "width": 640})
    with pytest.raises(UserError, match="outputs.virtualcam.width"):
        create_output({"type": "virtualcam", "width": 5, "height": 480})


def test_window_without_display(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("every desktop OS but Linux always has a display")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="window output needs a display"):
        create_output({"type": "window"}).start()


WINDOW_SCRIPT = """
import time, numpy as np, cv2
from worker.output.window import WindowOutput
w = WindowOutput(title="anim-test")
w.start()
img = np.zeros((120, 160, 4), np.uint8); img[..., 0] = 255; img[30:90, 40:120, 3] = 255
for i in range(5):
    w.send(img, i, time.time())
assert cv2.getWindowProperty("anim-test", cv2.WND_PROP_VISIBLE) >= 1
print(w.stats()["delivered"])
w.close()
"""


def test_window_shows_frames_under_xvfb(tmp_path):
    xvfb = shutil.which("Xvfb")
    if not sys.platform.startswith("linux"):
        pytest.skip("Xvfb is Linux-only")
    if xvfb is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb missing: CI installs the xvfb package")
        pytest.skip("needs Xvfb")
    server = Xvfb("320x240x24")  # a display number of its own: no race with a parallel test
    display = server.start()
    try:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        res = subprocess.run(
            [sys.executable, "-c", WINDOW_SCRIPT], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.split()[-1] == "5"
    finally:
        server.stop()


def test_composite_and_colours():
    img = np.zeros((2, 2, 4), np.uint8)
    img[0, 0] = [255, 0, 0, 255]
    img[0, 1] = [255, 0, 0, 0]
    img[1, 0] = [255, 0, 0, 128]
    out = composite(img, (0, 0, 255))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [0, 0, 255]
    assert out[1, 0].tolist() == [128, 0, 127]
    assert parse_colour("#10ff00", "f") == (16, 255, 0) and parse_colour([1, 2, 3], "f") == (1, 2, 3)
    for bad in ("#12", "green", [1, 2], [1, 2, 300], [True, 0, 0]):
        with pytest.raises(UserError, match="^f must be"):
            parse_colour(bad, "f")
    cb = checkerboard(32, 32, 16)
    assert cb.shape == (32, 32, 3) and cb[0, 0, 0] != cb[0, 16, 0]


def test_metrics():
    m = OutputMetrics()
    assert m.snapshot()["latency_ms_p50"] is None
    now = time.time()
    for i in range(100):
        m.delivered_frame(now - (i + 1) / 1000, now)  # latencies 1..100 ms
    m.dropped_frames(3)
    s = m.snapshot()
    assert s["delivered"] == 100 and s["dropped"] == 3
    assert abs(s["latency_ms_p50"] - 50.5) < 0.6 and abs(s["latency_ms_p95"] - 95.05) < 0.6
    r = RateMeter(window=2.0)
    for i in range(31):
        r.tick(100.0 + i / 30)
    assert abs(r.rate(101.0) - 30) < 0.5
    assert r.rate(200.0) == 0.0
