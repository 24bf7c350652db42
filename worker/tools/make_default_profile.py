"""Rebuild `data/default_voice.json`: the vowel templates used until a user calibrates their voice.

Measured on several espeak-ng voices (male and female variants) so that it is not one speaker's
profile: `python -m worker.tools.make_default_profile` (Linux with espeak-ng).
"""

from __future__ import annotations

import json
import os

import numpy as np

from worker.audio.calibration import DEFAULT_PROFILE, VoiceProfile, calibrate
from worker.audio.held_vowels import held_vowel
from worker.retarget.mouth_signal import VOWELS

VOICES = ("en", "en+f2", "en+m3", "en+f4")


def held_vowels(voice: str) -> dict[str, np.ndarray]:
    return {v: held_vowel(v, voice, repeats=4 if v == "E" else 3) for v in VOWELS}


def build() -> VoiceProfile:
    profiles = [calibrate(held_vowels(v), source=f"espeak-ng {v}") for v in VOICES]
    templates = {v: np.concatenate([p.templates[v] for p in profiles]) for v in VOWELS}
    return VoiceProfile(
        templates,
        float(np.median([p.floor_db for p in profiles])),
        float(np.median([p.peak_db for p in profiles])),
        "default: espeak-ng " + ", ".join(VOICES),
    )


def main() -> None:
    profile = build()
    tmp = DEFAULT_PROFILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(profile.to_config()) + "\n", encoding="utf-8")
    os.replace(tmp, DEFAULT_PROFILE)
    print(f"wrote {DEFAULT_PROFILE}")


if __name__ == "__main__":
    main()
