"""`performance: low|balanced|quality`: how much CPU the live worker may take beside a game.

A profile sets what costs CPU without changing what the character can do:
* `track_every`: run the face mesh on every n-th camera frame; the frames between reuse the last
  measurement and the One Euro filters carry the motion on (MediaPipe is most of the CPU).
* `cv_threads`: OpenCV's worker pool (colour conversion, remap). On a busy 2-4 core gaming PC a
  pool wakes threads for small images and costs more CPU than it saves time; 0 = OpenCV's default.
"""

from __future__ import annotations

import dataclasses

PERFORMANCE_LEVELS = ("low", "balanced", "quality")
DEFAULT_PERFORMANCE = "balanced"


@dataclasses.dataclass(frozen=True)
class PerformanceProfile:
    name: str
    track_every: int  # face mesh on every n-th frame, the filters carry the rest
    cv_threads: int  # cv2.setNumThreads; 0 = OpenCV's own choice (all cores)


PROFILES = {
    "low": PerformanceProfile("low", track_every=2, cv_threads=1),
    "balanced": PerformanceProfile("balanced", track_every=1, cv_threads=1),
    "quality": PerformanceProfile("quality", track_every=1, cv_threads=0),
}


def profile(name: str) -> PerformanceProfile:
    """The profile called `name` (the config has already checked it is one of PERFORMANCE_LEVELS)."""
    return PROFILES[name]


def apply_threads(p: PerformanceProfile) -> None:
    """Process-wide thread caps of profile `p` (OpenCV's pool)."""
    import cv2

    cv2.setNumThreads(p.cv_threads if p.cv_threads > 0 else -1)  # -1: OpenCV's default again
