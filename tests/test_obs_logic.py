"""The OBS script's pure logic, without OBS: bindings, back-off, settings, status, process control."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "obs_script"))

from stream_animator_lib import bindings  # noqa: E402
from stream_animator_lib.backoff import Backoff  # noqa: E402
from stream_animator_lib.engine import camera_choices, clean_state_dir, microphone_choices  # noqa: E402
from stream_animator_lib.offer import Offer, OfferError  # noqa: E402
from stream_animator_lib.protocol_loader import MODULE_NAME, load_protocol  # noqa: E402
from stream_animator_lib.settings import (  # noqa: E402
    CAMERA_FILE,
    ScriptSettings,
    find_worker_python,
    venv_python_candidates,
)
from stream_animator_lib.status import exit_text, format_status_line, last_error_line  # noqa: E402
from stream_animator_lib.worker_process import (  # noqa: E402
    WorkerProcess,
    child_env,
    parse_ready_line,
    worker_command,
)

# ---- scene bindings -------------------------------------------------------------------------------


def test_program_scene_binding_wins_and_unbound_scene_keeps_current():
    b = {"Gaming": "alice.png", "Chatting": "bob.png"}
    assert bindings.resolve_character("Gaming", b, "bob.png") == "alice.png"
    assert bindings.resolve_character("BRB", b, "bob.png") == "bob.png"
    assert bindings.resolve_character(None, b, "bob.png") == "bob.png"
    assert bindings.resolve_character("BRB", b, None) is None


def test_studio_mode_preview_never_decides():
    b = {"Gaming": "alice.png", "Chatting": "bob.png"}
    # preview is bound, program is not: what viewers see must not change
    assert bindings.resolve_character("BRB", b, "carol.png", preview_scene="Gaming") == "carol.png"
    # program bound, preview bound to something else: program wins
    assert bindings.resolve_character("Chatting", b, "carol.png", preview_scene="Gaming") == "bob.png"


def test_character_change_only_when_different():
    b = {"Gaming": "alice.png"}
    assert bindings.character_change("Gaming", b, "alice.png") is None
    assert bindings.character_change("Gaming", b, "bob.png") == "alice.png"
    assert bindings.character_change("Other", b, "bob.png") is None
    assert bindings.character_change("Gaming", b, None) == "alice.png"


def test_bindings_from_settings_skips_unbound_scenes():
    store = {bindings.scene_key("A"): "alice.png", bindings.scene_key("B"): "", bindings.scene_key("C"): "  "}
    got = bindings.bindings_from_settings(["A", "B", "C", "D"], lambda k: store.get(k, ""))
    assert got == {"A": "alice.png"}


# ---- restart back-off -----------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_healthy_run():
    b = Backoff(initial=1, factor=2, maximum=30, healthy_after=20)  # first: 0.2 s
    assert [b.next_delay(0.5) for _ in range(8)] == [0.2, 1, 2, 4, 8, 16, 30, 30]
    assert b.next_delay(25.0) == 0.2  # ran long enough: starts over, a quick first restart
    assert b.next_delay(1.0) == 1
    b.reset()
    assert b.next_delay(0.0) == 0.2
    for _ in range(5000):  # no float overflow however often it fails
        b.next_delay(0.0)
    assert b.next_delay(0.0) == 30


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)
    with pytest.raises(ValueError):
        Backoff(initial=1, first=2)


# ---- settings -------------------------------------------------------------------------------------


def test_settings_from_reader_converts_types_and_falls_back_on_garbage():
    raw = {"size": "384", "mirror": 1, "smoothing": "2.5", "renderer": "liveportrait", "head_strength": "x"}
    s = ScriptSettings.from_reader(lambda k, d: raw.get(k, d))
    assert s.size == 384 and s.mirror is True and s.smoothing == 2.5 and s.renderer == "liveportrait"
    assert s.head_strength == ScriptSettings().head_strength


def worker_offer() -> Offer:
    """What this checkout's worker offers, exactly as `describe --json` prints it."""
    from worker.commands.describe import describe

    return Offer.from_json(json.dumps(describe()))


def test_performance_levels_come_from_the_worker(tmp_path):
    py = tmp_path / "python"
    py.write_text("")
    offer = worker_offer()
    assert offer.choices("performance") == ["low", "balanced", "quality"]
    assert ScriptSettings(worker_python=str(py), performance="low").problems(offer) == []
    assert ScriptSettings(worker_python=str(py), performance="turbo").problems(offer) == [
        "Performance: 'turbo' is not one of low, balanced, quality"
    ]
    assert ScriptSettings(performance="low").needs_restart(ScriptSettings())  # applied when the worker starts


def test_settings_problems_name_the_field(tmp_path, monkeypatch):
    py = tmp_path / "python"
    py.write_text("")
    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path / "no-weights"))
    offer = worker_offer()
    ok = ScriptSettings(worker_python=str(py))
    assert ok.problems() == [] and ok.problems(offer) == []
    bad = ScriptSettings(
        worker_python=str(tmp_path / "nope"),
        characters_dir=str(tmp_path / "missing"),
        renderer="magic",
        camera="usb",
        size=10,
        smoothing=9.0,
        expression_strength=2.5,
    )
    text = "\n".join(bad.problems(offer))
    for field in (
        "Worker Python",
        "Characters folder",
        "Renderer: 'magic'",
        "Camera",
        "Output size: 10 is outside 64..2048",
        "Smoothing: 9.0 is outside 0..3",
        "Expression strength: 2.5 is outside 0..2",
    ):
        assert field in text, field
    assert ScriptSettings(worker_python="").problems()[0].startswith("Worker Python: not set")
    nofile = ScriptSettings(worker_python=str(py), camera=CAMERA_FILE)
    assert nofile.problems() == ["Video file: choose a file (camera is set to 'video file')"]
    # the worker's reasons, not the script's guesses
    lp = ScriptSettings(worker_python=str(py), renderer="liveportrait").problems(offer)
    assert len(lp) == 1 and lp[0].startswith("Renderer: renderer liveportrait is not ready: weights")
    assert lp[0].endswith("run: stream-animator models --download")
    if not sys.platform.startswith("win"):
        assert ScriptSettings(worker_python=str(py), output_mode="spout").problems(offer) == [
            "Output: spout output needs Windows and SpoutGL"
        ]


def test_menus_offer_only_what_can_run_here(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path / "no-weights"))
    offer = worker_offer()
    assert offer.renderer_choices("auto") == ["auto", "meshwarp"]  # liveportrait cannot start: not offered
    # a saved choice stays visible
    assert offer.renderer_choices("liveportrait") == ["auto", "meshwarp", "liveportrait"]
    if not sys.platform.startswith("win"):
        assert offer.mode_choices("direct") == ["direct", "nut", "browser"]
    assert offer.range("motion.expression_strength") == (0.0, 2.0) and offer.range("characters.size") == (64, 2048)
    offer.save(str(tmp_path / "d.json"))
    assert Offer.load(str(tmp_path / "d.json")).data == offer.data
    assert Offer.load(str(tmp_path / "missing.json")) is None
    for bad in ("[]", "{}", '{"config": {}, "renderers": [1], "outputs": []}', "not json"):
        with pytest.raises(OfferError):
            Offer.from_json(bad)


def test_worker_config_matches_the_worker_schema(tmp_path):
    """The written config must load with the worker's own validator (no drift between the two)."""
    from worker.config import load_config

    chars = tmp_path / "chars"
    chars.mkdir()
    s = ScriptSettings(
        characters_dir=str(chars),
        renderer="meshwarp",
        size=384,
        expression_strength=1.5,
        head_strength=0.5,
        smoothing=2.0,
        mirror=True,
        camera="webcam:1",
        performance="low",
    )
    for mode, port in (("direct", None), ("nut", 45678), ("spout", None), ("browser", None)):
        s.output_mode = mode
        path = tmp_path / f"{mode}.yaml"
        path.write_text(json.dumps(s.worker_config(port, start_character="alice.png")))
        cfg = load_config(path)
        assert cfg["characters"] == {"folder": str(chars), "current": "alice.png", "size": 384}
        assert cfg["renderer"]["name"] == "meshwarp" and cfg["camera"]["source"] == "webcam:1"
        assert cfg["motion"]["expression_strength"] == 1.5 and cfg["motion"]["head_strength"] == 0.5
        assert cfg["motion"]["mirror"] is True and cfg["smoothing"] == 2.0 and cfg["performance"] == "low"
        assert cfg["outputs"][0]["type"] == {"direct": "obs", "nut": "nut", "spout": "spout", "browser": "ws"}[mode]
        if mode == "nut":  # its extra option is one the output accepts
            from worker.output import create_output

            assert create_output(cfg["outputs"][0]).name == "nut"
    assert s.worker_config()["characters"].get("current") is None
    with pytest.raises(ValueError):
        ScriptSettings(output_mode="nut").worker_config(None)


def test_live_options_are_the_workers_live_keys():
    from worker.config import LIVE_KEYS

    opts = ScriptSettings(expression_strength=0.7).live_options()
    assert set(opts) <= LIVE_KEYS and opts["motion.expression_strength"] == 0.7


def test_needs_restart_only_for_startup_settings():
    a = ScriptSettings()
    assert not ScriptSettings(expression_strength=0.3, mirror=True, smoothing=2.0).needs_restart(a)
    assert not ScriptSettings(character="bob.png", autostart=False).needs_restart(a)
    for change in (
        {"renderer": "liveportrait"},
        {"camera": "webcam:2"},
        {"size": 256},
        {"characters_dir": "/x"},
        {"output_mode": "nut"},
        {"worker_python": "/p"},
    ):
        assert ScriptSettings(**change).needs_restart(a), change


def test_source_arg():
    assert ScriptSettings(camera="webcam:2").source_arg() == "webcam:2"
    assert ScriptSettings(camera=CAMERA_FILE, video_file="/v/a.mp4").source_arg() == "/v/a.mp4"


def test_find_worker_python(tmp_path):
    assert find_worker_python(str(tmp_path)) == ""
    first = venv_python_candidates(str(tmp_path))[0]
    os.makedirs(os.path.dirname(first))
    Path(first).write_text("")
    assert find_worker_python(str(tmp_path)) == first
    # the real checkout: the venv this test runs in
    assert find_worker_python(str(REPO)) != ""


# ---- status line ----------------------------------------------------------------------------------


def test_status_line_running():
    snap = {
        "state": "running",
        "worker": {"fps": 29.96, "paused": False, "tracking": "tracking", "warnings": []},
        "latency_ms": 41.2,
        "character": "astronaut.png",
    }
    assert format_status_line(snap) == "Running · 30.0 fps · 41 ms · astronaut · tracking"
    assert format_status_line({"state": "running", "worker": {}, "latency_ms": None, "character": None}) == "Running"
    snap["worker"]["renderer"] = "meshwarp"  # what `auto` chose, once the worker reports it
    assert format_status_line(snap) == "Running · 30.0 fps · 41 ms · astronaut · meshwarp · tracking"
    snap["worker"]["paused"] = True
    snap["worker"]["warnings"] = ["camera is slow"]
    line = format_status_line(snap)
    assert line.startswith("Paused") and line.endswith("warning: camera is slow")


def test_status_line_other_states():
    assert format_status_line({"state": "stopped"}) == "Stopped"
    assert format_status_line({"state": "starting"}) == "Starting worker…"
    assert (
        format_status_line({"state": "restarting", "restart_in": 3.6, "last_error": "exit code 1: boom"})
        == "Worker stopped · exit code 1: boom · restarting in 4 s"
    )
    assert (
        format_status_line({"state": "error", "last_error": "Worker Python: not set"})
        == "Not running · Worker Python: not set"
    )


def test_last_error_line():
    text = "WARNING: slow\nerror: webcam:3: no such camera\n"
    assert last_error_line(text) == "webcam:3: no such camera"
    tb = "Traceback (most recent call last):\n  File x\nRuntimeError: boom\n"
    assert last_error_line(tb) == "RuntimeError: boom"
    assert last_error_line("\n\n") == ""
    noise = "W0000 00:00:1795304753.239438 inference_feedback_manager.cc:114] Feedback manager requires a model\n"
    assert last_error_line(noise) == ""
    assert last_error_line("KeyboardInterrupt\n" + noise) == "KeyboardInterrupt"


def test_exit_text():
    assert exit_text(-9, "") == "killed by signal 9"
    assert exit_text(2, "no camera") == "exit code 2: no camera"


def test_camera_choices():
    text = json.dumps(
        [
            {"index": 0, "name": "Integrated", "width": 1280, "height": 720},
            {"index": 2, "name": "", "width": None, "height": None},
        ]
    )
    assert camera_choices(text) == [
        {"value": "webcam:0", "name": "Integrated (1280×720)"},
        {"value": "webcam:2", "name": "Camera 2"},
    ]
    with pytest.raises(ValueError):
        camera_choices("oops")
    with pytest.raises(KeyError):
        camera_choices(json.dumps([{"name": "no index"}]))


# ---- worker process --------------------------------------------------------------------------------


def test_worker_command_and_ready_line():
    cmd = worker_command("/v/bin/python", "/s/c.yaml", "webcam:0", 4242, "/s/w.log")
    assert cmd == [
        "/v/bin/python",
        "-m",
        "worker",
        "--log-file",
        "/s/w.log",
        "run",
        "--config",
        "/s/c.yaml",
        "--source",
        "webcam:0",
        "--parent-pid",
        "4242",
        "--ready-json",
    ]
    P = load_protocol(str(REPO))
    line = P.ready_line(1234, 5678).decode()
    assert parse_ready_line(line) == {"event": "ready", "protocol": 1, "control_port": 1234, "frame_port": 5678}
    for bad in ("", "hello", "{", '{"event": "status"}', '{"event": "ready", "control_port": "x"}', "[1]"):
        assert parse_ready_line(bad) is None


def test_child_env_drops_obs_python_variables():
    env = child_env("TOK", "secret", base={"PYTHONHOME": "/obs", "PYTHONPATH": "/obs/lib", "PATH": "/bin"})
    assert env["TOK"] == "secret" and env["PATH"] == "/bin"
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env


def _child(tmp_path, code: str) -> WorkerProcess:
    argv = [sys.executable, "-c", code]
    return WorkerProcess(argv, child_env("TOK", "x"), str(tmp_path), str(tmp_path / "stderr.log"))


def test_worker_process_reads_ready_line_and_stops(tmp_path):
    code = (
        "import sys, time; print('noise'); "
        'print(\'{"event": "ready", "protocol": 1, "control_port": 11, "frame_port": 12}\', flush=True);'
        "time.sleep(60)"
    )
    wp = _child(tmp_path, code)
    wp.start()
    deadline = time.monotonic() + 10
    while wp.ready is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wp.ready == {"event": "ready", "protocol": 1, "control_port": 11, "frame_port": 12}
    assert wp.poll() is None
    t0 = time.monotonic()
    rc = wp.stop(grace=0.0)
    assert rc is not None and time.monotonic() - t0 < 10  # the child would sleep 60 s


def test_worker_process_kills_a_child_that_ignores_terminate(tmp_path):
    if sys.platform.startswith("win"):
        pytest.skip("terminate is already a hard kill on Windows")
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        'print(\'{"event": "ready", "protocol": 1, "control_port": 11, "frame_port": 12}\', flush=True); '
        "time.sleep(60)"
    )
    wp = _child(tmp_path, code)
    wp.start()
    deadline = time.monotonic() + 30  # the ready line comes once SIGTERM is ignored (a busy box starts late)
    while wp.ready is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wp.ready is not None
    rc = wp.stop(grace=0.0)
    assert rc == -9


def test_worker_process_reports_the_error_line(tmp_path):
    code = "import sys; sys.stderr.write('WARNING: x\\nerror: config key smoothing: bad\\n'); sys.exit(2)"
    wp = _child(tmp_path, code)
    wp.start()
    wp.proc.wait(10)
    assert wp.poll() == 2
    assert wp.error_text() == "config key smoothing: bad"
    wp.stop()


def test_clean_state_dir_removes_only_stale_files(tmp_path):
    now = time.time()
    files = {
        "status-1.json": 120,
        "status-2.json": 5,
        "worker-1.yaml": 8 * 86400,
        "worker-2.log": 3600,
        "notes.txt": 9 * 86400,
    }
    for name, age in files.items():
        p = tmp_path / name
        p.write_text("x")
        os.utime(p, (now - age, now - age))
    removed = sorted(Path(p).name for p in clean_state_dir(str(tmp_path), now))
    assert removed == ["status-1.json", "worker-1.yaml"]
    assert clean_state_dir(str(tmp_path / "missing")) == []


# ---- protocol import ------------------------------------------------------------------------------


def test_protocol_loads_under_its_own_name_from_the_checkout(tmp_path):
    P = load_protocol(str(REPO))
    assert P.__name__ == MODULE_NAME and P.ENV_TOKEN == "STREAM_ANIMATOR_TOKEN"
    assert sys.modules[MODULE_NAME] is P
    with pytest.raises(ImportError, match="protocol.py not found"):
        load_protocol(str(tmp_path))


def test_script_sources_are_stdlib_only():
    """OBS embeds its own Python: the script must import nothing outside the standard library."""
    code = (
        "import sys, importlib; sys.path.insert(0, sys.argv[1]);"
        "import stream_animator_lib.engine, stream_animator_lib.obs_frames, stream_animator_lib.bindings,"
        " stream_animator_lib.sources;"
        "from stream_animator_lib.protocol_loader import load_protocol; load_protocol(sys.argv[2]);"
        "bad = [m for m in ('numpy', 'yaml', 'worker', 'cv2', 'av') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(REPO / "obs_script"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_script_syntax_fits_the_oldest_python_obs_may_embed():
    """OBS on Windows/macOS embeds the user's Python (3.8 and up here); no newer syntax."""
    import ast

    files = sorted((REPO / "obs_script").rglob("*.py")) + [REPO / "worker" / "control" / "protocol.py"]
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))
        if path.name not in ("stream_animator.py", "__init__.py"):  # annotations stay strings: `X | None` is fine
            assert "from __future__ import annotations" in path.read_text(encoding="utf-8"), path


def test_status_line_says_why_the_character_idles():
    snap = {
        "state": "running",
        "worker": {
            "fps": 30.0,
            "paused": False,
            "tracking": "no camera",
            "warnings": ["camera unavailable: x"],
            "camera_issue": "no camera: camera '0' could not be opened; retrying",
        },
        "latency_ms": 5.0,
        "character": "astronaut.png",
    }
    assert format_status_line(snap) == (
        "Running · 30.0 fps · 5 ms · astronaut · no camera: camera '0' could not be opened; retrying"
    )


# ---- the voice ---------------------------------------------------------------------------------------


def test_voice_settings_mic_argument_and_problems(tmp_path):
    py = tmp_path / "python"
    py.write_text("")
    wav = tmp_path / "v.wav"
    wav.write_bytes(b"")
    assert ScriptSettings().mic_arg() is None  # no voice by default
    assert ScriptSettings(mic="default").mic_arg() == "default"
    assert ScriptSettings(mic="USB Mic").mic_arg() == "USB Mic"
    assert ScriptSettings(mic="file", mic_file=str(wav)).mic_arg() == str(wav)
    assert ScriptSettings(camera="none", mic="default").source_arg() == "none"
    ok = ScriptSettings(worker_python=str(py), camera="none", mic="file", mic_file=str(wav), lipsync="always")
    assert ok.problems() == [] and ok.problems(worker_offer()) == []
    assert ScriptSettings(worker_python=str(py), camera="none").problems() == [
        "Microphone: choose one (the camera is set to none, so the voice is the only input)"
    ]
    text = "\n".join(
        ScriptSettings(worker_python=str(py), mic="file", mic_file=str(tmp_path / "gone.wav"), lipsync="x").problems()
    )
    assert "Voice file: " in text and "gone.wav does not exist" in text and "Lip sync: 'x'" in text
    assert "Voice file: choose a file" in ScriptSettings(worker_python=str(py), mic="file").problems()[0]
    # the microphone restarts the worker, the lip sync mode changes live
    assert ScriptSettings(mic="default").needs_restart(ScriptSettings())
    assert ScriptSettings(mic="file", mic_file="/a.wav").needs_restart(ScriptSettings(mic="file", mic_file="/b.wav"))
    assert not ScriptSettings(lipsync="always").needs_restart(ScriptSettings())
    assert ScriptSettings(lipsync="always").live_options()["voice.lipsync"] == "always"


def test_worker_command_with_a_voice_parses_with_the_workers_own_parser():
    from worker.cli import build_parser

    cmd = worker_command("/v/bin/python", "/s/c.yaml", "none", 4242, None, "/s/hello.wav", "always")
    assert cmd[-4:] == ["--mic", "/s/hello.wav", "--lipsync", "always"]
    args = build_parser().parse_args(cmd[3:])
    assert args.source == "none" and args.mic == "/s/hello.wav" and args.lipsync == "always"
    assert "--mic" not in worker_command("/v/bin/python", "/s/c.yaml", "webcam:0", 1, None, None, "assist")


def test_microphone_choices():
    text = json.dumps(
        [
            {
                "index": 3,
                "name": "USB Mic",
                "channels": 1,
                "default_rate": 48000.0,
                "host_api": "ALSA",
                "default": True,
            },
            {
                "index": 5,
                "name": "Headset",
                "channels": 2,
                "default_rate": 44100.0,
                "host_api": "ALSA",
                "default": False,
            },
        ]
    )
    assert microphone_choices(text) == [
        {"value": "USB Mic", "name": "USB Mic (default)"},
        {"value": "Headset", "name": "Headset"},
    ]
    assert microphone_choices("[]") == []
    with pytest.raises(ValueError):
        microphone_choices("no microphones found")


def test_status_line_shows_the_voice():
    w = {"fps": 30.0, "paused": False, "tracking": "voice only", "warnings": [], "voice": {"muted": False}}
    snap = {"state": "running", "worker": w, "latency_ms": 12.0, "character": "astronaut.png"}
    assert format_status_line(snap) == "Running · 30.0 fps · 12 ms · astronaut · voice only · voice on"
    w["voice"] = {"muted": True}
    assert format_status_line(snap).endswith("voice only · voice muted")
    w["voice"] = {}
    assert format_status_line(snap).endswith("voice only")


def test_liveportrait_offered_exactly_where_describe_says_it_can_run(tmp_path, monkeypatch):
    """The menu follows `describe`: no weights -> not offered; graphs it accepts (the test-only
    stand-ins) -> offered; `auto` is always offered and on this CPU-only machine still picks meshwarp."""
    from worker.render.liveportrait.standin import build_models

    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path / "no-weights"))
    monkeypatch.delenv("STREAM_ANIMATOR_STANDIN_MODELS", raising=False)
    assert "liveportrait" not in worker_offer().renderer_choices("auto")
    monkeypatch.setenv("STREAM_ANIMATOR_STANDIN_MODELS", str(build_models(tmp_path / "standin")))
    offer = worker_offer()
    assert offer.renderer_choices("auto") == ["auto", "meshwarp", "liveportrait"]
    auto = offer.renderers["auto"]
    assert auto["picks"] == "meshwarp" and "no GPU provider" in auto["picks_reason"]
    assert offer.problems("liveportrait", "direct", {}) == []


def test_liveportrait_options_come_from_describe_and_reach_the_worker_config(tmp_path, monkeypatch):
    """models / precision / device / unverified: checked against the renderer's own option list
    (`describe`), passed only to renderers that take them, and accepted by the worker's config."""
    from worker.config import load_config

    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path / "no-weights"))
    offer = worker_offer()
    assert offer.renderer_option("liveportrait", "precision")["choices"] == ["auto", "fp16", "fp32"]
    assert offer.renderer_option("liveportrait", "device")["choices"] == ["auto", "cuda", "dml", "coreml", "cpu"]
    assert offer.renderer_option("meshwarp", "precision") is None
    py = tmp_path / "python"
    py.write_text("")
    models = tmp_path / "models"
    models.mkdir()
    s = ScriptSettings(
        worker_python=str(py), renderer="liveportrait", lp_models=str(models), lp_precision="fp32",
        lp_device="cpu", lp_unverified=True,
    )  # fmt: skip
    # a models folder / unverified: the renderer checks the files itself, the menu does not refuse it
    assert s.problems(offer) == []
    want = {"name": "liveportrait", "models": str(models), "precision": "fp32", "device": "cpu", "unverified": True}
    for off in (offer, None):
        cfg_file = tmp_path / "lp.yaml"
        cfg_file.write_text(json.dumps(s.worker_config(offer=off)))
        assert load_config(cfg_file)["renderer"] == want
    # meshwarp takes none of them: not written (the worker would refuse the config)
    s.renderer = "meshwarp"
    assert s.worker_config(offer=offer)["renderer"] == {"name": "meshwarp"}
    assert s.worker_config()["renderer"] == {"name": "meshwarp"}
    s.renderer = "auto"  # auto passes them on to liveportrait when it picks it
    assert s.worker_config(offer=offer)["renderer"]["precision"] == "fp32"
    # defaults are not written; bad values are named
    assert ScriptSettings(renderer="liveportrait").worker_config()["renderer"] == {"name": "liveportrait"}
    bad = ScriptSettings(
        worker_python=str(py), renderer="liveportrait", lp_precision="fp8", lp_models=str(tmp_path / "nope")
    ).problems(offer)
    assert f"LivePortrait models folder: {tmp_path / 'nope'} is not a folder" in bad
    assert "Renderer precision: 'fp8' is not one of auto, fp16, fp32" in bad
    assert ScriptSettings(lp_precision="fp32").needs_restart(ScriptSettings())


# ---- the receiving source, made idempotently by name ----------------------------------------------


class FakeObs:
    """The few obspython calls `sources` makes, over a dict of named sources with refcounts: enough
    to check what is created, updated, kept and released (tests/test_obs_browser_source.py: real OBS)."""

    def __init__(self, types=("ffmpeg_source", "browser_source")):
        self.types, self.sources, self.refs, self.updates, self.scene_items = set(types), {}, {}, [], []

    def obs_source_get_display_name(self, type_id):
        return type_id.title() if type_id in self.types else None

    def obs_data_create(self):
        return {}

    def obs_data_release(self, data):
        pass

    def obs_data_set_bool(self, d, k, v):
        d[k] = bool(v)

    def obs_data_set_int(self, d, k, v):
        d[k] = int(v)

    def obs_data_set_string(self, d, k, v):
        d[k] = str(v)

    def obs_data_get_bool(self, d, k):
        return d.get(k, False)

    def obs_data_get_int(self, d, k):
        return d.get(k, 0)

    def obs_data_get_string(self, d, k):
        return d.get(k, "")

    def obs_get_source_by_name(self, name):
        if name not in self.sources:
            return None
        self.refs[name] += 1
        return name

    def obs_source_release(self, name):
        self.refs[name] -= 1

    def obs_source_get_unversioned_id(self, name):
        return self.sources[name][0]

    def obs_source_get_settings(self, name):
        return dict(self.sources[name][1])

    def obs_source_update(self, name, data):
        self.sources[name][1].update(data)
        self.updates.append(name)

    def obs_source_create(self, type_id, name, data, hotkeys):
        if type_id not in self.types:
            return None
        self.sources[name], self.refs[name] = (type_id, dict(data)), 1
        return name

    def obs_scene_from_source(self, scene_src):
        return scene_src

    def obs_scene_add(self, scene, name):
        self.scene_items.append((scene, name))
        self.refs[name] += 1  # the scene item holds its own reference


def test_browser_source_is_created_once_then_kept_or_pointed_at_the_new_address():
    from stream_animator_lib.sources import (
        BROWSER_SOURCE_ID,
        BROWSER_SOURCE_NAME,
        browser_source_settings,
        ensure_source,
        has_source_type,
    )

    obs = FakeObs()
    assert has_source_type(obs, BROWSER_SOURCE_ID)
    url = "http://127.0.0.1:17865/source?token=abcdefghijklmnop"
    wanted = browser_source_settings(url, 512)
    assert wanted == {"url": url, "width": 512, "height": 512, "reroute_audio": True}
    assert ensure_source(obs, BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, wanted, "Scene") == "created"
    assert obs.sources[BROWSER_SOURCE_NAME] == (BROWSER_SOURCE_ID, wanted)
    assert obs.scene_items == [("Scene", BROWSER_SOURCE_NAME)]
    # again (script reloaded, Start pressed, the worker restarted on the kept address): nothing changes
    for _ in range(3):
        assert ensure_source(obs, BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, wanted, "Scene") == "kept"
    assert obs.updates == [] and len(obs.scene_items) == 1
    # a new address (settings reset) or size: the same source, updated in place
    moved = browser_source_settings(url.replace("17865", "17866"), 768)
    assert ensure_source(obs, BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, moved, "Other") == "updated"
    assert obs.sources[BROWSER_SOURCE_NAME][1] == moved and len(obs.scene_items) == 1
    assert obs.refs[BROWSER_SOURCE_NAME] == 1  # every lookup released again (only the scene's own ref)


def test_browser_source_missing_plugin_or_a_name_taken_by_another_type():
    from stream_animator_lib.sources import BROWSER_SOURCE_ID, BROWSER_SOURCE_NAME, ensure_source, has_source_type

    debian = FakeObs(types=("ffmpeg_source",))  # Debian's OBS: no obs-browser
    assert not has_source_type(debian, BROWSER_SOURCE_ID)
    assert ensure_source(debian, BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, {"url": "x"}, "Scene") == "cannot create"
    assert debian.sources == {}
    taken = FakeObs()
    taken.obs_source_create("ffmpeg_source", BROWSER_SOURCE_NAME, {}, None)
    assert ensure_source(taken, BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, {"url": "x"}, "Scene") == "other type"
    assert taken.sources[BROWSER_SOURCE_NAME] == ("ffmpeg_source", {}) and taken.scene_items == []
    assert ensure_source(FakeObs(), BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, {"url": "x"}, None) == "no scene"


def test_the_script_and_obs_setup_name_the_browser_source_alike():
    """`obs-setup --browser-source` adds it, the script's "browser" mode finds it by the same name."""
    from stream_animator_lib.sources import BROWSER_SOURCE_NAME

    from worker.setup.obs_config import BROWSER_SOURCE_NAME as SETUP_NAME

    assert BROWSER_SOURCE_NAME == SETUP_NAME
