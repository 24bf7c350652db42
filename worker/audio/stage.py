"""The live voice stage: a source on its own thread, analysed hop by hop; the newest `MouthSignal` wins.

The live pipeline reads `latest()` once per frame (never blocks). Measures its own analysis cost
per hop; `status()` is the voice's part of the live status. `muted` (the OBS mute hotkey) shuts
the mouth without stopping the microphone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from worker.audio.analysis import MouthAnalyzer, VoiceSettings
from worker.audio.calibration import VoiceProfile
from worker.audio.sources import AudioSource, open_source
from worker.retarget.mouth_signal import MouthSignal


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
        self.on_signal: Callable[[MouthSignal], None] | None = None  # e.g. for measurements

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

    def status(self) -> dict:
        """What the live status shows: the input, muted, whether voice is heard now, how loud."""
        sig = self.latest()
        src = self.source
        mic = getattr(getattr(src, "device", None), "name", None) or str(getattr(src, "path", src.name))
        st = self.stats()
        return {
            "mic": mic,
            "muted": self.muted,
            "voiced": bool(sig.voiced),
            "openness": round(float(sig.openness), 3),
            "level_db": round(self.analyzer.level_db, 1),
            "hops": st["hops"],
            "analysis_ms_p95": st["analysis_ms_p95"],
        }

    def stop(self) -> None:
        self.source.stop()

    def __enter__(self) -> VoiceInput:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
