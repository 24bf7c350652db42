"""Rolling delivery metrics for one output: counts, FPS and capture-to-delivery latency."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RollingPercentiles:
    """Percentiles over the last `size` samples (thread-safe)."""

    def __init__(self, size: int = 300):
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def percentiles(self, *qs: float) -> list[float | None]:
        with self._lock:
            if not self._values:
                return [None for _ in qs]
            arr = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
        return [float(v) for v in np.percentile(arr, qs)]

    def __len__(self) -> int:
        return len(self._values)


class RateMeter:
    """Events per second over the last `window` seconds (thread-safe)."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            n = len(self._times)
            if n < 2:
                return 0.0
            span = now - self._times[0]
            return (n - 1) / span if span > 0 else 0.0


class OutputMetrics:
    """What every output reports: delivered, dropped, errors, fps, latency p50/p95 (ms).

    Latency is measured from the frame's capture timestamp (``time.time()`` seconds) to the
    moment the output handed it over (socket write done, frame encoded, image shown).
    """

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        self._lat = RollingPercentiles()
        self._rate = RateMeter()
        self._lock = threading.Lock()

    def delivered_frame(self, capture_ts: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self.delivered += 1
        self._lat.add(now - capture_ts)
        self._rate.tick()

    def dropped_frames(self, n: int = 1) -> None:
        if n > 0:
            with self._lock:
                self.dropped += n

    def error(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message

    def snapshot(self) -> dict:
        p50, p95 = self._lat.percentiles(50, 95)
        return {
            "delivered": self.delivered,
            "dropped": self.dropped,
            "errors": self.errors,
            "last_error": self.last_error,
            "fps": round(self._rate.rate(), 2),
            "latency_ms_p50": None if p50 is None else round(p50 * 1000, 2),
            "latency_ms_p95": None if p95 is None else round(p95 * 1000, 2),
        }
