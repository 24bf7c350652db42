"""Skip warp + generator when the driving keypoints have been seen before or have not moved.

Two levels, both keyed by the final driving keypoints x_d (21, 3) that W+G consumes (for one
character: `clear()` on a switch):

* hold-still: if no keypoint moved more than `hold` since the last rendered frame, that frame
  is returned again (a still streamer costs no GPU);
* LRU: x_d quantised to a `step` grid -> the frame rendered for it (repeated expressions,
  returning to neutral). Quantisation means a hit may be up to step/2 per coordinate away.

Keypoints live in about [-1, 1] across the 256-px crop: 0.002 is ~0.25 px, 0.004 ~0.5 px.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class RenderCache:
    def __init__(self, capacity: int = 64, step: float = 0.004, hold: float = 0.002):
        self.capacity, self.step, self.hold = int(capacity), float(step), float(hold)
        self.frames: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.last_x: np.ndarray | None = None
        self.last_frame: np.ndarray | None = None
        self.hits = self.holds = self.misses = 0

    def clear(self) -> None:
        self.frames.clear()
        self.last_x = self.last_frame = None

    def key(self, x_d: np.ndarray) -> bytes:
        return np.round(np.asarray(x_d, np.float64) / self.step).astype(np.int32).tobytes()

    def lookup(self, x_d: np.ndarray) -> tuple[np.ndarray | None, bytes]:
        """(cached frame or None, key to `store` under)."""
        if self.last_x is not None and self.hold > 0 and float(np.abs(x_d - self.last_x).max()) <= self.hold:
            self.holds += 1
            return self.last_frame, b""
        k = self.key(x_d) if self.capacity > 0 else b""
        frame = self.frames.get(k) if k else None
        if frame is not None:
            self.frames.move_to_end(k)
            self.hits += 1
            self.last_x, self.last_frame = np.array(x_d, np.float64), frame
            return frame, k
        self.misses += 1
        return None, k

    def store(self, key: bytes, x_d: np.ndarray, frame: np.ndarray) -> None:
        self.last_x, self.last_frame = np.array(x_d, np.float64), frame
        if key:
            self.frames[key] = frame
            self.frames.move_to_end(key)
            while len(self.frames) > self.capacity:
                self.frames.popitem(last=False)

    @property
    def lookups(self) -> int:
        return self.hits + self.holds + self.misses

    @property
    def hit_rate(self) -> float:
        """Share of frames that skipped warp + generator (hold-still and LRU hits)."""
        return (self.hits + self.holds) / self.lookups if self.lookups else 0.0

    def stats(self) -> dict:
        return {
            "frames": self.lookups,
            "holds": self.holds,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hit_rate, 4),
        }
