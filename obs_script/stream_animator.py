"""Stream Motion Animator for OBS Studio: add this file in Tools -> Scripts.

It starts the worker (the venv Python of this checkout) with a secret token, restarts it with
back-off when it dies and stops it with OBS; it creates the "Animated Character" source and feeds
it; it registers hotkeys (next/previous/1-9 character, calibrate, pause, mute voice) and switches the
character with the scene. Standard library only: OBS embeds its own Python.

Threads: OBS calls the functions below on its UI thread (properties, hotkeys, frontend events)
or its video thread (the timer). They only queue commands for, or read a snapshot of, the
engine thread in stream_animator_lib/engine.py, which does all worker I/O.
"""

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import obspython as obs

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# "Reload Scripts" re-runs this file: drop cached library modules so edits take effect.
for _name in [m for m in sys.modules if m == "stream_animator_lib" or m.startswith("stream_animator_lib.")]:
    del sys.modules[_name]

from stream_animator_lib import bindings  # noqa: E402
from stream_animator_lib.engine import Engine, clean_state_dir, free_port  # noqa: E402
from stream_animator_lib.obs_frames import SOURCE_ID, ObsFrameSink  # noqa: E402
from stream_animator_lib.offer import MODE_LABELS  # noqa: E402
from stream_animator_lib.protocol_loader import load_protocol  # noqa: E402
from stream_animator_lib.settings import (  # noqa: E402
    CAMERA_FILE,
    CAMERA_NONE,
    LIPSYNC_MODES,
    MIC_FILE,
    MIC_OFF,
    RENDERER_OPTIONS,
    SIZES,
    ScriptSettings,
    find_worker_python,
)
from stream_animator_lib.sources import (  # noqa: E402
    BROWSER_MISSING,
    BROWSER_SOURCE_ID,
    BROWSER_SOURCE_NAME,
    browser_source_settings,
    ensure_source,
    has_source_type,
)

SOURCE_NAME = "Animated Character"
SPOUT_SOURCE_NAME = "Animated Character (Spout)"
SPOUT_SOURCE_ID = "spout_capture"
LOG_PREFIX = "[stream-animator] "

# (hotkey name, description, control op, op arguments)
HOTKEYS = (
    [
        ("stream_animator.next_character", "Stream Animator: next character", "set_character", {"step": 1}),
        ("stream_animator.prev_character", "Stream Animator: previous character", "set_character", {"step": -1}),
    ]
    + [
        (f"stream_animator.character_{n}", f"Stream Animator: character {n}", "set_character", {"index": n})
        for n in range(1, 10)
    ]
    + [
        ("stream_animator.calibrate", "Stream Animator: calibrate neutral face", "calibrate", {}),
        ("stream_animator.pause_toggle", "Stream Animator: pause / resume", "pause_toggle", {}),
        ("stream_animator.mute_toggle", "Stream Animator: mute / unmute voice", "mute_toggle", {}),
    ]
)


class _State:
    # annotations are strings: OBS may embed a Python that cannot evaluate `X | None`
    engine: "Engine | None" = None
    sink: "ObsFrameSink | None" = None
    proto: "Any" = None  # worker/control/protocol.py, loaded from the checkout
    load_error = ""
    settings_data: "Any" = None  # the script's obs_data (owned by OBS)
    settings: "ScriptSettings | None" = None
    last_character_setting = ""
    nut_port: "int | None" = None
    status_path: "str | None" = None
    hotkey_ids: "dict[str, int]" = {}
    hotkey_callbacks: "list[Callable[[bool], None]]" = []  # keep the plain functions alive
    last_logged: "tuple[Any, Any, Any] | None" = None
    loaded_wall = 0.0
    pending_log: "deque[str]" = deque(maxlen=200)  # lines from the engine thread, printed by the timer
    browser_url: "str | None" = None  # the page address the Browser Source was last made for
    browser_missing_said = False


S = _State()


def _log(msg):
    print(LOG_PREFIX + msg)


def _log_later(msg):
    # engine thread: OBS files prints from foreign threads under "Unknown Script"; the timer
    # prints them in the script's own context
    S.pending_log.append(msg)


def _flush_log():
    while S.pending_log:
        _log(S.pending_log.popleft())


def state_dir():
    """Where the worker's config, logs and the status file go (env STREAM_ANIMATOR_STATE_DIR wins)."""
    env = os.environ.get("STREAM_ANIMATOR_STATE_DIR")
    if env:
        return env
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return os.path.join(base, "StreamAnimator", "obs")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Application Support", "StreamAnimator", "obs")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "stream-animator", "obs")


# ---- settings ------------------------------------------------------------------------------------


def _read_settings(data):
    def get(name, default):
        if isinstance(default, bool):
            return obs.obs_data_get_bool(data, name)
        if isinstance(default, int):
            return obs.obs_data_get_int(data, name)
        if isinstance(default, float):
            return obs.obs_data_get_double(data, name)
        return obs.obs_data_get_string(data, name)

    return ScriptSettings.from_reader(get)


def script_description():
    return (
        "<b>Stream Motion Animator</b><br>A still character image moves with your webcam face. "
        f"Adds the source <i>{SOURCE_NAME}</i> to the current scene. Hotkeys: Settings → Hotkeys → "
        "“Stream Animator”."
    )


_DEFAULT_SETTERS = {
    bool: "obs_data_set_default_bool",
    int: "obs_data_set_default_int",
    float: "obs_data_set_default_double",
    str: "obs_data_set_default_string",
}


def script_defaults(data):
    # every setting's default is ScriptSettings' own; only the worker's Python is found here
    values = ScriptSettings.defaults()
    values["worker_python"] = find_worker_python(REPO)
    for name, value in values.items():
        getattr(obs, _DEFAULT_SETTERS[type(value)])(data, name, value)


def _scene_names():
    names = []
    scenes = obs.obs_frontend_get_scenes() or []
    for src in scenes:
        names.append(obs.obs_source_get_name(src))
    obs.source_list_release(scenes)
    return names


def _add_character_list(props, name, label, snap, current, keep_label=None):
    p = obs.obs_properties_add_list(props, name, label, obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    if keep_label is not None:
        obs.obs_property_list_add_string(p, keep_label, bindings.UNBOUND)
    ids = set()
    for ch in snap.get("characters") or []:
        obs.obs_property_list_add_string(p, ch["name"], ch["id"])
        ids.add(ch["id"])
    if current and current not in ids:  # keep a saved choice visible before the worker answers
        obs.obs_property_list_add_string(p, current, current)
    return p


def script_properties():
    snap: dict[str, Any] = S.engine.snapshot() if S.engine else {"line": S.load_error or "Not loaded"}
    if S.settings_data is not None:
        obs.obs_data_set_string(S.settings_data, "status", snap.get("line", ""))
    props = obs.obs_properties_create()
    obs.obs_properties_add_text(props, "status", "Status", obs.OBS_TEXT_INFO)
    obs.obs_properties_add_button(props, "btn_start", "Start", _on_start)
    obs.obs_properties_add_button(props, "btn_stop", "Stop", _on_stop)
    obs.obs_properties_add_button(props, "btn_calibrate", "Calibrate neutral face", _on_calibrate)
    obs.obs_properties_add_button(props, "btn_reload", "Reload characters", _on_reload)
    obs.obs_properties_add_button(props, "btn_refresh", "Refresh status and lists", _on_refresh)
    obs.obs_properties_add_button(props, "btn_mark_face", "Mark face…", _on_mark_face)
    obs.obs_properties_add_button(props, "btn_studio", "Studio…", _on_studio)

    cur = S.settings.character if S.settings else ""
    _add_character_list(props, "character", "Character", snap, cur)
    obs.obs_properties_add_path(props, "characters_dir", "Characters folder", obs.OBS_PATH_DIRECTORY, "", None)

    cam = obs.obs_properties_add_list(props, "camera", "Camera", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    cams = snap.get("cameras") or [{"value": f"webcam:{i}", "name": f"Camera {i}"} for i in range(4)]
    for c in cams:
        obs.obs_property_list_add_string(cam, c["name"], c["value"])
    obs.obs_property_list_add_string(cam, "Video file (below)", CAMERA_FILE)
    obs.obs_property_list_add_string(cam, "No camera (the voice moves the mouth)", CAMERA_NONE)
    obs.obs_properties_add_path(
        props,
        "video_file",
        "Video file",
        obs.OBS_PATH_FILE,
        "Videos (*.mp4 *.mkv *.mov *.avi *.webm);;All files (*.*)",
        None,
    )

    # the voice: microphones from `worker microphones --json` (Refresh, on the engine's threads)
    combo, text = obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING
    mic = obs.obs_properties_add_list(props, "mic", "Voice (lip sync)", combo, text)
    obs.obs_property_list_add_string(mic, "No voice", MIC_OFF)
    obs.obs_property_list_add_string(mic, "Default microphone", "default")
    names = set()
    for m in snap.get("microphones") or []:
        obs.obs_property_list_add_string(mic, m["name"], m["value"])
        names.add(m["value"])
    saved = S.settings.mic if S.settings else MIC_OFF
    if saved not in names and saved not in (MIC_OFF, "default", MIC_FILE):  # keep a saved device visible
        obs.obs_property_list_add_string(mic, saved, saved)
    obs.obs_property_list_add_string(mic, "Audio or video file (below)", MIC_FILE)
    obs.obs_properties_add_path(
        props,
        "mic_file",
        "Voice file",
        obs.OBS_PATH_FILE,
        "Audio and video (*.wav *.mp3 *.m4a *.ogg *.flac *.mp4 *.mkv *.mov *.webm);;All files (*.*)",
        None,
    )
    lip = obs.obs_properties_add_list(props, "lipsync", "Lip sync", combo, text)
    labels = {
        "assist": "Assist: the voice while your face is lost",
        "always": "Always: the voice drives the mouth",
        "off": "Off: the camera only",
    }
    for mode in LIPSYNC_MODES:
        obs.obs_property_list_add_string(lip, labels[mode], mode)

    # renderers, outputs and ranges are the worker's (`describe --json`, read on the engine's thread)
    offer = S.engine.offer() if S.engine else None
    chosen = S.settings or ScriptSettings()
    r = obs.obs_properties_add_list(props, "renderer", "Renderer", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    for name in offer.renderer_choices(chosen.renderer) if offer else [chosen.renderer]:
        obs.obs_property_list_add_string(r, name, name)
    sz = obs.obs_properties_add_list(props, "size", "Output size", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_INT)
    lo_hi = offer.range("characters.size") if offer else None
    for n in SIZES:
        if lo_hi is None or lo_hi[0] <= n <= lo_hi[1]:
            obs.obs_property_list_add_int(sz, f"{n} × {n}", n)
    if offer is not None:
        for name, key, label in (
            ("expression_strength", "motion.expression_strength", "Expression strength"),
            ("head_strength", "motion.head_strength", "Head motion strength"),
            ("smoothing", "smoothing", "Smoothing (1 = tuned default)"),
        ):
            lo_hi = offer.range(key)
            if lo_hi is not None:
                obs.obs_properties_add_float_slider(props, name, label, lo_hi[0], lo_hi[1], 0.05)
    else:
        obs.obs_properties_add_text(
            props,
            "offer_note",
            "Motion sliders appear once the worker has answered (press Refresh, then reopen this dialog)",
            obs.OBS_TEXT_INFO,
        )
    obs.obs_properties_add_bool(props, "mirror", "Mirror (move like a mirror image)")
    levels = offer.choices("performance") if offer else []
    if levels:  # the worker's own levels (`describe`)
        perf = obs.obs_properties_add_list(
            props, "performance", "CPU use (beside a game)", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING
        )
        labels = {"low": "Low: lightest on the CPU", "balanced": "Balanced (default)", "quality": "Quality"}
        for level in levels:
            obs.obs_property_list_add_string(perf, labels.get(level, level), level)

    # liveportrait's options, listed only where the worker says a renderer takes them (`describe`)
    if offer is not None:
        _add_renderer_options(props, offer)

    out = obs.obs_properties_add_list(
        props, "output_mode", "Frames into OBS via", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING
    )
    for mode in offer.mode_choices(chosen.output_mode) if offer else list(MODE_LABELS):
        obs.obs_property_list_add_string(out, MODE_LABELS[mode], mode)
    obs.obs_properties_add_text(props, "spout_name", "Spout sender name", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_path(
        props, "worker_python", "Worker Python (the venv's python)", obs.OBS_PATH_FILE, "", None
    )
    obs.obs_properties_add_bool(props, "autostart", "Start the worker when OBS starts")

    group = obs.obs_properties_create()
    for scene in _scene_names():
        key = bindings.scene_key(scene)
        cur = obs.obs_data_get_string(S.settings_data, key) if S.settings_data is not None else ""
        _add_character_list(group, key, scene, snap, cur, keep_label="(keep current character)")
    obs.obs_properties_add_group(props, "scene_characters", "Character per scene", obs.OBS_GROUP_NORMAL, group)
    return props


# labels of liveportrait's renderer options; their choices and help come from `describe`
LP_LABELS = {
    "lp_precision": "LivePortrait precision",
    "lp_device": "LivePortrait device",
}


def _add_renderer_options(props, offer):
    for setting, label in LP_LABELS.items():
        o = offer.renderer_option("liveportrait", RENDERER_OPTIONS[setting])
        if o is None or "choices" not in o:
            continue
        p = obs.obs_properties_add_list(props, setting, label, obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
        for choice in o["choices"]:
            obs.obs_property_list_add_string(p, choice, choice)
        if o.get("help"):
            obs.obs_property_set_long_description(p, o["help"])
    if offer.renderer_option("liveportrait", "models") is not None:
        obs.obs_properties_add_path(
            props, "lp_models", "LivePortrait models folder (empty: installed)", obs.OBS_PATH_DIRECTORY, "", None
        )
    if offer.renderer_option("liveportrait", "unverified") is not None:
        obs.obs_properties_add_bool(
            props, "lp_unverified", "LivePortrait: run UNVERIFIED weight files (labelled UNVERIFIED everywhere)"
        )


def script_update(data):
    S.settings_data = data
    new = _read_settings(data)
    old, S.settings = S.settings, new
    if S.engine is not None:
        S.engine.apply_settings(new, S.nut_port)
        if old is not None and new.character and new.character != S.last_character_setting:
            S.engine.request("set_character", character=new.character)
    S.last_character_setting = new.character
    if old is not None and (old.output_mode != new.output_mode or old.spout_name != new.spout_name):
        _ensure_source()


def script_save(data):
    for name, hid in S.hotkey_ids.items():
        arr = obs.obs_hotkey_save(hid)
        obs.obs_data_set_array(data, name, arr)
        obs.obs_data_array_release(arr)
    cur = S.engine.current_character() if S.engine else None
    if cur:  # a hotkey or scene choice survives an OBS restart
        obs.obs_data_set_string(data, "character", cur)
        S.last_character_setting = cur


# ---- buttons, hotkeys, frontend events (UI thread: hand off only) -------------------------------


def _on_start(props, prop):
    _ensure_source()
    if S.engine:
        S.engine.start_worker()
    return True


def _on_stop(props, prop):
    if S.engine:
        S.engine.stop_worker()
    return True


def _on_calibrate(props, prop):
    if S.engine:
        S.engine.request("calibrate")
    return False


def _on_reload(props, prop):
    if S.engine:
        S.engine.request("reload_characters")
    return True


def _on_mark_face(props, prop):
    # the chosen character's marking page (`worker mark`), in a process of its own: OBS never waits
    s = S.settings
    if s and s.worker_python and s.character:
        image = os.path.join(s.characters_dir or os.path.join(REPO, "worker", "assets", "characters"), s.character)
        _launch([s.worker_python, "-m", "worker", "mark", image])
    return False


def _on_studio(props, prop):
    # the studio page (`worker studio`) in a process of its own; it reaches the running worker
    # through its control port and token, handed over in the environment (never on the command line)
    s = S.settings
    if s and s.worker_python:
        env = dict(os.environ)
        port = S.engine.snapshot().get("control_port") if S.engine else None
        if port and S.engine:
            env.update(STREAM_ANIMATOR_CONTROL_PORT=str(port), STREAM_ANIMATOR_TOKEN=S.engine.token)
        cmd = [s.worker_python, "-m", "worker", "studio"]
        _launch(cmd + (["--characters", s.characters_dir] if s.characters_dir else []), env)
    return False


def _launch(cmd, env=None):
    detach = {"creationflags": 0x208} if os.name == "nt" else {"start_new_session": True}  # new group, detached
    subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        **detach,
    )


def _on_refresh(props, prop):
    if S.engine:
        S.engine.probe_cameras()
    return True


def _make_hotkey(name, op, args):
    def on_hotkey(pressed):
        if pressed and S.engine:
            _log(f"hotkey {name}")
            S.engine.request(op, **args)

    return on_hotkey


def _register_hotkeys(data):
    S.hotkey_ids = {}
    S.hotkey_callbacks = []
    for name, desc, op, args in HOTKEYS:
        cb = _make_hotkey(name, op, args)
        S.hotkey_callbacks.append(cb)
        hid = obs.obs_hotkey_register_frontend(name, desc, cb)
        arr = obs.obs_data_get_array(data, name)
        obs.obs_hotkey_load(hid, arr)
        obs.obs_data_array_release(arr)
        S.hotkey_ids[name] = hid
    _log(f"registered {len(S.hotkey_ids)} hotkeys")


def _scenes_loaded():
    scenes = obs.obs_frontend_get_scenes() or []
    obs.source_list_release(scenes)
    return bool(scenes)


def _program_scene_name():
    src = obs.obs_frontend_get_current_scene()
    if src is None:
        return None
    name = obs.obs_source_get_name(src)
    obs.obs_source_release(src)
    return name


def _apply_scene_binding():
    if S.engine is None or S.settings_data is None:
        return
    scene = _program_scene_name()
    if scene is None:
        return
    # read at the event, not cached: scenes are added and renamed while OBS runs
    table = bindings.bindings_from_settings([scene], lambda key: obs.obs_data_get_string(S.settings_data, key))
    want = bindings.character_change(scene, table, S.engine.current_character())
    if want:
        _log(f"scene '{scene}' -> character '{want}'")
        S.engine.request("set_character", character=want)


def _selftest_properties():
    """Build the properties once and log what is in them (tests run OBS headless: nobody opens
    the dialog, so this is how they know it builds)."""
    props = script_properties()
    names = [
        "status",
        "btn_start",
        "btn_stop",
        "btn_calibrate",
        "btn_reload",
        "btn_refresh",
        "character",
        "characters_dir",
        "camera",
        "video_file",
        "mic",
        "mic_file",
        "lipsync",
        "renderer",
        "size",
        "expression_strength",
        "head_strength",
        "smoothing",
        "mirror",
        "performance",
        "lp_precision",
        "lp_device",
        "lp_models",
        "lp_unverified",
        "output_mode",
        "spout_name",
        "worker_python",
        "autostart",
        "scene_characters",
    ] + [bindings.scene_key(n) for n in _scene_names()]
    found = []
    for name in names:
        p = obs.obs_properties_get(props, name)
        if p is not None:
            n = obs.obs_property_list_item_count(p) if obs.obs_property_get_type(p) == obs.OBS_PROPERTY_LIST else ""
            found.append(f"{name}{'[' + str(n) + ']' if n != '' else ''}")
    obs.obs_properties_destroy(props)
    _log("selftest properties: " + ",".join(found))


def _on_frontend_event(event):
    if event == obs.OBS_FRONTEND_EVENT_FINISHED_LOADING:
        _ensure_source()
        _apply_scene_binding()
        if os.environ.get("STREAM_ANIMATOR_OBS_SELFTEST"):
            _selftest_properties()
    elif event == obs.OBS_FRONTEND_EVENT_SCENE_CHANGED:
        _apply_scene_binding()
        if os.environ.get("STREAM_ANIMATOR_OBS_SELFTEST"):
            _selftest_properties()
    elif event in (obs.OBS_FRONTEND_EVENT_EXIT, obs.OBS_FRONTEND_EVENT_SCRIPTING_SHUTDOWN):
        _shutdown()


def _on_timer():
    # timer (video) thread: read the snapshot, log a state change; make the Browser Source once the
    # worker tells its page address (as OBS scripts commonly create sources from timers)
    _flush_log()
    if S.engine is None:
        return
    snap = S.engine.snapshot()
    url = snap.get("browser_source")
    if url and S.settings is not None and S.settings.output_mode == "browser":
        # the worker told its page's address: make (or point) the Browser Source; without the plugin,
        # say so again when a worker start has cleared the status
        if url != S.browser_url or (S.browser_missing_said and not snap.get("last_error")):
            S.browser_url = url
            _ensure_source()
            snap = S.engine.snapshot()
    key = (snap.get("state"), snap.get("last_error"), snap.get("character"))
    if key != S.last_logged:
        S.last_logged = key
        _log("status: " + snap.get("line", ""))


# ---- the receiving source ------------------------------------------------------------------------


def _media_source_settings(mode):
    if mode == "nut":
        return {
            "is_local_file": False,
            "input": f"tcp://127.0.0.1:{S.nut_port}?listen",
            "input_format": "nut",
            "buffering_mb": 0,
            "ffmpeg_options": "fflags=nobuffer probesize=32 analyzeduration=0",
            "reconnect_delay_sec": 1,
            "restart_on_activate": False,
            "close_when_inactive": False,
            "clear_on_media_end": True,
            "hw_decode": False,
        }
    # direct: no file, nothing of its own to play; the script pushes the frames
    return {
        "is_local_file": True,
        "local_file": "",
        "restart_on_activate": False,
        "close_when_inactive": False,
        "clear_on_media_end": False,
        "looping": False,
    }


def _target_scene_source():
    if obs.obs_frontend_preview_program_mode_active():
        src = obs.obs_frontend_get_current_preview_scene()
        if src is not None:
            return src
    return obs.obs_frontend_get_current_scene()


def _wanted_source(mode):
    """(name, type id, settings) of the receiving source for `mode`; None while not known yet."""
    if S.settings is None:
        return None
    if mode == "browser":  # the worker's page: its address comes with the worker's ready line
        url = S.engine.snapshot().get("browser_source") if S.engine is not None else None
        if not url:
            return None  # the timer calls again once the worker is ready
        return BROWSER_SOURCE_NAME, BROWSER_SOURCE_ID, browser_source_settings(url, S.settings.size)
    if mode == "spout":
        return SPOUT_SOURCE_NAME, SPOUT_SOURCE_ID, {"spoutsenders": S.settings.spout_name, "compositemode": 2}
    return SOURCE_NAME, SOURCE_ID, _media_source_settings(mode)  # compositemode 2 above keeps alpha


def _ensure_source():
    """Find the receiving source by name, else create it in the current scene (idempotent)."""
    if S.settings is None:
        return
    mode = S.settings.output_mode
    if mode == "browser" and not has_source_type(obs, BROWSER_SOURCE_ID):
        if not S.browser_missing_said:  # the log once; the status again after each worker start
            S.browser_missing_said = True
            _log(BROWSER_MISSING)
        if S.engine is not None:
            S.engine.report_problem(BROWSER_MISSING)
        return
    wanted = _wanted_source(mode)
    if wanted is None:
        return
    name, type_id, settings = wanted
    scene_src = _target_scene_source()  # None while still loading: FINISHED_LOADING calls again
    scene = obs.obs_source_get_name(scene_src) if scene_src is not None else ""
    try:
        done = ensure_source(obs, name, type_id, settings, scene_src)
    finally:
        if scene_src is not None:
            obs.obs_source_release(scene_src)
    if done == "other type":
        _log(f"a source named '{name}' of another type exists; rename it so the animator can add its own")
    elif done == "cannot create":
        _log(f"cannot create a '{type_id}' source" + (" (is the Spout2 plugin installed?)" if mode == "spout" else ""))
    elif done == "created":
        shows = f" showing {settings['url']}" if mode == "browser" else ""
        _log(f"created source '{name}' in scene '{scene}'{shows}")
        if S.sink is not None:
            S.sink.refresh()
    elif done == "updated" and mode == "browser":
        _log(f"source '{name}' now shows {settings['url']}")


# ---- load / unload -------------------------------------------------------------------------------


def script_load(data):
    S.loaded_wall = time.time()
    S.settings_data = data
    S.settings = _read_settings(data)
    S.last_character_setting = S.settings.character
    S.nut_port = free_port()
    _register_hotkeys(data)
    obs.obs_frontend_add_event_callback(_on_frontend_event)
    try:
        S.proto = load_protocol(REPO)
    except ImportError as e:
        S.load_error = f"Not running: {e}"
        _log(S.load_error)
        return
    try:
        S.sink = ObsFrameSink(obs, SOURCE_NAME)
    except RuntimeError as e:
        S.sink = None
        _log(str(e))
    sdir = state_dir()
    clean_state_dir(sdir)
    S.status_path = os.path.join(sdir, f"status-{os.getpid()}.json")
    S.engine = Engine(
        S.proto,
        REPO,
        sdir,
        sink=S.sink,
        token=os.environ.get(S.proto.ENV_TOKEN) or None,
        parent_pid=os.getpid(),
        status_path=S.status_path,
        log=_log_later,
    )
    S.engine.apply_settings(S.settings, S.nut_port)
    S.engine.start()
    obs.timer_add(_on_timer, 250)
    if S.settings.autostart:
        S.engine.start_worker()
    if _scenes_loaded():  # added while OBS runs (else FINISHED_LOADING does this)
        _ensure_source()
        _apply_scene_binding()
    _log(f"loaded (OBS {obs.obs_get_version_string()}, Python {sys.version.split()[0]}, state in {sdir})")


def _shutdown():
    if S.engine is None:
        return
    obs.timer_remove(_on_timer)
    S.engine.close()
    S.engine = None
    _flush_log()
    if S.sink is not None:
        S.sink.close()
        S.sink = None
    if S.status_path:
        try:
            os.remove(S.status_path)
        except OSError:
            pass
    _log("stopped")


def script_unload():
    _shutdown()
