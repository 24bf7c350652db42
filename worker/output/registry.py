"""The registry of outputs: each output's name, options (types, ranges, defaults), its `--output`
short form, and whether it can run on this machine (with the reason when not).

Read by everyone: the outputs' own `from_config` (their options are checked here and nowhere
else), `stream-animator run --output TYPE[:VALUE]`, the config validation and
`stream-animator describe --json` (which the OBS script reads). Backends import lazily, so a
missing optional dependency only affects the output that needs it, and listing the registry
stays cheap.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

from worker.errors import UserError
from worker.options import Backend, Option, by_name, check_options

COLOUR = '"#rrggbb" or [r, g, b]'


def display_available() -> bool:
    """A window can open: on Linux only with DISPLAY or WAYLAND_DISPLAY set."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _module(name: str, pip: str) -> str | None:
    return None if importlib.util.find_spec(name) is not None else f"needs {name} (pip install {pip})"


def _always() -> str | None:
    return None


def _pyav() -> str | None:
    return _module("av", "av")


def _aiohttp() -> str | None:
    return _module("aiohttp", "aiohttp")


def _spout() -> str | None:
    if not sys.platform.startswith("win"):
        return "needs Windows and SpoutGL"
    return _module("SpoutGL", "SpoutGL")


def _virtualcam() -> str | None:
    missing = _module("pyvirtualcam", "pyvirtualcam")
    if missing is None and sys.platform.startswith("linux") and not glob.glob("/sys/devices/virtual/video4linux/*"):
        return "needs a v4l2loopback device (sudo modprobe v4l2loopback devices=1 exclusive_caps=1)"
    return missing


def _ndi() -> str | None:
    # the package only: whether its libndi loads is known when the sender starts (one line then)
    return _module("cyndilib", "cyndilib")


def _window() -> str | None:
    return None if display_available() else "needs a display (DISPLAY/WAYLAND_DISPLAY is not set)"


@dataclass(frozen=True)
class OutputEntry(Backend):
    short_key: str | None = None  # the option that `--output NAME:VALUE` sets
    short_required: bool = False  # `--output NAME` alone is not enough

    @property
    def short_form(self) -> str:
        if self.short_key is None:
            return self.name
        arg = self.short_key.upper()
        return f"{self.name}:{arg}" if self.short_required else f"{self.name}[:{arg}]"

    def explain(self, reason: str) -> str:
        return f"{self.name} output {reason}"

    def check(self, config: dict) -> dict[str, Any]:
        """The output's options from its config, defaults filled in, every value checked."""
        return check_options(config, self.options, f"outputs.{self.name}")

    def parse_short(self, spec: str) -> dict[str, Any]:
        """`--output` text (`nut:9999`, `spout:Name`, `window`) -> a config this output accepts."""
        _, sep, arg = spec.partition(":")
        cfg: dict[str, Any] = {"type": self.name}
        if not sep:
            if self.short_required:
                raise UserError(f"--output {spec}: give the {self.short_key} as {self.short_form}")
            return cfg
        if self.short_key is None or not arg:
            raise UserError(f"--output {spec}: the form is {self.short_form}")
        opt = next(o for o in self.options if o.name == self.short_key)
        value: Any = arg
        if opt.kind in ("int", "number"):
            try:
                value = int(arg) if opt.kind == "int" else float(arg)
            except ValueError:
                raise UserError(f"--output {spec}: {self.short_key} must be {opt.allowed()}") from None
        cfg[self.short_key] = value
        try:
            self.check(cfg)
        except UserError as e:
            raise UserError(f"--output {spec}: {e}") from None
        return cfg

    def create(self, config: dict) -> Any:
        return self.load().from_config(config)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "short_form": self.short_form}


def _fps(default: float = 30) -> Option:
    return Option("fps", "number", default, 1, 240, help="frames per second")


OUTPUTS: dict[str, OutputEntry] = by_name(
    OutputEntry(
        "obs",
        "worker.output.obs:ObsOutput",
        "frames straight into the OBS script's source",
        (
            Option("port", "int", 0, 0, 65535, help="frame channel port (0 = any free port)"),
            Option("token", "str", None, optional=True, help="secret (default: the worker's control token)"),
            Option("host", "str", "127.0.0.1", help="loopback address to listen on"),
            Option("max_clients", "int", 8, 1, 64),
        ),
        _always,
        "port",
        False,
    ),
    OutputEntry(
        "nut",
        "worker.output.nut:NutOutput",
        "OBS Media Source reading NUT over local TCP (no script)",
        (
            Option("port", "int", None, 1, 65535, required="the port OBS's Media Source listens on"),
            Option("host", "str", "127.0.0.1", help="loopback address OBS listens on"),
            _fps(),
            Option("write_timeout", "number", 2.0, 0.1, 60),
            Option("max_backoff", "number", 5.0, 0.1, 60, help="seconds between reconnection attempts, at most"),
        ),
        _pyav,
        "port",
        True,
    ),
    OutputEntry(
        "spout",
        "worker.output.spout:SpoutOutput",
        "Spout2 sender (Windows, with the Spout2 plugin)",
        (Option("sender_name", "str", "Stream Animator"),),
        _spout,
        "sender_name",
        False,
    ),
    OutputEntry(
        "virtualcam",
        "worker.output.virtualcam:VirtualCamOutput",
        "virtual camera for Discord / Zoom (OBS Virtual Camera, v4l2loopback)",
        (
            Option("width", "int", None, 16, 7680, optional=True, help="default: the frame's"),
            Option("height", "int", None, 16, 4320, optional=True),
            _fps(),
            Option("device", "str", None, optional=True, help="e.g. /dev/video10"),
            Option("backend", "str", None, optional=True, help="pyvirtualcam backend (default: the platform's)"),
            Option("background", "colour", "#000000", help=f"{COLOUR} behind the transparent parts"),
        ),
        _virtualcam,
        "device",
        False,
    ),
    OutputEntry(
        "ndi",
        "worker.output.ndi:NdiOutput",
        "NDI sender with alpha, for a second PC running OBS with DistroAV",
        (
            Option("name", "str", "Stream Animator", help="sender name (OBS shows HOST (NAME))"),
            Option("fps", "int", 30, 1, 240, help="frames per second announced to receivers"),
        ),
        _ndi,
        "name",
        False,
    ),
    OutputEntry(
        "window",
        "worker.output.window:WindowOutput",
        "preview window",
        (
            Option("title", "str", "Stream Animator"),
            Option("background", "colour", "checker", choices=("checker",), help=f'"checker" or {COLOUR}'),
        ),
        _window,
        "title",
        False,
    ),
    OutputEntry(
        "file",
        "worker.output.file:FileOutput",
        "video file (.mp4; .mov/.webm keep alpha) or PNG folder",
        (
            Option("path", "str", None, required="a .mp4, .mov, .webm file or a folder"),
            _fps(),
            Option("background", "colour", "#000000", help=f"{COLOUR} behind the transparent parts (.mp4)"),
            Option("timing", "choice", "capture", choices=("capture", "fps")),
            Option("realtime", "bool", True, help="false: never drop frames (offline rendering)"),
            Option("clear", "bool", False, help="empty a PNG folder that holds frames already (else refused)"),
        ),
        _pyav,
        "path",
        True,
    ),
    OutputEntry(
        "ws",
        "worker.web.ws_output:WsOutput",
        "WebSocket frames + control, and the OBS Browser Source page (no Python in OBS)",
        (
            Option("port", "int", None, 0, 65535, optional=True, help="default: the port kept in the user's settings"),
            Option("token", "str", None, optional=True, help="default: the token kept in the user's settings"),
            Option("host", "str", "127.0.0.1", help="address to listen on (another than loopback: a warning)"),
            Option("max_clients", "int", 128, 1, 1024),
            Option("webp_quality", "int", 90, 1, 101, help="WebP frames for other machines (101 = lossless)"),
            Option("obs_scenes", "map", {}, help="OBS scene name -> character: followed over obs-websocket"),
            Option("obs_websocket_port", "int", None, 1, 65535, optional=True, help="default: OBS's own setting"),
            Option("obs_websocket_password", "str", None, optional=True, help="default: OBS's own setting"),
        ),
        _aiohttp,
        "port",
        False,
    ),
)


def output_entry(kind: Any) -> OutputEntry:
    entry = OUTPUTS.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise UserError(f"outputs[].type must be one of {', '.join(OUTPUTS)}, got {kind!r}")
    return entry


def create_output(config: dict) -> Any:
    """One output from its config; unknown types and keys are UserErrors naming them."""
    if not isinstance(config, dict):
        raise UserError(f"outputs: each entry must be a mapping with a 'type', got {config!r}")
    return output_entry(config.get("type")).create(config)


def create_outputs(configs: list[dict]) -> list[Any]:
    if not isinstance(configs, list):
        raise UserError(f"outputs must be a list of mappings, got {type(configs).__name__}")
    return [create_output(c) for c in configs]


def parse_output_spec(spec: str) -> dict[str, Any]:
    """`--output TYPE[:VALUE]` -> the output's config, parsed by that output's entry."""
    return output_entry(spec.partition(":")[0]).parse_short(spec)


def describe_outputs() -> list[dict[str, Any]]:
    return [e.describe() for e in OUTPUTS.values()]
