"""Settings declared once: where two files must agree but cannot share code, they are compared here.

The installer runs on the standard library before any package exists, and the OBS script runs in
OBS's own Python with the standard library only, so each keeps its own copy of a few values; these
tests fail the moment a copy drifts from the declaration the worker uses.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from worker.cli import build_parser
from worker.config import load_config
from worker.options import SIZE
from worker.render.liveportrait import providers
from worker.render.registry import DEFAULT as DEFAULT_RENDERER
from worker.track.blend import SCALAR_FIELDS
from worker.track.features import FEATURE_NAMES

REPO = Path(__file__).resolve().parents[1]


def _installer_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_installer_{name}", REPO / "installer" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def test_installer_device_table_matches_the_renderers_provider_table():
    gpu = _installer_module("gpu_detect")
    assert gpu.GPU_CHOICES == providers.DEVICES
    assert {device: row[2] for device, row in gpu.RUNTIMES.items()} == providers.PROVIDER
    for device in providers.GPU_DEVICES:  # the wheel the installer installs is the one the renderer names
        assert gpu.RUNTIMES[device][1] == providers._WHEEL[device], device


def test_obs_script_defaults_are_the_workers():
    sys.path.insert(0, str(REPO / "obs_script"))
    try:
        from stream_animator_lib.settings import ScriptSettings
    finally:
        sys.path.remove(str(REPO / "obs_script"))
    d = ScriptSettings.defaults()
    cfg = load_config(None)
    assert d["renderer"] == DEFAULT_RENDERER == cfg["renderer"]["name"]
    assert d["size"] == SIZE.default == cfg["characters"]["size"]
    assert d["expression_strength"] == cfg["motion"]["expression_strength"]
    assert d["head_strength"] == cfg["motion"]["head_strength"]
    assert d["mirror"] == cfg["motion"]["mirror"]
    assert d["smoothing"] == cfg["smoothing"]
    assert d["performance"] == cfg["performance"]
    assert d["lipsync"] == cfg["voice"]["lipsync"]
    # script_defaults hands every one of them to OBS with the setter of its type
    assert {type(v) for v in d.values()} <= {bool, int, float, str}, d


def test_face_blending_covers_every_scalar_feature():
    scalars = [n for n in FEATURE_NAMES if not n.startswith("gaze_")]  # gaze is one (x, y) field, mixed apart
    assert set(scalars) <= set(SCALAR_FIELDS), set(scalars) - set(SCALAR_FIELDS)


def _command_options(dest: str) -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = {}
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if action.dest == dest:
                found[name] = action
    return found


def test_commands_share_one_size_and_one_renderer_default():
    sizes = _command_options("size")
    assert {"demo", "preprocess", "render"} <= set(sizes)
    assert {n: a.default for n, a in sizes.items()} == dict.fromkeys(sizes, SIZE.default)
    renderers = _command_options("renderer")
    # run's --renderer overrides the config (whose default is the same); bench's picks a comparison
    defaults = {n: a.default for n, a in renderers.items() if n not in ("run", "bench")}
    assert defaults == dict.fromkeys(defaults, DEFAULT_RENDERER) and len(defaults) >= 3, defaults
    assert renderers["run"].default is None and load_config(None)["renderer"]["name"] == DEFAULT_RENDERER
