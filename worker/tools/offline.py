"""The offline frame loop shared by `demo`, `bench` and the fidelity table, with stage timers.

Driver frames -> track -> retarget -> render, one frame at a time on the caller's thread, each
stage timed into a `StageTimes`. Two generators that chain: `track_frames` reads and tracks
(stages "capture", "track"; with `detail` also "mesh" and "post", the face mesh alone and what
follows it), `animate` retargets and renders onto one character ("retarget", "render"). What
the caller does with each frame (encode it, re-track it) it times itself with
`times.stage(name)`. The live worker does not use this: it runs the same stages on threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from worker.capture.base import FrameSource
from worker.characters.assets import CharacterAssets
from worker.render.base import FrameInput, Renderer
from worker.retarget.pose import TargetPose
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.stats import stats_ms
from worker.track.face_state import FaceState

if TYPE_CHECKING:  # the tracker pulls in MediaPipe: imported by whoever makes one
    from worker.track.mediapipe_tracker import FaceTracker


class StageTimes:
    """Seconds per frame of each named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds.setdefault(stage, []).append(seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body of a `with` block as one frame of stage `name`."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def stats_ms(self, skip: int = 0) -> dict[str, dict]:
        """Median and p95 ms per stage, leaving out the first `skip` frames (start-up) where there are more."""
        return {k: stats_ms(v[skip:] or v) for k, v in self.seconds.items()}

    def median_ms(self, stage: str, skip: int = 0) -> float:
        v = self.seconds.get(stage, [])
        return float(np.median(v[skip:] or v)) * 1000.0 if v else float("nan")


@dataclass
class OfflineFrame:
    """One driver frame on its way through the loop (each stage fills in its part)."""

    index: int
    image: np.ndarray | None  # the driver frame, BGR (None when the faces were tracked earlier)
    timestamp: float
    face: FaceState | None = None
    neutral: FaceState | None = None
    pose: TargetPose | None = None
    rgba: np.ndarray | None = None  # the rendered character, straight RGBA


def source_frames(source: FrameSource, max_frames: int = 0) -> Iterator[tuple[np.ndarray, float]]:
    """(BGR image, timestamp) of each frame of `source`, at most `max_frames` (0: all)."""
    n = 0
    while not max_frames or n < max_frames:
        frame = source.read()
        if frame is None:
            return
        yield frame.image, frame.timestamp
        n += 1


def track_frames(
    frames: Iterable[tuple[np.ndarray, float]], tracker: FaceTracker, times: StageTimes, detail: bool = False
) -> Iterator[OfflineFrame]:
    """Track each (BGR image, timestamp) with `tracker`; times reading ("capture") and tracking."""
    it = iter(frames)
    index = 0
    while True:
        t0 = time.perf_counter()
        item = next(it, None)
        t1 = time.perf_counter()
        if item is None:
            return
        image, ts = item
        raw = tracker.measure(image, ts)  # `FaceTracker.process` is exactly these two steps
        t2 = time.perf_counter()
        face = tracker.update(raw)
        t3 = time.perf_counter()
        times.add("capture", t1 - t0)
        times.add("track", t3 - t1)
        if detail:
            times.add("mesh", t2 - t1)
            times.add("post", t3 - t2)
        yield OfflineFrame(index, image, ts, face, tracker.neutral)
        index += 1


def animate(
    frames: Iterable[OfflineFrame],
    assets: CharacterAssets,
    renderer: Renderer,
    times: StageTimes,
    options: RetargetOptions | None = None,
) -> Iterator[OfflineFrame]:
    """Retarget each tracked frame onto `assets` and render it (`Renderer.draw`, as the live
    worker does); fills in `pose` (when the renderer draws from one) and `rgba`."""
    opts = options or RetargetOptions()
    rt = Retargeter(assets, opts) if renderer.uses_pose else None
    renderer.set_motion(opts)
    for f in frames:
        t0 = time.perf_counter()
        f.pose = rt.retarget(f.face, f.neutral) if rt is not None else None
        t1 = time.perf_counter()
        f.rgba = renderer.draw(assets, FrameInput(f.face, f.neutral, f.image, f.pose))
        t2 = time.perf_counter()
        times.add("retarget", t1 - t0)
        times.add("render", t2 - t1)
        yield f
