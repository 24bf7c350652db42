"""Tracking cost per frame, split into the face mesh and everything after it."""

from __future__ import annotations

import time
from pathlib import Path

from worker.capture.video import VideoFileSource
from worker.stats import stats_ms as _stats

WARMUP_FRAMES = 5  # graph start-up and first detection, left out of the steady-state numbers


def benchmark_tracking(path: str | Path, max_frames: int = 600) -> dict:
    """Milliseconds per frame of `FaceTracker.process` on a video file (decoding not counted).

    `mesh_ms` is MediaPipe alone (with the BGR->RGB conversion); `post_ms` is head pose,
    features, One Euro smoothing and neutral/lost handling; `track_ms` is the two together.
    """
    from worker.track.mediapipe_tracker import FaceTracker

    mesh_t, post_t, total_t, found = [], [], [], 0
    with VideoFileSource(path) as src, FaceTracker() as tracker:
        size = src.size
        for frame in src:
            if len(total_t) >= max_frames:
                break
            t0 = time.perf_counter()
            raw = tracker.measure(frame.image, frame.timestamp)
            t1 = time.perf_counter()
            state = tracker.update(raw)
            t2 = time.perf_counter()
            mesh_t.append(t1 - t0)
            post_t.append(t2 - t1)
            total_t.append(t2 - t0)
            found += state.found
    w = WARMUP_FRAMES if len(total_t) > 2 * WARMUP_FRAMES else 0
    return {
        "clip": Path(path).name,
        "size": list(size),
        "frames": len(total_t),
        "frames_with_face": found,
        "track_ms": _stats(total_t[w:]),
        "mesh_ms": _stats(mesh_t[w:]),
        "post_ms": _stats(post_t[w:]),
    }
