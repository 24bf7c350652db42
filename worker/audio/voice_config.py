"""The config file's `voice:` section -> analysis settings and voice profile; writing a calibration back."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from worker.audio.analysis import VoiceSettings
from worker.audio.calibration import VoiceProfile, default_profile
from worker.errors import UserError

SETTING_KEYS = ("gain_db", "gate_db", "attack_ms", "release_ms", "vad")


def voice_from_config(path: str | Path | None) -> tuple[VoiceSettings, VoiceProfile]:
    from worker.config import load_config

    return voice_from_section(load_config(path)["voice"], f"{path}: voice")


def voice_from_section(cfg: dict, where: str = "voice") -> tuple[VoiceSettings, VoiceProfile]:
    """A loaded config's `voice` section -> analysis settings and voice profile."""
    settings = VoiceSettings(**{k: cfg[k] for k in SETTING_KEYS})
    settings.validate("voice")
    cal = cfg.get("calibration")
    profile = VoiceProfile.from_config(cal, f"{where}.calibration") if cal is not None else default_profile()
    return settings, profile


def store_calibration(path: str | Path, profile: VoiceProfile) -> None:
    """Put `profile` under voice.calibration in the YAML file at `path` (created if missing), atomically.

    The rest of the file is kept as data (comments are not: YAML is re-written)."""
    from worker.config import load_config

    p = Path(path)
    data: dict = {}
    if p.exists():
        load_config(p)  # refuse to touch a file that is not a valid config
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    data.setdefault("voice", {})
    if not isinstance(data["voice"], dict):
        raise UserError(f"{p}: 'voice' must be a mapping")
    data["voice"]["calibration"] = profile.to_config()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        raise UserError(f"{p}: cannot write config ({e.strerror})") from None
    load_config(p)  # what was written must load
