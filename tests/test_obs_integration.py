"""The OBS script in a real OBS Studio (headless under Xvfb), driving the real worker.

One OBS instance serves the tests of this module in order: the script loads and registers its
hotkeys, starts the worker on a real driving video, frames reach the "Animated Character"
source (they change over time and keep alpha), the hotkey and a bound scene switch the
character, a killed worker comes back, and OBS ending (SIGTERM, no script_unload) leaves no
worker behind. A second instance checks the no-code Media Source (NUT) path.

Skips when OBS/Xvfb/obsws-python are missing; fails instead when env CI is set.
Measured numbers are printed (run with -s) and attached as user properties.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import psutil
import pytest
from obs_harness import skip_or_fail

from worker.control import protocol as P
from worker.paths import SAMPLE_CHARACTER
from worker.tools.obs_run import REPO, ObsRun, missing_requirements

pytestmark = [pytest.mark.obs, pytest.mark.slow]

SOURCE = "Animated Character"
HOTKEYS = [
    "stream_animator.next_character",
    "stream_animator.prev_character",
    "stream_animator.calibrate",
    "stream_animator.pause_toggle",
    "stream_animator.mute_toggle",
] + [f"stream_animator.character_{n}" for n in range(1, 10)]
CHARACTERS = ["astronaut.png", "s6.jpg", "s7.jpg"]  # ids are file names; the worker sorts them
BOUND_SCENE, BOUND_CHARACTER = "Scene B", "s7.jpg"
PREV_KEY = [{"key": "OBS_KEY_F13"}]  # a saved binding for "previous character", as OBS stores it
SIZE = 256
METRICS: dict = {}


def _venv_python() -> Path:
    for p in (REPO / ".venv" / "bin" / "python", REPO / ".venv" / "Scripts" / "python.exe"):
        if p.is_file():
            return p
    pytest.fail("no .venv in the checkout: the OBS script launches the worker with the venv's Python")


@pytest.fixture(scope="module")
def files(tmp_path_factory, testdata) -> dict:
    """Three characters, a driving video, and one character cache for both OBS instances."""
    reason = missing_requirements()
    if reason:
        skip_or_fail(reason)
    tmp = tmp_path_factory.mktemp("obs-files")
    chars = tmp / "characters"
    chars.mkdir()
    shutil.copy(SAMPLE_CHARACTER, chars / "astronaut.png")
    for name in ("s6.jpg", "s7.jpg"):
        shutil.copy(testdata / "footage" / "portraits" / name, chars / name)
    voice = tmp / "voice.wav"  # the worker's voice: a speech file as the microphone (made here by espeak-ng)
    subprocess.run(["espeak-ng", "-w", str(voice), "hello there, how are you"], check=True, timeout=30)
    return {
        "characters": chars,
        "video": testdata / "footage" / "driving" / "d0.mp4",
        "cache": tmp / "cache",
        "voice": voice,
    }


def _settings(files: dict, **extra) -> dict:
    s = {
        "worker_python": str(_venv_python()),
        "characters_dir": str(files["characters"]),
        "camera": "file",
        "video_file": str(files["video"]),
        "size": SIZE,
        "renderer": "meshwarp",
        "output_mode": "direct",
        "autostart": True,
        f"scene_character::{BOUND_SCENE}": BOUND_CHARACTER,
        "stream_animator.prev_character": PREV_KEY,
        "mic": "file",
        "mic_file": str(files["voice"]),
    }
    s.update(extra)
    return s


def _report(key: str, value, record=None) -> None:
    METRICS[key] = value
    print(f"[obs-metrics] {key} = {value}")
    if record is not None:
        record(key, value)


@pytest.fixture(scope="module")
def obs_env(tmp_path_factory, files):
    tmp = tmp_path_factory.mktemp("obs")
    token = P.make_token()  # OBS's env carries it, so this test can watch the worker's frames too
    run = ObsRun(
        tmp,
        _settings(files),
        scenes=["Scene A", BOUND_SCENE],
        env={P.ENV_TOKEN: token, "STREAM_ANIMATOR_CACHE": str(files["cache"]), "STREAM_ANIMATOR_OBS_SELFTEST": "1"},
    )
    run.token = token
    try:
        run.start()
        yield run
    finally:
        run.stop()
        run.kill_leftovers()


def _running(st: dict) -> bool:
    return st.get("state") == "running" and (st.get("frames") or {}).get("frames", 0) > 0


def _alpha_ok(img: np.ndarray) -> bool:
    a = img[..., 3]
    return int(a.max()) == 255 and int(a.min()) < 128


def test_script_loads_and_registers_hotkeys(obs_env):
    run = obs_env
    deadline = time.monotonic() + 20
    while "Loaded python script: stream_animator.py" not in run.log_text():
        assert time.monotonic() < deadline, run.log_text()[-3000:]
        time.sleep(0.1)
    names = set(run.ws.get_hotkey_list().hotkeys)
    assert set(HOTKEYS) <= names, sorted(set(HOTKEYS) - names)
    assert "registered 14 hotkeys" in run.log_text()


def test_worker_starts_and_source_shows_animated_frames_with_alpha(obs_env, record_property):
    run = obs_env
    st = run.wait_status(_running, 90, "the worker's first frame in OBS")
    assert st["worker_pid"] and psutil.pid_exists(st["worker_pid"])
    _report(
        "obs_start_to_first_frame_pushed_s",
        round(st["frames"]["first_frame_wall"] - run.started_at, 2),
        record_property,
    )
    shots, deadline = [], time.monotonic() + 30
    while len(shots) < 6 and time.monotonic() < deadline:
        img = run.screenshot(SOURCE)
        if img is not None and img[..., 3].max() > 0:
            if not shots:
                _report("obs_start_to_first_frame_on_screen_s", round(time.time() - run.started_at, 2), record_property)
            shots.append(img)
        time.sleep(0.25)
    assert len(shots) >= 6, "the source never showed a frame"
    assert shots[0].shape == (SIZE, SIZE, 4)
    assert all(_alpha_ok(s) for s in shots), "transparency lost: alpha is not both transparent and opaque"
    diffs = [
        float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
        for a, b in zip(shots[:-1], shots[1:], strict=True)
    ]
    assert max(diffs) > 0.2, f"frames do not change over time: {diffs}"
    # the source is the script's own, in the scene it created it in
    items = [i["sourceName"] for i in run.ws.get_scene_item_list("Scene A").scene_items]
    assert items.count(SOURCE) == 1


def test_next_character_hotkey_switches(obs_env):
    run = obs_env
    before = run.wait_status(lambda s: s.get("character") in CHARACTERS, 30, "a current character")["character"]
    run.ws.trigger_hotkey_by_name("stream_animator.next_character")
    want = CHARACTERS[(CHARACTERS.index(before) + 1) % len(CHARACTERS)]
    run.wait_status(
        lambda s: s.get("character") == want and s["worker"].get("character") == want,
        20,
        f"character {want} after the next-character hotkey",
    )
    run.ws.trigger_hotkey_by_name("stream_animator.character_1")
    run.wait_status(lambda s: s["worker"].get("character") == CHARACTERS[0], 20, "character 1 hotkey")


def test_saved_hotkey_binding_is_loaded(obs_env):
    """The key bound in the saved settings (obs_hotkey_load in script_load) triggers the action."""
    run = obs_env
    run.wait_status(lambda s: s["worker"].get("character") == CHARACTERS[0], 20, "character 1")
    run.ws.trigger_hotkey_by_key_sequence("OBS_KEY_F13", False, False, False, False)
    run.wait_status(
        lambda s: s["worker"].get("character") == CHARACTERS[-1], 20, "previous character via the bound key F13"
    )


def test_bound_scene_switches_character_and_unbound_keeps_it(obs_env):
    run = obs_env
    run.ws.trigger_hotkey_by_name("stream_animator.character_2")
    run.wait_status(lambda s: s["worker"].get("character") == CHARACTERS[1], 20, "character 2")
    run.ws.set_current_program_scene(BOUND_SCENE)
    run.wait_status(
        lambda s: s["worker"].get("character") == BOUND_CHARACTER, 20, f"{BOUND_SCENE} bound to {BOUND_CHARACTER}"
    )
    run.ws.trigger_hotkey_by_name("stream_animator.character_1")
    run.wait_status(lambda s: s["worker"].get("character") == CHARACTERS[0], 20, "character 1")
    run.ws.set_current_program_scene("Scene A")  # unbound: keeps the current character
    time.sleep(2.5)
    assert run.status()["worker"].get("character") == CHARACTERS[0]
    assert f"scene '{BOUND_SCENE}' -> character '{BOUND_CHARACTER}'" in run.log_text()


def test_properties_build_with_the_workers_characters(obs_env):
    """script_properties in real OBS (logged by the self-test on scene changes): every property,
    the character lists filled from the worker (3 characters; the per-scene lists add "keep")."""
    run = obs_env
    lines = [ln for ln in run.log_text().splitlines() if "selftest properties:" in ln]
    assert lines, "the properties self-test did not run"
    props = lines[-1].split("selftest properties: ", 1)[1].split(",")
    for name in (
        "status",
        "btn_start",
        "btn_stop",
        "btn_calibrate",
        "btn_reload",
        "btn_refresh",
        "characters_dir",
        "video_file",
        "expression_strength",
        "head_strength",
        "smoothing",
        "mirror",
        "worker_python",
        "autostart",
        "scene_characters",
        "camera[6]",
        "size[5]",
        "mic[3]",
        "mic_file",
        "lipsync[3]",
        # from the worker's `describe`: auto + meshwarp (liveportrait cannot start); direct, nut,
        # browser (Spout2 needs Windows)
        "renderer[2]",
        "output_mode[3]",
        # liveportrait's renderer options, listed from `describe` too (auto|fp16|fp32, 5 devices)
        "lp_precision[3]",
        "lp_device[5]",
        "lp_models",
        "lp_unverified",
        "character[3]",
        "scene_character::Scene A[4]",
        f"scene_character::{BOUND_SCENE}[4]",
    ):
        assert name in props, (name, props)


def test_pause_and_calibrate_hotkeys(obs_env):
    run = obs_env
    run.ws.trigger_hotkey_by_name("stream_animator.pause_toggle")
    run.wait_status(lambda s: s["worker"].get("paused") is True, 20, "paused by hotkey")
    run.ws.trigger_hotkey_by_name("stream_animator.pause_toggle")
    run.wait_status(lambda s: s["worker"].get("paused") is False, 20, "resumed by hotkey")
    run.ws.trigger_hotkey_by_name("stream_animator.calibrate")
    # the neutral is re-taken over ~15 frames, too quick for 1 Hz status: check the worker took it
    st = run.wait_status(
        lambda s: (s.get("last_request") or {}).get("op") == "calibrate", 20, "calibrate request by hotkey"
    )
    assert st["last_request"]["ok"] is True and st["last_request"]["result"] == {"calibrating": True}


def test_the_voice_runs_and_the_mute_hotkey_toggles_it(obs_env, files):
    """The script passed the voice file as `--mic` (lip sync assist, the default); its hotkey mutes."""
    run = obs_env
    st = run.wait_status(lambda s: (s["worker"].get("voice") or {}).get("hops", 0) > 0, 20, "the voice running")
    voice = st["worker"]["voice"]
    assert voice["mic"] == str(files["voice"]) and voice["lipsync"] == "assist" and voice["muted"] is False
    run.ws.trigger_hotkey_by_name("stream_animator.mute_toggle")
    run.wait_status(
        lambda s: s["worker"]["voice"].get("muted") is True and "voice muted" in s["line"], 20, "muted by hotkey"
    )
    run.ws.trigger_hotkey_by_name("stream_animator.mute_toggle")
    run.wait_status(lambda s: s["worker"]["voice"].get("muted") is False, 20, "unmuted by hotkey")


def test_studio_mode_program_scene_decides(obs_env):
    run = obs_env
    run.ws.set_current_program_scene("Scene A")
    run.ws.trigger_hotkey_by_name("stream_animator.character_1")
    run.wait_status(lambda s: s["worker"].get("character") == CHARACTERS[0], 20, "character 1")
    run.ws.set_studio_mode_enabled(True)
    try:
        run.ws.set_current_preview_scene(BOUND_SCENE)  # prepared, not live: no switch
        time.sleep(2.5)
        assert run.status()["worker"].get("character") == CHARACTERS[0]
        run.ws.set_current_program_scene(BOUND_SCENE)  # live now
        run.wait_status(
            lambda s: s["worker"].get("character") == BOUND_CHARACTER, 20, "program scene bound in studio mode"
        )
    finally:
        run.ws.set_studio_mode_enabled(False)
        run.ws.set_current_program_scene("Scene A")


def _match(shot: np.ndarray, frames: list) -> tuple[int, float, float]:
    """(seq of the received frame closest to the screenshot, its error, the runner-up's error)."""

    def key(img):
        a = img[..., 3:4].astype(np.float32) / 255.0
        return img[..., :3].astype(np.float32) * a  # compare premultiplied: OBS blends on alpha

    s = key(shot)
    errs = sorted((float(np.abs(key(f) - s).mean()), seq) for seq, _, f in frames)
    return errs[0][1], errs[0][0], errs[1][0] if len(errs) > 1 else float("inf")


def test_obs_path_latency(obs_env, record_property):
    """Which frame OBS shows versus the newest the worker has sent, and the script's push latency.

    obs-websocket renders a screenshot as soon as it gets the graphics lock (within a frame of
    the request) and then spends a while encoding the PNG, so the frame in the screenshot is
    compared with the newest frame this test had received when it sent the request.
    """
    run = obs_env
    st = run.wait_status(_running, 30, "running")
    rx = P.FrameReceiver(int(st["frame_port"]), run.token).connect()
    frames: deque = deque(maxlen=90)
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            f = rx.poll(0.05)
            if f is not None:
                img = np.frombuffer(bytes(f.data), np.uint8).reshape(f.height, f.width, 4)
                frames.append((f.seq, time.time(), img))

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        time.sleep(1.5)
        behind, round_trips = [], []
        for _ in range(20):
            newest_at_request = frames[-1][0]
            t0 = time.monotonic()
            shot = run.screenshot(SOURCE)
            round_trips.append((time.monotonic() - t0) * 1000)
            seq, err, runner_up = _match(shot, list(frames))
            if err < 0.6 * runner_up:  # only unambiguous matches (the face may stand still)
                behind.append(newest_at_request - seq)
            time.sleep(0.15)
    finally:
        stop.set()
        t.join(2)
        rx.close()
    assert len(behind) >= 5, f"too few unambiguous screenshot matches: {behind}"
    fps = run.status()["worker"].get("fps")
    _report("worker_fps", fps, record_property)
    q3 = sorted(behind)[(3 * len(behind)) // 4]  # not max: a still face can match a much older frame
    _report("frames_behind_shown_vs_newest_sent_median_q3", [statistics.median(behind), q3], record_property)
    _report("screenshot_round_trip_ms_median", round(statistics.median(round_trips)), record_property)
    fr = run.status()["frames"]
    _report("script_recv_ms_p50", round(fr["net_ms_p50"], 2), record_property)
    _report(
        "script_send_to_obs_push_ms_p50_p95",
        [round(fr["push_ms_p50"], 2), round(fr["push_ms_p95"], 2)],
        record_property,
    )
    _report("capture_to_obs_push_ms_p50", round(fr["capture_to_obs_ms_p50"], 1), record_property)
    assert statistics.median(behind) <= 2, f"OBS shows frames {behind} behind the newest sent"
    assert fr["push_ms_p50"] < 150  # a few ms on a quiet machine; the bound holds on a busy one


def test_killed_worker_restarts_and_frames_resume(obs_env, record_property):
    run = obs_env
    st = run.wait_status(_running, 30, "running")
    old_pid = st["worker_pid"]
    t_kill = time.time()
    os.kill(old_pid, signal.SIGKILL)
    seen_restarting = run.wait_status(
        lambda s: s.get("worker_pid") != old_pid or s.get("state") == "restarting",
        20,
        "the script noticing the dead worker",
    )
    st = run.wait_status(
        lambda s: (
            s.get("worker_pid") not in (None, old_pid)
            and _running(s)
            and (s["frames"].get("last_push_wall") or 0) > t_kill + 0.2
        ),
        60,
        "frames from a restarted worker",
    )
    back = st["frames"]["first_frame_wall"] - t_kill
    spawned = psutil.Process(st["worker_pid"]).create_time()
    _report("worker_kill_to_frames_again_s", round(back, 2), record_property)
    _report("worker_kill_to_new_worker_s", round(spawned - t_kill, 2), record_property)
    # issue 16's target (2 s) is judged by `stream-animator bench --obs` (measured 1.5 s). The total
    # is mostly the new worker's start, which a busy machine stretches many times (11 s seen at load
    # 24); what the script decides is the part before the new worker exists: the 0.2 s first back-off
    # after a healthy run (read from its log, not timed), and no waiting for a timeout
    assert "restarting in 0.2 s" in run.log_text()
    assert spawned - t_kill <= 5.0, f"new worker {spawned - t_kill:.2f} s after the kill"
    assert back <= 60, f"frames back {back:.2f} s after the worker was killed"
    assert st["restarts"] >= 1
    assert seen_restarting.get("state") in ("restarting", "starting", "running")
    assert "killed by signal 9" in run.log_text() and "restarting in" in run.log_text()
    img = run.screenshot(SOURCE)
    assert img is not None and _alpha_ok(img)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_worker_gone(pid: int, obs_pid: int, timeout: float) -> float:
    t0 = time.monotonic()
    while _alive(pid) and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    assert not _alive(pid), "the worker outlived OBS"
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "--parent-pid" in (p.info["cmdline"] or []) and str(obs_pid) in (p.info["cmdline"] or []) and _alive(p.pid)
    ]
    assert leftovers == [], "a worker of this OBS is still running"
    return time.monotonic() - t0


def test_obs_exit_stops_the_worker(obs_env, record_property):
    """A normal OBS exit (SIGINT shuts OBS 29 down cleanly): the script stops the worker itself."""
    run = obs_env
    for _ in range(3):
        pid = run.wait_status(_running, 90, "running")["worker_pid"]
        t0 = time.time()
        rc = run.stop(sig=signal.SIGINT)
        # OBS 29 under Xvfb sometimes segfaults in Qt after everything else has shut down (measured:
        # 1 exit in 10 with a plain Media Source playing a file and no script at all); that is not
        # this script's doing, a hang (killed: -9) would be
        if rc in (0, -signal.SIGSEGV):
            break
        # ...except one hang that is OBS's own: its SIGINT handler runs inside a Qt paint and deadlocks
        # in obs_display_destroy before any script is unloaded (seen in about 1 run of 6). Only that
        # exact stack is retried, and even then the worker must leave by itself with the killed OBS.
        trace = (run.root / "obs-hang-backtrace.txt").read_text(errors="replace")
        assert "<signal handler called>" in trace and "obs_display_destroy" in trace, (
            f"OBS did not shut down (rc {rc}); see {run.root}/obs-hang-backtrace.txt"
        )
        _assert_worker_gone(pid, run.pid, 10)
        run.start(fresh_config=False)
    else:
        pytest.fail("OBS deadlocked in its own SIGINT handler three times in a row")
    _assert_worker_gone(pid, run.pid, 5)
    _report("obs_clean_exit_to_worker_gone_s", round(time.time() - t0, 2), record_property)
    log = run.log_text()
    assert "[stream-animator] stopped" in log and "Unloaded python script: stream_animator.py" in log


def test_obs_restart_reuses_the_source_and_keeps_hotkeys(obs_env, record_property):
    """What OBS saved on exit loads again: one source (found by name, not duplicated), the key
    binding (obs_hotkey_save in script_save), frames again."""
    run = obs_env
    saved = json.loads(run.collection_path().read_text())
    script = saved["modules"]["scripts-tool"][0]["settings"]
    assert script["stream_animator.prev_character"] == PREV_KEY
    assert [s["name"] for s in saved["sources"]].count(SOURCE) == 1
    run.start(fresh_config=False)
    st = run.wait_status(_running, 90, "frames after an OBS restart")
    cold = st["frames"]["first_frame_wall"] - run.started_at
    _report("obs_restart_to_first_frame_pushed_s", round(cold, 2), record_property)
    # OBS start to the first frame with the characters cached: target 3 s, judged by `stream-animator
    # bench --obs` (measured 1.6-1.7 s); the start scales with the machine's load (15 s seen at load
    # 24), so only a hang is judged here
    assert cold <= 60, f"first frame {cold:.2f} s after OBS started (characters cached)"
    items = [i["sourceName"] for i in run.ws.get_scene_item_list("Scene A").scene_items]
    assert items.count(SOURCE) == 1
    assert "created source" not in run.log_text()
    assert "stream_animator.prev_character" in run.ws.get_hotkey_list().hotkeys


def test_browser_mode_makes_the_browser_source_or_says_it_cannot(tmp_path, files):
    """The "browser" output mode: once the worker tells its page's address, the script makes the
    Browser Source showing it where OBS has the obs-browser plugin (Windows, macOS, Flatpak); where
    it is missing (Debian's OBS) it says so once in the log and in the status, and adds nothing."""
    import sys

    if str(REPO / "obs_script") not in sys.path:
        sys.path.insert(0, str(REPO / "obs_script"))
    from stream_animator_lib.sources import BROWSER_MISSING, BROWSER_SOURCE_NAME

    run = ObsRun(
        tmp_path,
        _settings(files, output_mode="browser"),
        scenes=["Scene A"],
        env={"STREAM_ANIMATOR_CACHE": str(files["cache"])},
    )
    try:
        run.start()
        kinds = run.ws.get_input_kind_list(False).input_kinds
        names = lambda: [i["inputName"] for i in run.ws.get_input_list().inputs]  # noqa: E731
        if "browser_source" in kinds:
            st = run.wait_status(lambda s: BROWSER_SOURCE_NAME in names(), 90, "the Browser Source")
            url = run.ws.get_input_settings(BROWSER_SOURCE_NAME).input_settings["url"]
            assert "/source?token=" in url and st.get("last_error", "") == ""
        else:
            run.wait_status(
                lambda s: s.get("state") == "running" and BROWSER_MISSING in (s.get("last_error") or ""),
                90,
                "the missing Browser Source said in the status",
            )
            assert BROWSER_SOURCE_NAME not in names() and SOURCE not in names()
            time.sleep(1.0)  # a few more timer ticks: still said once
            assert run.log_text().count(BROWSER_MISSING) == 1, run.log_text()[-2000:]
    finally:
        run.stop()
        run.kill_leftovers()


def test_nut_media_source_mode(tmp_path, files, record_property):
    """The no-code path: OBS's Media Source listens, the worker sends NUT-wrapped RGBA."""
    run = ObsRun(
        tmp_path,
        _settings(files, output_mode="nut"),
        scenes=["Scene A"],
        env={"STREAM_ANIMATOR_CACHE": str(files["cache"])},
    )
    try:
        run.start()
        run.wait_status(lambda s: s.get("state") == "running", 90, "worker running (nut)")
        settings = run.ws.get_input_settings(SOURCE).input_settings
        assert settings["input_format"] == "nut" and settings["input"].endswith("?listen")
        assert settings["is_local_file"] is False
        shots, deadline = [], time.monotonic() + 30
        while len(shots) < 3 and time.monotonic() < deadline:
            img = run.screenshot(SOURCE)
            if img is not None and img[..., 3].max() > 0:
                if not shots:
                    _report(
                        "nut_obs_start_to_first_frame_on_screen_s",
                        round(time.time() - run.started_at, 2),
                        record_property,
                    )
                shots.append(img)
            time.sleep(0.3)
        assert len(shots) == 3, "the Media Source never showed the worker's NUT stream"
        assert all(_alpha_ok(s) for s in shots)

        # OBS killed without unloading scripts (SIGTERM): the worker notices and exits by itself
        pid = run.status()["worker_pid"]
        t0 = time.time()
        run.stop(sig=signal.SIGTERM)
        assert "Unloaded python script" not in run.log_text()
        _assert_worker_gone(pid, run.pid, 10)
        _report("obs_killed_to_worker_gone_s", round(time.time() - t0, 2), record_property)
    finally:
        run.stop()
        run.kill_leftovers()
