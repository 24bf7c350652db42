"""Held vowels spoken by espeak-ng: the stimuli of the default voice profile, its tests and the vowel sheet."""

from __future__ import annotations

import numpy as np

from worker.audio.tts import synthesize

# espeak-ng phoneme names (English) of each mouth shape's vowel
PHONEMES = {"A": "A:", "I": "i:", "U": "u:", "E": "E", "O": "O:"}
SAYS = {"A": "ah", "I": "ee", "U": "oo", "E": "eh", "O": "oh"}


def held_vowel(vowel: str, voice: str = "en", repeats: int = 3) -> np.ndarray:
    """`vowel` (A I U E O) held for `repeats` beats by espeak-ng's `voice` -> 16 kHz mono float32.

    American English has no held /o/: its "O:" (as in "thought") is an open [ɑ], which the profile
    rightly hears as A. An American voice's O is spoken by the Spanish voice of the same variant.
    """
    base, _, variant = voice.partition("+")
    if vowel == "O" and base.startswith("en-us"):
        return synthesize(
            "[[" + "o:" * repeats + "]]", voice="es" + ("+" + variant if variant else ""), words_per_minute=80
        )
    return synthesize("[[" + PHONEMES[vowel] * repeats + "]]", voice=voice, words_per_minute=80)
