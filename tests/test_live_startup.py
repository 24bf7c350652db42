"""A starting worker shows the character at once: frames go out (the character resting and
idling) while the camera opens and MediaPipe loads; then the face follows the camera. Fakes for
the stages (test_live_pipeline.py's); the real-OBS numbers come from `bench --recovery`."""

from __future__ import annotations

import threading
import time

import numpy as np
from test_live_pipeline import FakeAnimator, FakeRoster, FakeSource, FakeTracker, Recorder, wait_for

from worker.live.pipeline import Pipeline
from worker.live.startup import LINE_PREFIX, Startup, parse_log
from worker.live.tracker_loader import TrackerLoader
from worker.output.fanout import OutputFanout


class Gate:
    """A factory that blocks until `open()`; counts its calls."""

    def __init__(self, make) -> None:
        self.make, self.calls = make, 0
        self.event = threading.Event()

    def __call__(self):
        self.calls += 1
        assert self.event.wait(10), "gate never opened"
        return self.make()

    def open(self) -> None:
        self.event.set()


def _pipeline(camera, tracker, out):
    animator = FakeAnimator()
    fanout = OutputFanout([out]).start()
    p = Pipeline(camera, FakeRoster(), animator, tracker, fanout)
    animator.set_character(1)
    return p, animator, fanout


def test_frames_go_out_while_the_camera_opens_and_the_tracker_loads():
    real = FakeTracker()
    tracker_gate = Gate(lambda: real)
    camera_gate = Gate(lambda: FakeSource(100_000, fps=100))
    loader = TrackerLoader(tracker_gate, start=False)
    loader.set_smoothing(0.25)  # asked for before the tracker exists: applied once it does
    loader.calibrate()
    out = Recorder("rec")
    p, animator, fanout = _pipeline(camera_gate, loader, out)
    p.stages.on_first_frame = loader.start  # as LiveWorker wires it
    try:
        p.start("a.png")
        # neither the camera nor the tracker is there, yet the character is on the output, idling
        assert wait_for(lambda: len(out.frames) >= 5, 10), "no frames before the camera opened"
        assert camera_gate.calls == 1 and not loader.ready
        assert p.stages.tracking_state == "starting" and p.stages.captured == 0
        face, neutral = animator.inputs[0]
        assert face is not None and not face.found and face.lost_blend == 1.0 and neutral is None
        assert wait_for(lambda: tracker_gate.calls == 1, 5)  # the first frame out started the tracker's load
        camera_gate.open()  # camera frames flow, still tracked as "resting" until the tracker is ready
        assert wait_for(lambda: p.stages.captured >= 5, 10)
        assert p.stages.tracking_state == "starting" and p.stages.faces == 0
        tracker_gate.open()
        assert wait_for(lambda: p.stages.faces >= 3, 10), "the face never followed the camera"
        assert loader.ready and real.smoothing == 0.25 and real.calibrating_left < 3
        assert p.status().frames["with_face"] >= 3
    finally:
        camera_gate.open()
        tracker_gate.open()
        p.stop()
        fanout.close()
        loader.close()


def test_a_tracker_that_fails_to_load_stops_the_pipeline_with_one_line():
    def broken():
        raise ImportError("libGL.so.1: cannot open shared object file")

    loader = TrackerLoader(broken, start=True)
    out = Recorder("rec")
    p, _, fanout = _pipeline(lambda: FakeSource(100_000, fps=100), loader, out)
    try:
        p.start("a.png")
        assert wait_for(lambda: p.stop_event.is_set(), 10), "the pipeline kept running without a tracker"
    finally:
        p.stop()
        fanout.close()
    warning = p.status().warnings[-1]
    assert "face tracker: ImportError: libGL.so.1" in warning and "\n" not in warning


def test_a_loader_closed_before_its_tracker_is_built_closes_it():
    closed = []

    class Closing(FakeTracker):
        def close(self) -> None:
            closed.append(True)

    gate = Gate(Closing)
    loader = TrackerLoader(gate)
    assert wait_for(lambda: gate.calls == 1, 5)
    # the build finishes while close() waits for it: close() returns with the tracker closed, not
    # with MediaPipe half-built on a daemon thread the interpreter's shutdown would cut off in C++
    threading.Timer(0.3, gate.open).start()
    loader.close()
    assert closed, "close() returned while the tracker was still being built"
    assert not loader.ready and not loader.process(np.zeros((2, 2, 3), np.uint8), 1.0).found


def test_close_waits_for_a_build_only_so_long():
    gate = Gate(FakeTracker)
    loader = TrackerLoader(gate)
    assert wait_for(lambda: gate.calls == 1, 5)
    t0 = time.monotonic()
    loader.close(wait=0.2)  # a build that hangs does not hang the worker's stop
    assert time.monotonic() - t0 < 2.0
    gate.open()
    never = TrackerLoader(gate, start=False)
    t0 = time.monotonic()
    never.close()  # never started: nothing to wait for
    assert time.monotonic() - t0 < 0.5


def test_startup_marks_are_logged_once_and_read_back(caplog):
    s = Startup()
    with caplog.at_level("INFO", logger="worker.startup"):
        s.mark("ready")
        s.mark("ready")  # once only
        s.mark("first frame sent")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all(m.startswith(LINE_PREFIX) for m in lines)
    assert list(s.marks) == ["ready", "first frame sent"] and s.marks["first frame sent"] >= s.marks["ready"] >= 0
    text = "\n".join(
        f"2026-12-07 02:00:00,000 {pid} MainThread INFO worker.startup: {m}"
        for pid, m in [(11, lines[0]), (12, "start-up: ready at 9.000 s"), (11, lines[1])]
    )
    assert parse_log(text, pid=11) == s.marks
    assert parse_log(text, pid=12) == {"ready": 9.0}
    again = text + "\n2026-12-07 02:01:00,000 11 MainThread INFO worker.startup: start-up: ready at 0.500 s"
    assert parse_log(again, pid=11) == {"ready": 0.5}  # a later run with the same pid replaces the old marks


def test_a_starting_worker_sends_its_first_frame_before_mediapipe_loads(tmp_path):
    """The real worker (cached characters, `obs` output, a clip as the camera): its first frame is
    out before the face tracker is, and costs it little CPU time (user + system, all threads; a
    figure a busy machine barely moves). Measured 0.73-0.93 s; 1.9-2.2 s when MediaPipe's import came first."""
    import json
    import os
    import subprocess
    import sys
    import time

    import psutil

    from worker.control import protocol as P
    from worker.paths import SAMPLE_CHARACTERS_DIR, SAMPLE_DRIVER

    env = dict(os.environ, STREAM_ANIMATOR_CACHE=str(tmp_path / "cache"), STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"))
    subprocess.run(
        [sys.executable, "-m", "worker", "preprocess", str(SAMPLE_CHARACTERS_DIR), "--renderer", "meshwarp"],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )
    token = P.make_token()
    log = tmp_path / "worker.log"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "--log-file",
            str(log),
            "run",
            "--source",
            str(SAMPLE_DRIVER),
            "--characters",
            str(SAMPLE_CHARACTERS_DIR),
            "--renderer",
            "meshwarp",
            "--output",
            "obs",
            "--ready-json",
            "--duration",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(env, **{P.ENV_TOKEN: token}),
    )
    try:
        ready = json.loads(p.stdout.readline())
        rx = P.FrameReceiver(ready["frame_port"], token).connect()
        deadline = time.monotonic() + 60
        while rx.poll(0.05) is None:
            assert time.monotonic() < deadline, "no frame in 60 s"
        t = psutil.Process(p.pid).cpu_times()
        cpu = t.user + t.system
        rx.close()

        def first_sent() -> dict | None:  # the mark is logged just after the frame left
            m = parse_log(log.read_text(), pid=p.pid)
            return m if "first frame sent" in m else None

        marks = wait_for(first_sent, 10) or {}  # the tracker, if it is ready yet, came later
    finally:
        p.terminate()
        p.wait(30)
    assert marks["ready"] <= marks["first frame sent"] < marks.get("tracker ready", float("inf")), marks
    assert cpu < 1.5, f"{cpu:.2f} s of CPU before the first frame (marks: {marks})"
