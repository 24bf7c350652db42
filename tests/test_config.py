"""Config: works with no file, and every mistake names its key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest

from worker.cli import COMMANDS
from worker.config import DEFAULTS, SECTIONS, Settings, check_key, load_config, load_settings, set_key
from worker.errors import UserError


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg == DEFAULTS and cfg is not DEFAULTS


def test_file_overrides_and_keeps_the_rest(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("motion:\n  mirror: true\noutputs:\n  - {type: nut, port: 9999}\nsmoothing: 0.5\n")
    cfg = load_config(p)
    assert cfg["motion"]["mirror"] is True and cfg["motion"]["expression_strength"] == 1.0
    assert cfg["outputs"] == [{"type": "nut", "port": 9999}]
    assert cfg["smoothing"] == 0.5
    assert cfg["performance"] == "balanced"  # the default
    p.write_text("performance: low\n")
    assert load_config(p)["performance"] == "low"


@pytest.mark.parametrize(
    "text, message",
    [
        ("camera:\n  fps: fast\n", "config key 'camera.fps': expected a number"),
        ("camra: {}\n", "unknown key 'camra'"),
        ("motion:\n  strength: 2\n", "unknown key 'motion.strength'"),
        ("renderer:\n  name: magic\n", "'renderer.name': expected one of auto, meshwarp, liveportrait"),
        ("performance: turbo\n", "'performance': expected one of low, balanced, quality"),
        ("control:\n  port: 70000\n", "'control.port': expected an integer in 0..65535"),
        ("outputs:\n  - nut\n", "outputs[0]: must be a mapping with a 'type'"),
        ("motion: [1, 2]\n", "'motion' must be a mapping"),
        ("- just\n- a list\n", "must be a mapping of keys"),
        ("motion: {mirror: true\n", "invalid YAML at line"),
    ],
)
def test_errors_name_the_key(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(UserError, match=None) as e:
        load_config(p)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file():
    with pytest.raises(UserError, match="config file not found"):
        load_config("/nonexistent/c.yaml")


def test_set_key_validates():
    cfg = load_config()
    set_key(cfg, "motion.head_strength", 0.5)
    assert cfg["motion"]["head_strength"] == 0.5
    with pytest.raises(UserError, match="'motion.head_strength'"):
        set_key(cfg, "motion.head_strength", 9)
    with pytest.raises(UserError, match="unknown setting"):
        set_key(cfg, "motion.nope", 1)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command):
    r = subprocess.run([sys.executable, "-m", "worker", command, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: stream-animator" in r.stdout


def test_cameras_json_on_a_machine_without_cameras():
    r = subprocess.run(
        [sys.executable, "-m", "worker", "cameras", "--json"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    import json

    assert isinstance(json.loads(r.stdout), list)


_KIND_TYPES = {"int": "int", "number": "float", "bool": "bool", "str": "str", "choice": "str", "map": "dict"}


def test_typed_sections_are_the_schema():
    """Each typed section has exactly its SECTIONS options as fields, typed by the option's kind
    (a setting added to SECTIONS and not to its section, or the reverse, fails here)."""
    hints = typing.get_type_hints(Settings)
    for name, options in SECTIONS.items():
        if name:
            section = hints[name]
            fields = typing.get_type_hints(section)
        else:
            section, fields = Settings, {k: v for k, v in hints.items() if k not in SECTIONS}
        assert list(fields) == [o.name for o in options], section.__name__
        for o in options:
            if o.kind in _KIND_TYPES:
                want = _KIND_TYPES[o.kind]
                shown = str(fields[o.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
                assert shown.startswith(want) and (("None" in shown) == o.optional), (o.name, shown)


def test_settings_are_typed_and_frozen(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("camera: {fps: 25}\nmotion: {mirror: true}\nvoice: {gain_db: 3}\ncontrol: {port: 4000}\n")
    s = load_settings(f, {"smoothing": 2})
    assert s.camera.fps == 25.0 and isinstance(s.camera.fps, float)
    assert isinstance(s.smoothing, float) and s.smoothing == 2.0
    assert s.motion.mirror is True and s.control.port == 4000 and s.outputs == ({"type": "obs"},)
    assert s.motion.retarget_options("assist").lipsync == "assist"
    settings, profile = s.voice.analysis()
    assert settings.gain_db == 3.0 and profile is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.camera.fps = 60  # type: ignore[misc]


def test_check_key_names_the_key():
    check_key("motion.mirror", True)
    with pytest.raises(UserError, match="motion.head_strength"):
        check_key("motion.head_strength", 5)
    with pytest.raises(UserError, match="unknown setting 'motion.wobble'"):
        check_key("motion.wobble", 1)
