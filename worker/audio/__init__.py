"""Audio stage: microphone or file -> voice activity + mouth openness and vowel shape (`MouthSignal`).

`MouthSignal`, what this stage hands on, is declared by the stage that reads it
(`worker.retarget.mouth_signal`), so the layers only point down; it is re-exported here. Capture,
analysis and text-to-speech live in their own modules and are imported where they are used.
"""

from worker.retarget.mouth_signal import VOWELS, MouthSignal

__all__ = ["VOWELS", "MouthSignal"]
