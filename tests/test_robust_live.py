"""`run` never hangs, never runs on with nothing working, and never lets the character vanish.

- the preview window (under a real X server, Xvfb) ends the process within 5 s of any stop;
- no working output: non-zero exit, one line per output; some working: said once which;
- no camera, or a camera that fails: the character stays on stream, idling, and the status says why;
- a source that is not a video is an error at start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from worker.capture import CaptureError, VideoFileSource
from worker.commands.run import character_overrides
from worker.config import load_settings
from worker.control import protocol as P
from worker.live.worker import LiveWorker
from worker.paths import DEMO_CHARACTER, SAMPLE_CHARACTERS_DIR, SAMPLE_DRIVER
from worker.tools.obs_run import Xvfb

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"), **extra)
    return env


def _run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "worker", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env or _env(tmp_path),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# --- the preview window under a real X server -------------------------------------------------------


@pytest.fixture
def xvfb():
    """A private X server on a display number it picks itself (no race with a parallel test)."""
    server = Xvfb("800x600x24")
    yield server.start()
    server.stop()


@pytest.mark.parametrize("stop", ["duration", "SIGINT", "SIGTERM", "shutdown"])
def test_window_output_ends_promptly_under_x(xvfb, tmp_path, stop):
    """The README's first-session command: the window closes and the process is gone within 5 s
    of the end, whether the end is --duration, Ctrl+C, a kill or `ctl shutdown` (what OBS sends)."""
    duration = 3.0 if stop == "duration" else 60.0
    token, port = P.make_token(), _free_port()
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "run",
        "--source",
        str(SAMPLE_DRIVER),
        "--output",
        "window",
        "--duration",
        str(duration),
        "--json",
        "--control-port",
        str(port),
    ]
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path, DISPLAY=xvfb, **{P.ENV_TOKEN: token}),
        start_new_session=True,
    )
    lines: list[str] = []
    running = threading.Event()

    def read_stderr() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            if line.startswith("running:"):
                running.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        assert running.wait(60), "".join(lines[-20:])
        started = time.monotonic()
        if stop == "duration":
            end = started + duration
        else:
            # frames are being shown: asked for, not waited for by the clock (a busy box starts late)
            deadline = time.monotonic() + 60
            shown = 0
            while shown <= 10 and time.monotonic() < deadline:
                time.sleep(0.2)
                with P.ControlClient(port, token, timeout=5).connect() as c:
                    shown = c.request("status")["outputs"].get("window", {}).get("delivered", 0)
            end = time.monotonic()
            if stop == "shutdown":
                with P.ControlClient(port, token, timeout=5).connect() as c:
                    c.request("shutdown")
            else:
                p.send_signal(getattr(signal, stop))
        try:
            out, _ = p.communicate(timeout=end - time.monotonic() + 15.0)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 15 s after the end ({stop})")
        gone = time.monotonic()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert gone - end < 15.0  # under a second here; the bound holds on a busy machine
    assert p.returncode == 0, "".join(lines[-10:])
    summary = json.loads(out.strip().splitlines()[-1])
    if stop != "duration":  # the window really showed frames (3 s may end before the first on a busy box)
        assert summary["outputs"]["window"]["delivered"] > 10
    assert "running: 1 output (window)" in "".join(lines)


# --- outputs: all broken, some broken -------------------------------------------------------------


def test_no_working_output_is_a_nonzero_exit_naming_it(tmp_path):
    r = _run(["--source", str(SAMPLE_DRIVER), "--output", "file:/proc/nope/x.mp4"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = _errors(r.stderr)
    assert line.startswith("error: no output can run: file: /proc/nope/x.mp4: cannot write there")


def test_window_without_display_from_the_config_is_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"camera: {{source: {SAMPLE_DRIVER}}}\noutputs: [{{type: window}}, {{type: file, path: /proc/x/y.mp4}}]\n"
    )
    env = _env(tmp_path)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = _run(["--config", str(cfg)], tmp_path, env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    i = lines.index("error: no output can run:")
    assert lines[i + 1].strip().startswith("window: window output needs a display")
    assert lines[i + 2].strip().startswith("file: /proc/x/y.mp4: cannot write there")


def test_some_outputs_broken_says_once_which_run(tmp_path):
    """One broken, one working: runs, says once which does not run and which do, by --character PATH."""
    r = _run(
        [
            "--source",
            str(SAMPLE_DRIVER),
            "--character",
            str(DEMO_CHARACTER),
            "--output",
            "file:/proc/nope/x.mp4",
            "--output",
            "file:ok.mp4",
            "--duration",
            "3",
            "--json",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("/proc/nope/x.mp4") == 1  # said once, not once per layer
    assert "not running: output file: /proc/nope/x.mp4: cannot write there" in r.stderr
    assert "running: 1 output (file), stops after 3 s" in r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["character"] == DEMO_CHARACTER.name  # --character took a full path
    # frames written (how many depends on the machine: ~70 here, none in 1.5 s at load average 30)
    assert summary["outputs"]["file"]["delivered"] > 0 and (tmp_path / "ok.mp4").stat().st_size > 0


def test_unavailable_outputs_beside_a_working_one_are_said_once(tmp_path):
    env = _env(tmp_path)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = _run(
        [
            "--source",
            str(SAMPLE_DRIVER),
            "--output",
            "window",
            "--output",
            "spout",
            "--output",
            "file:ok.mp4",
            "--duration",
            "1",
        ],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr
    assert "not running: output window: window output needs a display" in r.stderr
    assert "not running: output spout: spout output needs Windows and SpoutGL" in r.stderr
    assert r.stderr.count("needs a display") == 1 and "running: 1 output (file)" in r.stderr
    r = _run(["--source", str(SAMPLE_DRIVER), "--output", "window", "--output", "spout"], tmp_path, env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-3:] == [
        "error: no output can run:",
        "  --output window: window output needs a display (DISPLAY/WAYLAND_DISPLAY is not set)",
        "  --output spout: spout output needs Windows and SpoutGL",
    ]


def test_character_given_as_a_path():
    assert character_overrides(str(DEMO_CHARACTER), None) == {
        "characters.folder": str(DEMO_CHARACTER.resolve().parent),
        "characters.current": DEMO_CHARACTER.name,
    }
    assert character_overrides("fox.png", None) == {"characters.current": "fox.png"}


# --- the camera: missing, failing, not a video ----------------------------------------------------


class Camera:
    """The bundled clip as a camera that delivers `good` frames, then is unplugged for `down_s`
    seconds (reads and re-opening fail), then is back. `good=0`: never there at all."""

    def __init__(self, good: int, down_s: float) -> None:
        self.good, self.down_s = good, down_s
        self.down_since: float | None = None if good else time.monotonic()
        self.opened = 0

    def open(self):
        if self.down_since is not None and time.monotonic() - self.down_since < self.down_s:
            raise CaptureError("camera 0 could not be opened (not connected?)")
        self.opened += 1
        src = VideoFileSource(SAMPLE_DRIVER, loop=True, realtime=True)
        if self.opened == 1 and self.good:
            real, n = src.read, [0]

            def read():
                n[0] += 1
                if n[0] > self.good:
                    self.down_since = time.monotonic()
                    raise CaptureError("camera 0 stopped delivering frames")
                return real()

            src.read = read  # type: ignore[method-assign]
        return src


class Viewer:
    """What OBS sees: the frames of the "obs" output, read on a thread, with their arrival times."""

    def __init__(self, w: LiveWorker, token: str) -> None:
        self.rx = P.FrameReceiver(w.frame_port, token).connect()
        self.got: list[tuple[float, np.ndarray]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                f = self.rx.poll(0.2)
            except ConnectionError:
                return
            if f is not None:
                rgba = np.frombuffer(bytes(f.data), np.uint8).reshape(f.height, f.width, 4)
                self.got.append((time.monotonic(), rgba))

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.rx.close()


def _worker(camera: Camera) -> tuple[LiveWorker, Viewer]:
    cfg = load_settings(
        None,
        {
            "characters.folder": str(SAMPLE_CHARACTERS_DIR),
            "characters.current": DEMO_CHARACTER.name,
            "characters.size": 256,
            "outputs": [{"type": "obs"}],
        },
    )
    token = P.make_token()
    w = LiveWorker(cfg, token, source_factory=camera.open).start()
    return w, Viewer(w, token)


def _moves(frames: list[np.ndarray]) -> float:
    """How much the picture changes over the frames (0: frozen)."""
    a = np.stack([f[..., :3].astype(np.float32) for f in frames])
    return float(np.abs(a - a[0]).mean(axis=(1, 2, 3)).max())


def test_no_camera_keeps_the_character_idling_and_says_why(tmp_path):
    cam = Camera(good=0, down_s=1e9)
    w, view = _worker(cam)
    try:
        time.sleep(3.0)
        st = w.pipeline.status()
    finally:
        view.close()
        w.stop()
    assert cam.opened == 0
    assert st.tracking == "no camera"
    assert st.camera_issue is not None and st.camera_issue.startswith("no camera: camera 0 could not be opened")
    assert st.frames["rendered"] > 5 and st.frames["captured"] == 0  # ~90 in 3 s here; 21 at load 30
    shown = [f for _, f in view.got]
    assert len(shown) > 20
    assert shown[-1][..., 3].max() == 255  # the character is there, not an empty frame
    assert _moves(shown) > 0.05  # idle motion: breathing and sway, not a frozen picture
    assert "camera_issue" in P.Status.from_dict(st.to_dict()).to_dict()


def test_camera_lost_then_back_the_character_never_stops(tmp_path):
    cam = Camera(good=20, down_s=2.0)
    w, view = _worker(cam)
    issues = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (cam.opened < 2 or len(issues) == 0):
            st = w.pipeline.status()
            if st.camera_issue:
                issues.append(st.camera_issue)
            time.sleep(0.1)
        time.sleep(1.0)
        st = w.pipeline.status()
    finally:
        view.close()
        w.stop()
    assert cam.opened >= 2, "the camera was not re-opened"
    assert any(i.startswith("camera lost: camera 0 stopped delivering frames") for i in issues), issues
    assert st.camera_issue is None  # back: nothing to explain
    # while it was down, frames kept coming: no gap longer than a few frame periods
    times = [t for t, _ in view.got]
    assert max(np.diff(times)) < 0.6, max(np.diff(times))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text.mp4", b"this is text\n", "not a readable video"),
        ("sound.wav", None, "no video stream in it (not a video)"),
    ],
)
def test_source_that_is_not_a_video_fails_at_start(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        import wave

        with wave.open(str(path), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(16000)
            f.writeframes(np.zeros(16000, np.int16).tobytes())
    else:
        path.write_bytes(content)
    t0 = time.monotonic()
    r = _run(["--source", str(path), "--output", "file:o.mp4", "--duration", "30"], tmp_path)
    assert time.monotonic() - t0 < 28  # at start (a few s), not after retrying for the 30 s run
    assert r.returncode == 2
    (line,) = _errors(r.stderr)
    assert line == f"error: {path}: {message}" or (line.startswith(f"error: {path}: {message}")), line
    assert not (tmp_path / "o.mp4").exists()
