"""The OBS script's engine (its worker lifecycle + control + frame threads) against the real worker.

No OBS here: the frames go to a sink that keeps them, so this runs wherever the worker runs. The
real-OBS path is tests/test_obs_integration.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from worker.paths import SAMPLE_CHARACTER

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "obs_script"))

from stream_animator_lib.backoff import Backoff  # noqa: E402
from stream_animator_lib.engine import Engine  # noqa: E402
from stream_animator_lib.protocol_loader import load_protocol  # noqa: E402
from stream_animator_lib.settings import CAMERA_FILE, ScriptSettings, find_worker_python  # noqa: E402


class KeepingSink:
    """Stands where the OBS source would be: keeps what the frame thread hands over."""

    def __init__(self):
        self.lock = threading.Lock()
        self.frames = []
        self.cleared = 0

    def push(self, frame):
        assert len(frame.data) == frame.width * frame.height * 4
        with self.lock:
            self.frames.append((frame.seq, frame.width, frame.height, bytes(frame.data[3::4])))
        return True

    def clear(self):
        self.cleared += 1


def wait(pred, timeout, what, engine):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = engine.snapshot()
        if pred(snap):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(engine.snapshot(), default=str)[:1500]}")


@pytest.fixture()
def engine_setup(tmp_path, testdata):
    py = find_worker_python(str(REPO))
    if not py:
        pytest.fail("no .venv in the checkout")
    chars = tmp_path / "characters"
    chars.mkdir()
    shutil.copy(SAMPLE_CHARACTER, chars / "astronaut.png")
    shutil.copy(testdata / "footage" / "portraits" / "s6.jpg", chars / "s6.jpg")
    settings = ScriptSettings(
        worker_python=py,
        characters_dir=str(chars),
        camera=CAMERA_FILE,
        video_file=str(testdata / "footage" / "driving" / "d3.mp4"),
        size=128,
    )
    sink = KeepingSink()
    old_cache = os.environ.get("STREAM_ANIMATOR_CACHE")
    os.environ["STREAM_ANIMATOR_CACHE"] = str(tmp_path / "cache")  # inherited by the worker
    eng = Engine(
        load_protocol(str(REPO)),
        str(REPO),
        str(tmp_path / "state"),
        sink=sink,
        status_path=str(tmp_path / "state" / "status.json"),
        backoff=Backoff(initial=0.5),
    )
    try:
        yield eng, sink, settings, tmp_path
    finally:
        eng.close()
        if old_cache is None:
            os.environ.pop("STREAM_ANIMATOR_CACHE", None)
        else:
            os.environ["STREAM_ANIMATOR_CACHE"] = old_cache


def test_engine_runs_the_real_worker_end_to_end(engine_setup):
    eng, sink, settings, tmp = engine_setup
    eng.apply_settings(settings)
    eng.start()
    eng.start_worker()
    snap = wait(lambda s: s["state"] == "running" and s["frames"]["frames"] >= 5, 90, "frames", eng)
    assert snap["frames"]["size"] == [128, 128]
    assert [c["id"] for c in snap["characters"]] == ["astronaut.png", "s6.jpg"]
    seqs = [f[0] for f in sink.frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # newest wins, never backwards
    alpha = b"".join(f[3] for f in sink.frames[-3:])
    assert min(alpha) < 128 and max(alpha) == 255  # the character has a transparent background

    # the camera list comes from `worker cameras --json` (this machine may have none)
    eng.probe_cameras()
    cams = wait(lambda s: s["cameras"] is not None, 60, "the camera list", eng)["cameras"]
    assert all(c["value"].startswith("webcam:") for c in cams)

    # what the worker offers comes from `worker describe --json` (run off the engine's thread), saved for next time
    offer = wait(lambda s: s["offer"] is not None, 60, "the worker's offer", eng)["offer"]
    assert {r["name"]: r["available"] for r in offer["renderers"]} == {
        "auto": True,
        "meshwarp": True,
        "liveportrait": False,
    }
    assert eng.offer().renderer_choices("auto") == ["auto", "meshwarp"]
    assert json.loads((tmp / "state" / "describe.json").read_text()) == offer

    # a status file for support/tests, without the secret
    status_text = (tmp / "state" / "status.json").read_text()
    assert eng.token not in status_text and json.loads(status_text)["state"] == "running"

    # control: next character, pause toggles, live options, a refused request becomes the error
    eng.request("set_character", step=1)
    wait(lambda s: s["character"] == "s6.jpg", 20, "next character (the worker's character event)", eng)
    wait(lambda s: s["worker"].get("character") == "s6.jpg", 20, "next character in the status", eng)
    eng.request("pause_toggle")
    wait(lambda s: s["worker"].get("paused") is True, 10, "paused", eng)
    eng.request("pause_toggle")
    wait(lambda s: s["worker"].get("paused") is False, 10, "resumed", eng)
    eng.apply_settings(ScriptSettings(**{**settings.__dict__, "expression_strength": 1.5}))
    snap = wait(lambda s: (s.get("last_request") or {}).get("op") == "set_options", 10, "live option sent", eng)
    assert snap["last_request"]["ok"] is True
    assert snap["last_request"]["result"]["options"]["motion.expression_strength"] == 1.5
    pid = snap["worker_pid"]  # a live option does not restart the worker
    eng.request("set_character", character="nobody.png")
    wait(lambda s: "nobody.png" in (s.get("last_error") or ""), 10, "error for an unknown character", eng)

    # the worker dies: restart with back-off, same character again, frames again
    assert eng.snapshot()["worker_pid"] == pid
    os.kill(pid, signal.SIGKILL)
    wait(lambda s: s["state"] == "restarting", 10, "restarting state", eng)
    snap = wait(
        lambda s: s["state"] == "running" and s.get("worker_pid") != pid and s["frames"]["frames"] > 0,
        90,
        "frames after restart",
        eng,
    )
    assert snap["restarts"] == 1
    wait(lambda s: s["worker"].get("character") == "s6.jpg", 20, "character kept across the restart", eng)

    # stop: the process is gone and the source is cleared
    new_pid = snap["worker_pid"]
    eng.stop_worker()
    wait(lambda s: s["state"] == "stopped", 15, "stopped", eng)
    assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == psutil.STATUS_ZOMBIE
    assert sink.cleared >= 1


def test_engine_reports_a_worker_that_cannot_start(engine_setup):
    eng, sink, settings, tmp = engine_setup
    settings.video_file = str(tmp / "missing.mp4")
    eng.apply_settings(settings)
    eng.start()
    eng.start_worker()
    snap = wait(lambda s: s["state"] == "error", 10, "a settings error", eng)
    assert snap["last_error"].startswith("Video file:") and "missing.mp4" in snap["last_error"]
    # a worker that exits at once (a bad characters folder) is restarted with back-off
    empty = tmp / "empty"
    empty.mkdir()
    eng.apply_settings(
        ScriptSettings(
            **{
                **settings.__dict__,
                "video_file": str(SAMPLE_CHARACTER.parent / "x"),
                "camera": "webcam:0",
                "characters_dir": str(empty),
            }
        )
    )
    snap = wait(lambda s: s["state"] == "restarting", 60, "restart after a failed start", eng)
    assert "no character images" in snap["last_error"], snap["last_error"]
    assert "restarting in" in snap["line"]


def test_engine_voice_only_worker_and_the_mute_toggle(engine_setup):
    """No camera, a speech file as the microphone: the engine launches `run --source none --mic FILE
    --lipsync always`, frames flow, and the mute hotkey's op toggles the worker's voice."""
    import subprocess

    eng, sink, settings, tmp = engine_setup
    wav = tmp / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "hello there"], check=True, timeout=30)
    voice = ScriptSettings(**{**settings.__dict__, "camera": "none", "mic": "file", "mic_file": str(wav)})
    voice.lipsync = "always"
    eng.apply_settings(voice)
    eng.start()
    eng.start_worker()
    snap = wait(lambda s: s["state"] == "running" and s["frames"]["frames"] >= 5, 90, "frames", eng)
    # the worker's status is polled apart from the frames: wait for one taken after the first tracked frame
    snap = wait(
        lambda s: (s["worker"].get("voice") or {}).get("hops", 0) > 0 and s["worker"].get("tracking") != "starting",
        10,
        "the voice in the status",
        eng,
    )
    w = snap["worker"]
    assert w["tracking"] == "voice only" and w["voice"]["mic"] == str(wav) and w["voice"]["lipsync"] == "always"
    assert w["voice"]["muted"] is False and "voice on" in snap["line"]
    eng.request("mute_toggle")
    snap = wait(lambda s: s["worker"]["voice"]["muted"] is True and s["worker"]["voice"].get("hops"), 10, "muted", eng)
    assert "voice muted" in snap["line"]
    eng.request("mute_toggle")
    wait(lambda s: s["worker"]["voice"]["muted"] is False, 10, "unmuted", eng)
    eng.probe_cameras()  # Refresh: the microphone list too (this machine may have none)
    mics = wait(lambda s: s["microphones"] is not None, 60, "the microphone list", eng)["microphones"]
    assert isinstance(mics, list) and all(set(m) == {"value", "name"} for m in mics)
