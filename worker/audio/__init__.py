"""Audio stage: microphone or file -> voice activity + mouth openness and vowel shape (`MouthSignal`).

Kept light to import: the retarget stage imports `MouthSignal` from here; capture, analysis and
text-to-speech live in their own modules and are imported where they are used.
"""

from worker.audio.mouth_signal import VOWELS, MouthSignal

__all__ = ["VOWELS", "MouthSignal"]
