"""`none`: no camera at all. Empty frames paced at the configured FPS keep the live pipeline
drawing (idle head motion, auto-blink, and the voice's mouth) without opening a device."""

from __future__ import annotations

import time

import numpy as np

from worker.capture.base import Frame, FrameSource

NO_PICTURE = np.zeros((0, 0, 3), np.uint8)  # what "nothing seen" looks like: the track stage finds no face


class NoCamera(FrameSource):
    name = "none"
    size = (0, 0)

    def __init__(self, fps: float = 30.0) -> None:
        self.fps = float(fps)
        self._period = 1.0 / self.fps
        self._next = time.monotonic()
        self._index = 0

    def read(self) -> Frame:
        """The next tick: sleeps until it is due (an absolute schedule, so the rate does not drift)."""
        self._next += self._period
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        elif now - self._next > self._period:  # fell behind (a stalled machine): do not catch up in a burst
            self._next = now
        self._index += 1
        return Frame(NO_PICTURE, self._index - 1, time.monotonic())


def is_none(spec: str) -> bool:
    return str(spec).strip().lower() == "none"
