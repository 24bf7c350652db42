"""Capture stage interface: a `FrameSource` yields BGR frames with timestamps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    image: np.ndarray  # (h, w, 3) uint8 BGR, as OpenCV delivers it
    index: int  # 0-based frame number from this source
    timestamp: float  # seconds: media time for files, time.monotonic() at capture for cameras


class FrameSource(ABC):
    """A source of frames. `read()` returns None at the end (files) or raises `CaptureError`."""

    fps: float = 30.0
    size: tuple[int, int] = (0, 0)  # (width, height)
    name: str = ""

    @abstractmethod
    def read(self) -> Frame | None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __iter__(self):
        while True:
            f = self.read()
            if f is None:
                return
            yield f

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
