"""The worker's one YAML config: defaults that work with no file, validated with errors naming the key.

Example (every key optional):

    camera: {source: "webcam:0", width: 1280, height: 720, fps: 30, mjpeg: true}
    characters: {folder: ~/characters, current: null, size: 512}
    cache_dir: null                      # default: the user's cache folder (`stream-animator cache`)
    renderer: {name: auto}               # auto: liveportrait with verified weights + a GPU, else meshwarp
    motion: {expression_strength: 1.0, head_strength: 1.0, mirror: false, idle: true}
    smoothing: 1.0                       # 0 = raw tracking, 1 = tuned default, 2 = extra steady
    outputs: [{type: obs}, {type: nut, port: 9999}]
    control: {port: 0}                   # 0 = a free port, announced on stdout
    voice: {mic: null, lipsync: assist, gain_db: 0, gate_db: -50, attack_ms: 20, release_ms: 70, vad: 2,
            calibration: null}           # calibration: written by `stream-animator calibrate-voice`

Relative paths in the file (characters.folder, camera.source, cache_dir, a file output's path,
a voice.mic file) are relative to the file itself.

Every setting is declared once, as an `Option` in `SECTIONS` (type, range, default, help):
ranges that belong to another part are read from it (the working size from the renderer
registry, the motion strengths from `RetargetOptions`), and each output's options are checked
by its own entry in the output registry. `stream-animator describe --json` prints them all.
Settings in `LIVE_KEYS` can change while running (`set_options` on the control channel).

`load_settings` gives the same config typed, once at load: a frozen `Settings` of one section
per stage (`CameraSection`, `MotionSection`, ...), so each stage is handed its own section and
never the whole mapping. The sections' fields are the `SECTIONS` names (a test keeps them equal).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from worker.errors import UserError, os_reason
from worker.options import Option
from worker.output.registry import OUTPUTS, output_entry
from worker.paths import SAMPLE_CHARACTERS_DIR
from worker.performance import DEFAULT_PERFORMANCE, PERFORMANCE_LEVELS
from worker.render.registry import DEFAULT as DEFAULT_RENDERER
from worker.render.registry import LP_OPTIONS, RENDERERS, SIZE, renderer_options
from worker.retarget.retargeter import RetargetOptions

if TYPE_CHECKING:
    from worker.audio.analysis import VoiceSettings
    from worker.audio.calibration import VoiceProfile


def _size() -> Option:
    # the renderers' working size: one range, declared by the renderer registry
    return Option("size", "int", SIZE.default, SIZE.lo, SIZE.hi, help=SIZE.help)


def _strength(name: str, help: str) -> Option:
    lo, hi = RetargetOptions.RANGES[name]
    return Option(name, "number", 1.0, lo, hi, help=help)


# Each section's settings with their types, ranges and defaults (`describe --json` prints them).
# Top-level keys sit in the "" section.
SECTIONS: dict[str, tuple[Option, ...]] = {
    "camera": (
        Option(
            "source",
            "str",
            "webcam:0",
            help="webcam:<index>, webcam:<part of its name>, a video file, or none (no camera: needs voice.mic)",
        ),
        Option("width", "int", 1280, 64, 7680),
        Option("height", "int", 720, 64, 4320),
        Option("fps", "number", 30, 1, 240),
        Option("mjpeg", "bool", True, help="ask the camera for MJPEG (higher fps over USB 2)"),
    ),
    "characters": (
        Option("folder", "str", str(SAMPLE_CHARACTERS_DIR)),
        Option("current", "str", None, optional=True, help="file name to start with (default: the first)"),
        _size(),
    ),
    "": (
        Option(
            "cache_dir",
            "str",
            None,
            optional=True,
            help="default: the user's cache folder ($STREAM_ANIMATOR_CACHE overrides it)",
        ),
        Option("smoothing", "number", 1.0, 0.0, 3.0, help="0 = raw tracking, 1 = tuned default, 2 = extra steady"),
        Option("outputs", "list", [{"type": "obs"}], help="see `describe`'s outputs"),
        Option(
            "performance",
            "choice",
            DEFAULT_PERFORMANCE,
            choices=PERFORMANCE_LEVELS,
            help="CPU use beside a game: low = face tracking every 2nd frame, one OpenCV thread; balanced = "
            "every frame, one OpenCV thread; quality = every frame, OpenCV on all cores",
        ),
    ),
    # name, and liveportrait's options (used by liveportrait and by auto when it picks liveportrait)
    "renderer": (Option("name", "choice", DEFAULT_RENDERER, choices=tuple(RENDERERS)), *LP_OPTIONS),
    "motion": (
        _strength("expression_strength", "0 = face frozen, 1 = as you, 2 = exaggerated"),
        _strength("head_strength", "0 = head still, 1 = as you"),
        Option("mirror", "bool", False),
        Option("idle", "bool", True, help="blink, breathe and sway while your face is away"),
    ),
    "control": (Option("port", "int", 0, 0, 65535, help="0 = any free port"),),
    "voice": (
        Option("mic", "str", None, optional=True, help="default, a device index or name, or an audio/video file"),
        Option(
            "lipsync",
            "choice",
            "assist",
            choices=("off", "assist", "always"),
            help="assist: the voice moves the mouth while the face is lost; always: the voice drives the mouth",
        ),
        Option("gain_db", "number", 0.0, -30, 40),
        Option("gate_db", "number", -50.0, -100, 0, help="noise gate: quieter than this keeps the mouth shut"),
        Option("attack_ms", "number", 20.0, 0, 500),
        Option("release_ms", "number", 70.0, 0, 2000),
        Option("vad", "int", 2, -1, 3, help="WebRTC VAD aggressiveness (-1 = off)"),
        # checked in full by worker.audio.calibration
        Option("calibration", "map", None, optional=True, help="written by `stream-animator calibrate-voice`"),
    ),
}

# dotted key -> its Option
SCHEMA: dict[str, Option] = {(f"{sec}.{o.name}" if sec else o.name): o for sec, opts in SECTIONS.items() for o in opts}


def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sec, opts in SECTIONS.items():
        node = out.setdefault(sec, {}) if sec else out
        for o in opts:
            node[o.name] = copy.deepcopy(o.default)
    return out


DEFAULTS: dict[str, Any] = _defaults()

LIVE_KEYS = {
    "motion.expression_strength",
    "motion.head_strength",
    "motion.mirror",
    "motion.idle",
    "smoothing",
    "voice.lipsync",
}


# ---------------------------------------------------------------- the typed sections
# Built from a validated config by `Settings.from_dict`; each field is the Option of the same name.


@dataclass(frozen=True)
class CameraSection:
    source: str
    width: int
    height: int
    fps: float
    mjpeg: bool


@dataclass(frozen=True)
class CharactersSection:
    folder: str
    current: str | None
    size: int


@dataclass(frozen=True)
class RendererSection:
    name: str
    models: str | None  # liveportrait's options (LP_OPTIONS)
    precision: str
    device: str
    unverified: bool

    def options(self) -> dict[str, Any]:
        """The options its chosen renderer takes (the others belong to another renderer)."""
        return renderer_options(dataclasses.asdict(self))


@dataclass(frozen=True)
class MotionSection:
    expression_strength: float
    head_strength: float
    mirror: bool
    idle: bool

    def retarget_options(self, lipsync: str) -> RetargetOptions:
        return RetargetOptions(
            expression_strength=self.expression_strength,
            head_strength=self.head_strength,
            mirror=self.mirror,
            idle=self.idle,
            lipsync=lipsync,
        )


@dataclass(frozen=True)
class ControlSection:
    port: int


@dataclass(frozen=True)
class VoiceSection:
    mic: str | None
    lipsync: str
    gain_db: float
    gate_db: float
    attack_ms: float
    release_ms: float
    vad: int
    calibration: dict[str, Any] | None

    def analysis(self, where: str = "voice") -> tuple[VoiceSettings, VoiceProfile]:
        """The analyser's settings and the voice profile (the calibration, else the default)."""
        from worker.audio.analysis import VoiceSettings
        from worker.audio.calibration import VoiceProfile, default_profile

        settings = VoiceSettings(
            gain_db=self.gain_db,
            gate_db=self.gate_db,
            attack_ms=self.attack_ms,
            release_ms=self.release_ms,
            vad=self.vad,
        )
        settings.validate(where)
        cal = self.calibration
        profile = VoiceProfile.from_config(cal, f"{where}.calibration") if cal is not None else default_profile()
        return settings, profile


@dataclass(frozen=True)
class Settings:
    """The whole config, typed: one section per stage plus the top-level ("" section) keys."""

    camera: CameraSection
    characters: CharactersSection
    renderer: RendererSection
    motion: MotionSection
    control: ControlSection
    voice: VoiceSection
    cache_dir: str | None
    smoothing: float
    outputs: tuple[dict[str, Any], ...]  # each output's own options, checked by its registry entry
    performance: str

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> Settings:
        """`cfg`: a validated config (`load_config`)."""
        top = {o.name: _typed(o, cfg[o.name]) for o in SECTIONS[""]}
        top["outputs"] = tuple(dict(out) for out in cfg["outputs"])
        return cls(
            camera=_section(CameraSection, cfg, "camera"),
            characters=_section(CharactersSection, cfg, "characters"),
            renderer=_section(RendererSection, cfg, "renderer"),
            motion=_section(MotionSection, cfg, "motion"),
            control=_section(ControlSection, cfg, "control"),
            voice=_section(VoiceSection, cfg, "voice"),
            **top,
        )


_S = TypeVar("_S")


def _typed(o: Option, value: Any) -> Any:
    if value is None:
        return None
    if o.kind == "number":
        return float(value)
    if o.kind == "int":
        return int(value)
    return copy.deepcopy(value)


def _section(cls: type[_S], cfg: dict[str, Any], name: str) -> _S:
    return cls(**{o.name: _typed(o, cfg[name][o.name]) for o in SECTIONS[name]})


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """`load_config`, typed: what the live worker and its stages are given."""
    return Settings.from_dict(load_config(path, overrides))


def check_key(key: str, value: Any) -> None:
    """A one-line `UserError` naming `key` when `value` is not allowed for it."""
    if key not in SCHEMA:
        raise UserError(f"unknown setting '{key}' (allowed: {', '.join(sorted(SCHEMA))})")
    _check(key, value)


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
            raise UserError(f"{p}: cannot read config ({os_reason(e)})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"{p}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"{p}: the config must be a mapping of keys, not {type(data).__name__}")
        _relative_to(data, p.resolve().parent)
        _merge(cfg, data, "", str(p))
    for key, value in (overrides or {}).items():
        set_key(cfg, key, value)
    validate(cfg)
    return cfg


def _relative_to(data: dict, base: Path) -> None:
    """Paths in a config file are relative to that file (not to where the command runs)."""

    def fix(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip() or value.lower().startswith("webcam"):
            return value
        p = Path(value).expanduser()
        return value if p.is_absolute() else str(base / p)

    for section, key in (("characters", "folder"), ("camera", "source")):
        if isinstance(data.get(section), dict) and key in data[section]:
            data[section][key] = fix(data[section][key])
    if "cache_dir" in data:
        data["cache_dir"] = fix(data["cache_dir"])
    mic = data.get("voice", {}).get("mic") if isinstance(data.get("voice"), dict) else None
    if isinstance(mic, str) and (base / mic).is_file():  # a file to play; names and indexes stay
        data["voice"]["mic"] = str(base / mic)
    for out in data.get("outputs") or []:
        if isinstance(out, dict) and out.get("type") == "file" and "path" in out:
            out["path"] = fix(out["path"])


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
            raise UserError(f"outputs[{i}]: must be a mapping with a 'type' ({', '.join(OUTPUTS)})")
        output_entry(out["type"]).check(out)  # each output checks its own options


def _check(key: str, value: Any) -> None:
    SCHEMA[key].check(value, f"config key '{key}'")


# ---------------------------------------------------------------- the voice section's file side


def voice_from_config(path: str | Path | None) -> tuple[VoiceSettings, VoiceProfile]:
    """The voice settings and profile of the config file at `path` (None: the defaults)."""
    return load_settings(path).voice.analysis(f"{path}: voice")


def check_calibration_target(path: str | Path) -> None:
    """Fail now (not after the recordings) when the calibration cannot be stored in `path`."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a folder; --config names a YAML file")
    if p.exists():
        load_config(p)
        if _read_only(p):
            raise UserError(f"{p}: the config is read-only; make it writable or give another file with --config")
    elif not os.access(_existing_parent(p), os.W_OK):
        raise UserError(f"{p}: cannot create the config there (the folder is not writable)")


def _read_only(p: Path) -> bool:
    """Not writable, or marked read-only by its mode (which root's access check ignores)."""
    return not os.access(p, os.W_OK) or not p.stat().st_mode & 0o222


def _existing_parent(p: Path) -> Path:
    q = p.absolute().parent
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def store_voice_calibration(path: str | Path, profile: VoiceProfile) -> None:
    """Put `profile` under voice.calibration in the YAML file at `path` (created if missing), atomically.

    Only that value changes: the file is edited as text where the YAML parser says the value is,
    so comments, layout, line endings and the file's mode stay as the user made them. The edit is
    checked (the file must read back as before with the new calibration) before it replaces the file.
    """
    p = Path(path)
    cal = profile.to_config()
    if p.exists():
        load_config(p)  # refuse to touch a file that is not a valid config
        if _read_only(p):
            raise UserError(f"{p}: the config is read-only; make it writable or give another file with --config")
        raw = p.read_bytes()
        text = raw.decode("utf-8")
        mode = p.stat().st_mode & 0o7777
        new = calibration_edit(text, cal, str(p))
        want = yaml.safe_load(text) or {}
        want.setdefault("voice", {})
        if not isinstance(want["voice"], dict):
            want["voice"] = {}
        want["voice"]["calibration"] = cal
        if _loaded(new) != _loaded(yaml.safe_dump(want)):
            raise UserError(f"{p}: cannot place voice.calibration in this file's layout; it was left as it was")
    else:
        new, mode = "voice:\n  calibration: " + _flow(cal, 4, "\n") + "\n", None
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(new.encode("utf-8"))
        if mode is not None:
            os.chmod(tmp, mode)
        load_config(tmp)  # what is written must load
        os.replace(tmp, p)
    except OSError as e:
        raise UserError(f"{p}: cannot write config ({e.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _loaded(text: str) -> object:
    """A YAML text's data with floats rounded as `to_config` rounds them (for comparing two texts)."""
    return json.loads(json.dumps(yaml.safe_load(text) or {}, default=str))


def _flow(value: dict, indent: int, nl: str) -> str:
    """`value` as a flow mapping (`{a: 1, b: [..]}`), its continuation lines indented by `indent`."""
    lines = yaml.safe_dump(value, default_flow_style=True, width=100, sort_keys=False).rstrip("\n").split("\n")
    return (nl + " " * indent).join(line.strip() for line in lines)


def _content_end(node: yaml.Node, text: str, after_key: int) -> int:
    """Index just past the last character of a value node's own text (never its trailing lines)."""
    if isinstance(node, yaml.ScalarNode):
        if node.value == "" and node.style is None:  # an empty value: ends at its key's colon
            return text.index(":", after_key) + 1
        return node.end_mark.index
    if getattr(node, "flow_style", False):
        return node.end_mark.index
    items = node.value if isinstance(node, yaml.SequenceNode) else [v for _, v in node.value]
    return max((_content_end(v, text, node.start_mark.index) for v in items), default=node.start_mark.index)


def _line_end(text: str, i: int) -> int:
    """Index of the line break ending the line that holds index `i` (past any comment on it)."""
    j = text.find("\n", i)
    if j < 0:
        return len(text)
    return j - 1 if j > 0 and text[j - 1] == "\r" else j


def calibration_edit(text: str, cal: dict, where: str) -> str:
    """`text` (a YAML config) with voice.calibration set to `cal`, every other byte unchanged."""
    nl = "\r\n" if "\r\n" in text else "\n"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: invalid YAML: {e}") from None
    if root is None:
        lead = text if not text or text.endswith(("\n", "\r")) else text + nl
        return f"{lead}voice:{nl}  calibration: {_flow(cal, 4, nl)}{nl}"
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise UserError(f"{where}: the config must be a block mapping of keys to add voice.calibration to it")
    voice = next(((k, v) for k, v in root.value if k.value == "voice"), None)
    if voice is None:
        end = _line_end(text, _content_end(root, text, 0))
        col = root.value[0][0].start_mark.column if root.value else 0
        block = f"{nl}{' ' * col}voice:{nl}{' ' * (col + 2)}calibration: {_flow(cal, col + 4, nl)}"
        return text[:end] + block + text[end:]
    vkey, vnode = voice
    if isinstance(vnode, yaml.ScalarNode):  # `voice:` or `voice: null`
        end = _content_end(vnode, text, vkey.end_mark.index)
        col = vkey.start_mark.column + 2
        return text[: vkey.end_mark.index] + f":{nl}{' ' * col}calibration: {_flow(cal, col + 2, nl)}" + text[end:]
    if not isinstance(vnode, yaml.MappingNode):
        raise UserError(f"{where}: 'voice' must be a mapping")
    cal_item = next(((k, v) for k, v in vnode.value if k.value == "calibration"), None)
    if vnode.flow_style:
        one_line = json.dumps(cal)
        if cal_item is not None:
            ck, cv = cal_item
            return text[: cv.start_mark.index] + one_line + text[_content_end(cv, text, ck.end_mark.index) :]
        close = vnode.end_mark.index - 1
        sep = ", " if vnode.value else ""
        return text[:close] + f"{sep}calibration: {one_line}" + text[close:]
    if cal_item is not None:
        ck, cv = cal_item
        end = _content_end(cv, text, ck.end_mark.index)
        return text[: ck.end_mark.index] + f": {_flow(cal, ck.start_mark.column + 2, nl)}" + text[end:]
    end = _line_end(text, _content_end(vnode, text, vkey.end_mark.index))
    col = vnode.value[0][0].start_mark.column
    return text[:end] + f"{nl}{' ' * col}calibration: {_flow(cal, col + 2, nl)}" + text[end:]
