"""The config's `voice:` section -> analysis settings and voice profile.

Reading and writing the config file itself is the config layer's (`worker.config`): this stage
only ever sees its own section.
"""

from __future__ import annotations

from worker.audio.analysis import VoiceSettings
from worker.audio.calibration import VoiceProfile, default_profile

SETTING_KEYS = ("gain_db", "gate_db", "attack_ms", "release_ms", "vad")


def voice_from_section(cfg: dict, where: str = "voice") -> tuple[VoiceSettings, VoiceProfile]:
    """A loaded config's `voice` section -> analysis settings and voice profile."""
    settings = VoiceSettings(**{k: cfg[k] for k in SETTING_KEYS})
    settings.validate("voice")
    cal = cfg.get("calibration")
    profile = VoiceProfile.from_config(cal, f"{where}.calibration") if cal is not None else default_profile()
    return settings, profile
