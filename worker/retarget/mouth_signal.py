"""`MouthSignal`: what the voice says about the mouth at one moment, the audio stage's contract."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VOWELS = ("A", "I", "U", "E", "O")  # Japanese-style visemes, as uLipSync and VTube Studio use


@dataclass
class MouthSignal:
    """One hop of voice analysis.

    `openness` 0 (shut) .. 1 (as wide as this voice opens it); `weights` the A/I/U/E/O shares
    (each 0..1, summing to at most 1: the rest is "no clear vowel"); `voiced` whether voice
    activity was detected; `timestamp` seconds of the audio clock at the end of the hop.
    """

    openness: float = 0.0
    weights: np.ndarray = field(default_factory=lambda: np.zeros(len(VOWELS), np.float32))
    voiced: bool = False
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        w = np.clip(np.asarray(self.weights, np.float32).reshape(len(VOWELS)), 0.0, 1.0)
        s = float(w.sum())
        self.weights = w / s if s > 1.0 else w
        self.openness = float(min(max(self.openness, 0.0), 1.0))

    def weight(self, vowel: str) -> float:
        return float(self.weights[VOWELS.index(vowel)])

    def as_dict(self) -> dict:
        return {
            "openness": round(self.openness, 4),
            "voiced": self.voiced,
            "timestamp": round(self.timestamp, 4),
            **{v: round(float(w), 4) for v, w in zip(VOWELS, self.weights, strict=True)},
        }
