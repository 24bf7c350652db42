"""Voice activity per 10 ms hop: WebRTC's VAD (webrtcvad-wheels, everything inside its wheel)."""

from __future__ import annotations

import numpy as np
import webrtcvad

from worker.audio.features import HOP, RATE

VOICING_MIN = 0.3  # periodicity (features.voicing) a voiced hop reaches; noise stays below ~0.25


class VoiceActivity:
    """`is_voice(hop)`: WebRTC VAD with a hangover, so the mouth does not snap shut between syllables.

    `mode` 0..3 is WebRTC's aggressiveness (3 rejects the most noise); -1 turns the VAD off
    (every hop counts as voice; the noise gate alone decides).
    """

    def __init__(self, mode: int = 2, hangover_ms: float = 150.0) -> None:
        if mode not in (-1, 0, 1, 2, 3):
            raise ValueError(f"vad mode must be -1..3, got {mode!r}")
        self.mode = mode
        self._vad = webrtcvad.Vad(mode) if mode >= 0 else None
        self._hang = int(round(hangover_ms / (1000.0 * HOP / RATE)))
        self._left = 0

    def raw(self, hop: np.ndarray) -> bool:
        if self._vad is None:
            return True
        pcm = (np.clip(hop, -1.0, 1.0) * 32767.0).astype("<i2")
        return self._vad.is_speech(pcm.tobytes(), RATE)

    def is_voice(self, hop: np.ndarray, periodic: bool = True) -> bool:
        """This hop is voice: the VAD says speech and (when given) the sound is periodic like a voice."""
        if periodic and self.raw(hop):
            self._left = self._hang
            return True
        if self._left > 0:
            self._left -= 1
            return True
        return False

    def reset(self) -> None:
        self._left = 0
