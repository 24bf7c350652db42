"""Create outputs from config dicts (``{"type": "obs", ...}``); backends import lazily so a
missing optional dependency only affects the output that needs it."""

from __future__ import annotations

import importlib

from worker.errors import UserError
from worker.output.base import Output

BACKENDS: dict[str, tuple[str, str]] = {
    "obs": ("worker.output.obs", "ObsOutput"),
    "nut": ("worker.output.nut", "NutOutput"),
    "spout": ("worker.output.spout", "SpoutOutput"),
    "virtualcam": ("worker.output.virtualcam", "VirtualCamOutput"),
    "window": ("worker.output.window", "WindowOutput"),
    "file": ("worker.output.file", "FileOutput"),
    "ndi": ("worker.output.ndi", "NdiOutput"),
}


def create_output(config: dict) -> Output:
    """One output from its config; unknown types and keys are UserErrors naming them."""
    if not isinstance(config, dict):
        raise UserError(f"outputs: each entry must be a mapping with a 'type', got {config!r}")
    kind = config.get("type")
    if kind not in BACKENDS:
        raise UserError(f"outputs[].type must be one of {', '.join(BACKENDS)}, got {kind!r}")
    module, cls = BACKENDS[kind]
    return getattr(importlib.import_module(module), cls).from_config(config)


def create_outputs(configs: list[dict]) -> list[Output]:
    if not isinstance(configs, list):
        raise UserError(f"outputs must be a list of mappings, got {type(configs).__name__}")
    return [create_output(c) for c in configs]
