"""`Speaker`: the voice the live pipeline reads once per frame, with lines said on request.

It stands in front of the microphone's `VoiceInput` (or of no voice at all): while a line is
being said (`say`) the mouth follows that line's audio, analysed ahead of time with the audio
package's offline analysis on the wall clock the frames carry; while a `hold` is set (the
request/response mode) the mouth is that one signal; otherwise it is the microphone's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.audio.analysis import MouthAnalyzer, signal_at
from worker.audio.features import RATE
from worker.live.ports import Voice
from worker.retarget.mouth_signal import MouthSignal


@dataclass(frozen=True)
class Line:
    track: np.ndarray  # the mouth track of the line (`MouthAnalyzer.analyze`)
    start: float  # time.time() when its first sample plays
    seconds: float

    @property
    def end(self) -> float:
        return self.start + self.seconds


def mouth_of(samples: np.ndarray, rate: int = RATE) -> MouthSignal:
    """The mouth for a short chunk of audio: the widest it opens over the chunk."""
    x = np.asarray(samples, np.float32)
    if rate != RATE and len(x):
        n = max(1, int(round(len(x) * RATE / rate)))  # linear resampling is enough to read a mouth
        x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    track = MouthAnalyzer().analyze(x)
    if not len(track):
        return MouthSignal()
    i = int(np.argmax(track[:, 1]))
    row = track[i]
    return MouthSignal(float(row[1]), np.array(row[2:7]), bool(track[:, 7].max() > 0.5), float(row[0]))


class Speaker:
    """A `Voice`: a line being said, else a held signal, else the inner voice (or a shut mouth)."""

    def __init__(self, inner: Voice | None = None) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._line: Line | None = None
        self._held: MouthSignal | None = None
        self._muted = False
        self.lines = 0

    @property
    def muted(self) -> bool:
        return self.inner.muted if self.inner is not None else self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        if self.inner is not None:
            self.inner.muted = value
        self._muted = bool(value)

    def say(self, samples: np.ndarray, start: float) -> Line:
        """Analyse `samples` (16 kHz mono float32) and speak them from `start` (time.time())."""
        line = Line(MouthAnalyzer().analyze(np.asarray(samples, np.float32)), start, len(samples) / RATE)
        with self._lock:
            self._line = line
            self.lines += 1
        return line

    def hold(self, signal: MouthSignal | None) -> None:
        with self._lock:
            self._held = signal

    def saying(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        line = self._line
        return line is not None and line.start <= now < line.end

    def latest(self) -> MouthSignal:
        now = time.time()
        with self._lock:
            held, line = self._held, self._line
        if self.muted:  # the mute of the control channel shuts every mouth the voice gives
            return MouthSignal(timestamp=now)
        if held is not None:
            return MouthSignal(held.openness, held.weights, held.voiced, now)
        if line is not None and now < line.end:
            if now < line.start:
                return MouthSignal(timestamp=now)
            sig = signal_at(line.track, now - line.start)
            return MouthSignal(sig.openness, sig.weights, sig.voiced, now)
        if self.inner is not None:
            return self.inner.latest()
        return MouthSignal(timestamp=now)

    def status(self) -> dict[str, Any]:
        base = self.inner.status() if self.inner is not None else {"mic": None, "muted": self._muted}
        sig = self.latest()
        return {**base, "saying": self.saying(), "voiced": bool(sig.voiced), "openness": round(sig.openness, 3)}
