"""The worker's one YAML config: defaults that work with no file, validated with errors naming the key.

Example (every key optional):

    camera: {source: "webcam:0", width: 1280, height: 720, fps: 30, mjpeg: true}
    characters: {folder: ~/characters, current: null, size: 512}
    cache_dir: null                      # default: cache/ of the checkout
    renderer: {name: meshwarp}
    motion: {expression_strength: 1.0, head_strength: 1.0, mirror: false, idle: true}
    smoothing: 1.0                       # 0 = raw tracking, 1 = tuned default, 2 = extra steady
    outputs: [{type: obs}, {type: nut, port: 9999}]
    control: {port: 0}                   # 0 = a free port, announced on stdout
    voice: {mic: null, lipsync: assist, gain_db: 0, gate_db: -50, attack_ms: 20, release_ms: 70, vad: 2,
            calibration: null}           # calibration: written by `stream-animator calibrate-voice`

Settings in `LIVE_KEYS` can change while running (`set_options` on the control channel).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTERS_DIR

DEFAULTS: dict[str, Any] = {
    "camera": {"source": "webcam:0", "width": 1280, "height": 720, "fps": 30, "mjpeg": True},
    "characters": {"folder": str(SAMPLE_CHARACTERS_DIR), "current": None, "size": 512},
    "cache_dir": None,
    "renderer": {"name": "meshwarp"},
    "motion": {"expression_strength": 1.0, "head_strength": 1.0, "mirror": False, "idle": True},
    "smoothing": 1.0,
    "outputs": [{"type": "obs"}],
    "control": {"port": 0},
    "voice": {"mic": None, "lipsync": "assist", "gain_db": 0.0, "gate_db": -50.0, "attack_ms": 20.0,
              "release_ms": 70.0, "vad": 2, "calibration": None},
}

# dotted key -> (kind, low, high); kinds: int, number, bool, str, str?, list
SCHEMA: dict[str, tuple] = {
    "camera.source": ("str",),
    "camera.width": ("int", 64, 7680),
    "camera.height": ("int", 64, 4320),
    "camera.fps": ("number", 1, 240),
    "camera.mjpeg": ("bool",),
    "characters.folder": ("str",),
    "characters.current": ("str?",),
    "characters.size": ("int", 128, 2048),
    "cache_dir": ("str?",),
    "renderer.name": ("choice", ("meshwarp", "liveportrait")),
    "motion.expression_strength": ("number", 0.0, 2.0),
    "motion.head_strength": ("number", 0.0, 2.0),
    "motion.mirror": ("bool",),
    "motion.idle": ("bool",),
    "smoothing": ("number", 0.0, 3.0),
    "outputs": ("list",),
    "control.port": ("int", 0, 65535),
    "voice.mic": ("str?",),
    "voice.lipsync": ("choice", ("off", "assist", "always")),
    "voice.gain_db": ("number", -30, 40),
    "voice.gate_db": ("number", -100, 0),
    "voice.attack_ms": ("number", 0, 500),
    "voice.release_ms": ("number", 0, 2000),
    "voice.vad": ("int", -1, 3),
    "voice.calibration": ("map?",),  # checked in full by worker.audio.calibration
}

LIVE_KEYS = {
    "motion.expression_strength", "motion.head_strength", "motion.mirror", "motion.idle", "smoothing",
}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, overlaid by the YAML file at `path` and then by dotted-key `overrides`; validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{p}: config file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{p}: cannot read config ({e})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"{p}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"{p}: the config must be a mapping of keys, not {type(data).__name__}")
        _merge(cfg, data, "", str(p))
    for key, value in (overrides or {}).items():
        set_key(cfg, key, value)
    validate(cfg)
    return cfg


def _merge(into: dict, data: dict, prefix: str, source: str) -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        if not isinstance(k, str) or (key not in SCHEMA and not isinstance(into.get(k), dict)):
            allowed = sorted({s.split(".")[0] if not prefix else s for s in SCHEMA if s.startswith(prefix)})
            raise UserError(f"{source}: unknown key '{key}' (allowed: {', '.join(allowed)})")
        if isinstance(into.get(k), dict) and key not in SCHEMA:
            if not isinstance(v, dict):
                raise UserError(f"{source}: '{key}' must be a mapping")
            _merge(into[k], v, key + ".", source)
        else:
            into[k] = v


def get_key(cfg: dict, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def set_key(cfg: dict, key: str, value: Any) -> None:
    if key not in SCHEMA:
        raise UserError(f"unknown setting '{key}' (allowed: {', '.join(sorted(SCHEMA))})")
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    _check(key, value)


def validate(cfg: dict) -> None:
    for key in SCHEMA:
        _check(key, get_key(cfg, key))
    for i, out in enumerate(cfg["outputs"]):
        if not isinstance(out, dict) or not isinstance(out.get("type"), str):
            raise UserError(
                f"outputs[{i}]: must be a mapping with a 'type' (obs, nut, spout, virtualcam, window, file)"
            )


def _check(key: str, value: Any) -> None:
    kind = SCHEMA[key]
    t = kind[0]
    ok = True
    if t == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and kind[1] <= value <= kind[2]
        want = f"an integer in {kind[1]}..{kind[2]}"
    elif t == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and kind[1] <= value <= kind[2]
        want = f"a number in {kind[1]}..{kind[2]}"
    elif t == "bool":
        ok = isinstance(value, bool)
        want = "true or false"
    elif t == "str":
        ok = isinstance(value, str) and value != ""
        want = "a non-empty string"
    elif t == "str?":
        ok = value is None or (isinstance(value, str) and value != "")
        want = "a string or null"
    elif t == "choice":
        ok = value in kind[1]
        want = "one of " + ", ".join(kind[1])
    elif t == "map?":
        ok = value is None or isinstance(value, dict)
        want = "a mapping or null"
    elif t == "list":
        ok = isinstance(value, list)
        want = "a list"
    if not ok:
        raise UserError(f"config key '{key}': expected {want}, got {value!r}")
