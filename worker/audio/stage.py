"""The live voice stage: a source on its own thread, analysed hop by hop; the newest `MouthSignal` wins.

The render stage reads `latest()` once per frame (never blocks). Measures its own analysis cost
per hop. `muted` (the OBS mute hotkey) shuts the mouth without stopping the microphone.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from worker.audio.analysis import MouthAnalyzer, VoiceSettings
from worker.audio.calibration import VoiceProfile
from worker.audio.mouth_signal import MouthSignal
from worker.audio.sources import AudioSource, open_source


class VoiceInput:
    def __init__(
        self, source: AudioSource | str, settings: VoiceSettings | None = None, profile: VoiceProfile | None = None
    ) -> None:
        self.source = open_source(source) if isinstance(source, str) else source
        self.analyzer = MouthAnalyzer(settings, profile)
        self._lock = threading.Lock()
        self._latest = MouthSignal()
        self._cost: list[float] = []
        self.hops = 0
        self.on_signal = None  # optional callback(MouthSignal), e.g. for measurements

    @property
    def muted(self) -> bool:
        return self.analyzer.muted

    @muted.setter
    def muted(self, value: bool) -> None:
        self.analyzer.muted = bool(value)

    def start(self) -> VoiceInput:
        self.source.start(self._on_hop)
        return self

    def _on_hop(self, hop: np.ndarray, t: float) -> None:
        t0 = time.perf_counter()
        sig = self.analyzer.push(hop, t)
        cost = time.perf_counter() - t0
        with self._lock:
            self._latest = sig
            self.hops += 1
            self._cost.append(cost)
            if len(self._cost) > 2000:
                del self._cost[:1000]
        if self.on_signal is not None:
            self.on_signal(sig)

    def latest(self) -> MouthSignal:
        with self._lock:
            return self._latest

    def stats(self) -> dict:
        with self._lock:
            c = np.array(self._cost) * 1000.0
        return {
            "hops": self.hops,
            "analysis_ms_median": round(float(np.median(c)), 4) if len(c) else None,
            "analysis_ms_p95": round(float(np.percentile(c, 95)), 4) if len(c) else None,
        }

    def stop(self) -> None:
        self.source.stop()

    def __enter__(self) -> VoiceInput:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
