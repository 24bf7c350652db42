"""Measures for tuning and testing the smoothing: jitter on still stretches, lag on fast motion.

Landmark series are (T, N, 2|3) in pixels; they are divided by the series' mean inter-ocular
distance so that numbers are comparable between clips ("% IOD" = percent of that distance).
"""

from __future__ import annotations

import numpy as np

from worker.track import landmark_ids as L


def _normalised(landmarks: np.ndarray, iod: np.ndarray | float) -> np.ndarray:
    # one scale for the whole series: dividing each frame by its own (noisy) IOD would turn
    # scale noise into large position jumps far from the image origin
    lm = np.asarray(landmarks, np.float64)[..., :2]
    return lm / float(np.mean(iod))


def head_speed(landmarks: np.ndarray, iod: np.ndarray | float) -> np.ndarray:
    """(T-1,) frame-to-frame motion of the rigid points' centroid, in IODs per frame."""
    c = _normalised(landmarks, iod)[:, list(L.RIGID)].mean(axis=1)
    return np.linalg.norm(np.diff(c, axis=0), axis=1)


def find_still_stretch(landmarks: np.ndarray, iod: np.ndarray | float, frames: int) -> slice:
    """The `frames`-long window where the head (the rigid points' centroid) moves least.

    The driving clips have no stretch where the whole face is still (people talk), so stillness
    and shimmer are judged on the head, not on the lips."""
    speed = head_speed(landmarks, iod)
    csum = np.concatenate([[0.0], np.cumsum(speed)])
    window = csum[frames - 1 :] - csum[: len(csum) - frames + 1]
    start = int(np.argmin(window))
    return slice(start, start + frames)


def find_fast_stretch(landmarks: np.ndarray, iod: np.ndarray | float, frames: int) -> slice:
    """The `frames`-long window where the head moves fastest."""
    speed = head_speed(landmarks, iod)
    csum = np.concatenate([[0.0], np.cumsum(speed)])
    window = csum[frames - 1 :] - csum[: len(csum) - frames + 1]
    start = int(np.argmax(window))
    return slice(start, start + frames)


def jitter(landmarks: np.ndarray, iod: np.ndarray | float, points=L.RIGID) -> float:
    """Mean frame-to-frame displacement of `points` (default: the rigid ones) in % IOD."""
    lm = _normalised(landmarks, iod)[:, list(points)]
    return float(100.0 * np.linalg.norm(np.diff(lm, axis=0), axis=2).mean())


def shimmer(landmarks: np.ndarray, iod: np.ndarray | float, points=L.RIGID) -> float:
    """RMS second difference of `points` in % IOD: the frame-to-frame noise that smooth motion
    hardly has (a constant velocity has none), i.e. what a viewer sees as shimmer."""
    lm = _normalised(landmarks, iod)[:, list(points)]
    return float(100.0 * np.sqrt((np.diff(lm, n=2, axis=0) ** 2).sum(axis=2).mean()))


def lag_frames(reference: np.ndarray, delayed: np.ndarray, max_lag: float = 8.0, step: float = 0.05) -> float:
    """How many frames `delayed` trails `reference`: the shift k (sub-frame, linear interpolation)
    that minimises the RMS of delayed[t] - reference[t - k]. Series are (T, ...) arrays."""
    a = np.asarray(reference, np.float64).reshape(len(reference), -1)
    b = np.asarray(delayed, np.float64).reshape(len(delayed), -1)
    m = int(np.ceil(max_lag)) + 1
    t = np.arange(m, len(a) - m, dtype=np.float64)
    best, best_k = np.inf, 0.0
    for k in np.arange(-max_lag, max_lag + step / 2, step):
        src = t - k
        i0 = np.floor(src).astype(int)
        w = (src - i0)[:, None]
        shifted = a[i0] * (1 - w) + a[i0 + 1] * w
        err = float(((b[t.astype(int)] - shifted) ** 2).mean())
        if err < best:
            best, best_k = err, float(k)
    return best_k
