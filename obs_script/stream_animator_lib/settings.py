"""The script's settings: defaults, validation, and what they mean for the worker.

Some settings can change while the worker runs (`LIVE_OPTIONS`, sent with `set_options`);
the others are part of the worker's start-up config and need a restart. Which renderers and
outputs exist and the settings' ranges are the worker's facts: `problems` checks against its
`Offer` (from `describe --json`) once known, and the worker checks its config again anyway.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields

from .offer import MODE_OUTPUTS, Offer

# direct: frames pushed by the script into an async source; nut: OBS Media Source listening on
# loopback TCP (no code in the frame path); spout: the Spout2 plugin's capture source (Windows).
OUTPUT_MODES = tuple(MODE_OUTPUTS)
SIZES = (256, 384, 512, 768, 1024)  # offered in the menu (within the worker's range)
CAMERA_FILE = "file"  # the camera choice that reads `video_file` instead of a webcam
CAMERA_NONE = "none"  # no camera at all: the voice moves the mouth, the head idles
MIC_OFF = ""  # the microphone choice "no voice"
MIC_FILE = "file"  # the microphone choice that reads `mic_file` (an audio or video file, looped)
LIPSYNC_MODES = ("assist", "always", "off")  # the worker's voice.lipsync choices
# script setting -> the worker's config key (dotted) for the settings it takes live
LIVE_OPTIONS = {
    "expression_strength": "motion.expression_strength",
    "head_strength": "motion.head_strength",
    "mirror": "motion.mirror",
    "smoothing": "smoothing",
    "lipsync": "voice.lipsync",
}
RESTART_FIELDS = (
    "worker_python",
    "characters_dir",
    "renderer",
    "camera",
    "video_file",
    "size",
    "output_mode",
    "spout_name",
    "mic",
    "mic_file",
    "performance",
    "lp_models",
    "lp_precision",
    "lp_device",
    "lp_unverified",
)
# script setting -> the renderer option it sets (liveportrait's, as `describe` lists them); passed
# only to renderers that take it and only when it differs from the default
RENDERER_OPTIONS = {
    "lp_models": "models",
    "lp_precision": "precision",
    "lp_device": "device",
    "lp_unverified": "unverified",
}
RENDERER_OPTION_DEFAULTS = {"lp_models": "", "lp_precision": "auto", "lp_device": "auto", "lp_unverified": False}
DEFAULT_SPOUT_NAME = "Stream Animator"


@dataclass
class ScriptSettings:
    worker_python: str = ""
    characters_dir: str = ""  # empty: the worker's bundled sample characters
    character: str = ""  # empty: the worker's first character
    renderer: str = "auto"  # the worker picks: liveportrait with verified weights and a GPU, else meshwarp
    camera: str = "webcam:0"  # "webcam:N" or CAMERA_FILE
    video_file: str = ""
    size: int = 512
    expression_strength: float = 1.0
    head_strength: float = 1.0
    smoothing: float = 1.0  # 0 = raw tracking, 1 = the worker's tuned default, up to 3 = extra steady
    mirror: bool = False
    output_mode: str = "direct"
    spout_name: str = DEFAULT_SPOUT_NAME
    autostart: bool = True
    mic: str = MIC_OFF  # MIC_OFF, "default", a device index or name, or MIC_FILE
    mic_file: str = ""
    lipsync: str = "assist"  # assist: the voice takes the mouth while the face is lost; always; off
    performance: str = "balanced"  # the worker's CPU use beside a game: low | balanced | quality
    # liveportrait's renderer options (see RENDERER_OPTIONS); unverified files run only when asked
    lp_models: str = ""  # empty: the installed weights
    lp_precision: str = "auto"  # auto | fp16 | fp32 (fp32: for GPUs whose FP16 misbehaves)
    lp_device: str = "auto"  # auto | cuda | dml | coreml | cpu
    lp_unverified: bool = False

    @classmethod
    def defaults(cls) -> dict:
        """Each setting's default by name (what the script hands OBS as its defaults)."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def from_reader(cls, get) -> ScriptSettings:
        """Build from `get(name, default)` (reads obs_data in OBS, a dict in tests)."""
        values = {}
        for f in fields(cls):
            default = f.default
            v = get(f.name, default)
            try:
                if isinstance(default, bool):
                    v = bool(v)
                elif isinstance(default, int):
                    v = int(v)
                elif isinstance(default, float):
                    v = float(v)
                else:
                    v = str(v if v is not None else "")
            except (TypeError, ValueError):
                v = default
            values[f.name] = v
        return cls(**values)

    def problems(self, offer: Offer | None = None) -> list[str]:
        """One line per setting that cannot work, naming the setting; empty when all is well.
        Renderer, output and ranges are checked once the worker's `offer` is known."""
        out = []
        if not self.worker_python:
            out.append("Worker Python: not set (create the venv, see README, or pick its python)")
        elif not os.path.isfile(self.worker_python):
            out.append(f"Worker Python: {self.worker_python} does not exist")
        if self.characters_dir and not os.path.isdir(self.characters_dir):
            out.append(f"Characters folder: {self.characters_dir} is not a folder")
        if self.output_mode not in OUTPUT_MODES:
            out.append(f"Output: {self.output_mode!r} is not one of {', '.join(OUTPUT_MODES)}")
        if self.camera == CAMERA_FILE:
            if not self.video_file:
                out.append("Video file: choose a file (camera is set to 'video file')")
            elif not os.path.isfile(self.video_file):
                out.append(f"Video file: {self.video_file} does not exist")
        elif self.camera == CAMERA_NONE:
            if self.mic_arg() is None:
                out.append("Microphone: choose one (the camera is set to none, so the voice is the only input)")
        elif not _is_webcam(self.camera):
            out.append(f"Camera: {self.camera!r} is neither 'webcam:N' nor a video file")
        if self.mic == MIC_FILE:
            if not self.mic_file:
                out.append("Voice file: choose a file (the microphone is set to 'audio or video file')")
            elif not os.path.isfile(self.mic_file):
                out.append(f"Voice file: {self.mic_file} does not exist")
        if self.lp_models and not os.path.isdir(self.lp_models):
            out.append(f"LivePortrait models folder: {self.lp_models} is not a folder")
        if self.lipsync not in LIPSYNC_MODES:
            out.append(f"Lip sync: {self.lipsync!r} is not one of {', '.join(LIPSYNC_MODES)}")
        if offer is not None:
            values = {
                "characters.size": ("Output size", self.size),
                **{
                    key: (name.replace("_", " ").capitalize(), getattr(self, name))
                    for name, key in LIVE_OPTIONS.items()
                    if name not in ("mirror", "lipsync")
                },
            }
            out += offer.problems(self.renderer, self.output_mode, values, self.renderer_options())
            levels = offer.choices("performance")
            if levels and self.performance not in levels:
                out.append(f"Performance: {self.performance!r} is not one of {', '.join(levels)}")
        return out

    def source_arg(self) -> str:
        """The worker's `--source` argument."""
        return self.video_file if self.camera == CAMERA_FILE else self.camera

    def mic_arg(self) -> str | None:
        """The worker's `--mic` argument, None for no voice."""
        if self.mic == MIC_FILE:
            return self.mic_file or None
        return self.mic.strip() or None

    def renderer_options(self, offer: Offer | None = None) -> dict:
        """The renderer options that differ from their defaults ({option: value}); with `offer`,
        only those the chosen renderer takes (the worker refuses options a renderer does not take)."""
        out = {}
        for name, option in RENDERER_OPTIONS.items():
            value = getattr(self, name)
            if value == RENDERER_OPTION_DEFAULTS[name]:
                continue
            if offer is not None and offer.renderer_option(self.renderer, option) is None:
                continue
            out[option] = value
        return out

    def live_options(self) -> dict:
        """The `set_options` payload: {worker config key: value}."""
        d = asdict(self)
        return {key: d[name] for name, key in LIVE_OPTIONS.items()}

    def needs_restart(self, other: ScriptSettings) -> bool:
        """True when going from `other` to self changes the worker's start-up config."""
        return any(getattr(self, k) != getattr(other, k) for k in RESTART_FIELDS)

    def _renderer_section(self, offer: Offer | None) -> dict:
        if offer is None and self.renderer == "meshwarp":
            return {}
        return self.renderer_options(offer)

    def worker_config(
        self, nut_port: int | None = None, start_character: str | None = None, offer: Offer | None = None
    ) -> dict:
        """The worker's config file (worker/config.py schema), written as JSON, which YAML reads.
        Renderer options go in only for renderers that take them (`offer`: the worker's own list;
        without it, none for meshwarp, which takes none of liveportrait's).

        `start_character` goes in only when the caller knows the folder has it: a stale name
        would make the worker refuse to start.
        """
        if self.output_mode == "nut":
            if not nut_port:
                raise ValueError("nut output needs the port OBS listens on")
            # OBS's Media Source starts listening a moment after the worker starts: retry quickly
            outputs = [{"type": "nut", "port": int(nut_port), "max_backoff": 1.0}]
        elif self.output_mode == "spout":
            outputs = [{"type": "spout", "sender_name": self.spout_name or DEFAULT_SPOUT_NAME}]
        elif self.output_mode == "browser":
            outputs = [{"type": "ws"}]  # the page's address is the worker's kept one
        else:
            outputs = [{"type": "obs"}]
        characters: dict = {"size": self.size}
        if self.characters_dir:
            characters["folder"] = self.characters_dir
        if start_character:
            characters["current"] = start_character
        return {
            "camera": {"source": self.source_arg()},
            "characters": characters,
            "renderer": {"name": self.renderer, **self._renderer_section(offer)},
            "motion": {
                "expression_strength": self.expression_strength,
                "head_strength": self.head_strength,
                "mirror": self.mirror,
            },
            "smoothing": self.smoothing,
            "performance": self.performance,
            "outputs": outputs,
        }


def _is_webcam(value: str) -> bool:
    kind, sep, index = value.partition(":")
    return kind == "webcam" and sep == ":" and index.isdigit()


def venv_python_candidates(repo_dir: str) -> list[str]:
    """Where the worker's venv Python usually is, for this OS first."""
    win = [os.path.join(repo_dir, d, "Scripts", "python.exe") for d in (".venv", "venv")]
    posix = [os.path.join(repo_dir, d, "bin", "python") for d in (".venv", "venv")]
    return win + posix if sys.platform.startswith("win") else posix + win


def find_worker_python(repo_dir: str) -> str:
    """The venv Python of the checkout the script lives in, or "" when there is none."""
    for path in venv_python_candidates(repo_dir):
        if os.path.isfile(path):
            return path
    return ""
