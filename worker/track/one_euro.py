"""Vectorised One Euro filter (Casiez, Roussel, Vogel, CHI 2012) and the landmark smoother.

Each channel is an adaptive low-pass: cutoff = mincutoff + beta * |speed|, so it smooths hard
while still (no shimmer) and opens up with speed (no lag). Speeds are divided by a `scale` so
that parameters mean the same at any distance from the camera: for landmarks everything is in
inter-ocular distances (IOD), speed in IOD per second. For (N, D) input a point's D coordinates
share one speed (the norm); for (N,) input each element is its own channel. Parameters may be
per-channel arrays.

`LandmarkSmoother` filters the face mesh in two parts: the face frame (centre between the eyes,
log scale, roll of the eye line) and the shape in that frame (landmarks / IOD, roll removed).
Splitting them keeps head motion and camera shake from opening the shape filter (so a still
face does not shimmer while the head moves) and filters the scale on its own (no "pumping").
`FaceTracker` then computes pose and features on the smoothed mesh and filters those lightly.

Tuning (2026-11, the five driving clips of the shared test footage, 25-30 fps, 480-512 px).
Jitter = RMS second difference of the rigid landmarks (forehead, nose, eye corners, cheekbones)
in % IOD on each clip's stillest second of head motion; lag = the shift (sub-frame) that best
aligns the smoothed series with the raw one on each clip's fastest 20 frames of head motion.

* Raw MediaPipe jitter on those still seconds: 0.54-1.25 % IOD (12 % on d12, whose camera shakes).
* Shape: mincutoff 1.0 Hz, beta 5 (20 for lids, lips, irises), dcutoff 1 Hz (5 Hz for lids,
  lips, irises). mincutoff 0.5-2 Hz all cut shimmer 3x; 1 Hz is where lips and lids, with the
  higher beta and a 5 Hz speed estimate, follow speech (3-6 Hz oscillation, which a 1 Hz speed
  estimate averages to ~0 and then damps) and keep the depth of blinks (eye openness at the
  deepest blink within 0.003-0.024 of raw; 0.06-0.15 with beta 5 and dcutoff 1 everywhere).
* Frame: mincutoff 1.5 Hz, beta 5, dcutoff 2 Hz. beta 1 left 1.3-1.7 frames of lag on fast
  turns; 3-5 keeps it under a frame.
* Pose (degrees): mincutoff 2 Hz, beta 6, dcutoff 2 Hz on top: pose jitter x0.17-0.31 of raw
  (x0.24-0.39 from the smoothed mesh alone); 1 Hz / beta 0.2 cut more but lagged 1.2-2.5 frames.
* Features (ratios): mincutoff 8 Hz, beta 50, dcutoff 5 Hz: light, because they are computed
  from the smoothed mesh already; 1.5 Hz / beta 20 dropped d9's speech mouth correlation with
  the raw value from 0.99 to 0.94.

Result with these defaults: jitter x0.27-0.45 of raw (x0.65 on the shaking d12; mean x0.43),
landmark lag 0.15-0.6 frames, yaw lag 0.4-0.8 frames on turns of 15-33 degrees.
`tests/test_track.py` re-measures all of this on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from worker.track import landmark_ids as L
from worker.track.face_state import N_LANDMARKS
from worker.track.features import eye_centers


@dataclass(frozen=True, eq=False)
class OneEuroParams:
    mincutoff: float | np.ndarray = 1.0  # Hz: cutoff at rest; lower = less jitter, more lag
    beta: float | np.ndarray = 0.0  # cutoff gain per unit of (scaled) speed; higher = less lag
    dcutoff: float | np.ndarray = 1.0  # Hz: cutoff of the speed estimate itself


_FAST_POINTS = (
    L.RIGHT_EYE
    + L.LEFT_EYE
    + L.LIPS_INNER
    + L.LIPS_OUTER
    + L.RIGHT_IRIS
    + L.LEFT_IRIS
    + (L.RIGHT_IRIS_CENTER, L.LEFT_IRIS_CENTER)
)


def _per_landmark(default: float, fast: float) -> np.ndarray:
    """(478, 1) values: `fast` for lids, lips and irises (blinks take ~3 frames, speech
    oscillates at 3-6 Hz), `default` for the rest of the face."""
    v = np.full((N_LANDMARKS, 1), default)
    v[list(_FAST_POINTS)] = fast
    return v


SHAPE = OneEuroParams(mincutoff=1.0, beta=_per_landmark(5.0, 20.0), dcutoff=_per_landmark(1.0, 5.0))  # IOD/s
FRAME = OneEuroParams(mincutoff=1.5, beta=5.0, dcutoff=2.0)  # speeds: IOD/s, 1/s (log scale), rad/s
POSE = OneEuroParams(mincutoff=2.0, beta=6.0, dcutoff=2.0)  # speed: degrees/s
FEATURES = OneEuroParams(mincutoff=8.0, beta=50.0, dcutoff=5.0)  # speed: ratio units/s
DEFAULTS = {"shape": SHAPE, "frame": FRAME, "pose": POSE, "features": FEATURES}


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro over an array of any shape; `params` fields may be scalars or per-channel arrays."""

    def __init__(self, params: OneEuroParams | None = None) -> None:
        self.params = params or OneEuroParams()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @property
    def value(self) -> np.ndarray | None:
        return self._x

    def __call__(self, x: np.ndarray, t: float, scale: float | np.ndarray = 1.0) -> np.ndarray:
        """Filter sample `x` taken at time `t` (seconds); `scale` (scalar or per channel) divides
        speeds (see module doc)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            # first sample, or time did not advance (a repeated frame): (re)start from the sample
            if self._x is None or self._t is None or t < self._t or self._x.shape != x.shape:
                self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return self._x.copy()
        dt = t - self._t
        p = self.params
        dx = (x - self._x) / dt
        a_d = _alpha(p.dcutoff, dt)
        dx_hat = self._dx + a_d * (dx - self._dx)
        if x.ndim == 2:  # points: one speed per row
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True)
        else:
            speed = np.abs(dx_hat)
        cutoff = p.mincutoff + p.beta * speed / np.maximum(scale, 1e-9)
        a = _alpha(cutoff, dt)
        self._x = self._x + a * (x - self._x)
        self._dx, self._t = dx_hat, t
        return self._x.copy()


class LandmarkSmoother:
    """One Euro smoothing of a face mesh in two parts, so that each gets the right treatment.

    * The face frame: centre between the eyes (x, y, z), log of the inter-ocular distance and
      roll of the eye line. Filtered with `frame_params`, speeds in IODs (or radians) per second.
      Filtering the scale on its own is what stops the head "pumping" in size.
    * The shape: every landmark in that frame (centred, roll removed, divided by the IOD).
      Filtered with `shape_params`, speed per landmark in IODs per second, so a still face does
      not shimmer while the lips of a talking one (fast) pass with almost no lag.

    Recomposed, the output is the smoothed shape placed by the smoothed frame.
    """

    def __init__(self, shape_params: OneEuroParams | None = None, frame_params: OneEuroParams | None = None):
        self.shape = OneEuroFilter(shape_params or SHAPE)
        self.frame = OneEuroFilter(frame_params or FRAME)

    def reset(self) -> None:
        self.shape.reset()
        self.frame.reset()

    @staticmethod
    def decompose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frame [cx, cy, cz, log iod, roll], shape (N, 3)) of (N, 3) landmarks in pixels."""
        p = np.asarray(landmarks, np.float64)
        r, left = eye_centers(p)
        c = 0.5 * (r + left)
        iod = max(float(np.linalg.norm(left - r)), 1e-6)
        roll = math.atan2(left[1] - r[1], left[0] - r[0])
        co, si = math.cos(roll), math.sin(roll)
        d = p - c
        shape = np.empty_like(d)
        shape[:, 0] = (co * d[:, 0] + si * d[:, 1]) / iod
        shape[:, 1] = (-si * d[:, 0] + co * d[:, 1]) / iod
        shape[:, 2] = d[:, 2] / iod
        return np.array([c[0], c[1], c[2], math.log(iod), roll]), shape

    @staticmethod
    def compose(frame: np.ndarray, shape: np.ndarray) -> np.ndarray:
        cx, cy, cz, log_iod, roll = (float(v) for v in frame)
        iod = math.exp(log_iod)
        co, si = math.cos(roll), math.sin(roll)
        out = np.empty_like(shape)
        out[:, 0] = cx + iod * (co * shape[:, 0] - si * shape[:, 1])
        out[:, 1] = cy + iod * (si * shape[:, 0] + co * shape[:, 1])
        out[:, 2] = cz + iod * shape[:, 2]
        return out

    def __call__(self, landmarks: np.ndarray, t: float) -> np.ndarray:
        frame, shape = self.decompose(landmarks)
        iod = math.exp(frame[3])
        if self.frame.value is not None:  # keep roll continuous across +-pi
            prev = self.frame.value[4]
            frame[4] = prev + (frame[4] - prev + math.pi) % (2 * math.pi) - math.pi
        # centre speeds in IODs per second; log-scale and roll are already unitless
        f = self.frame(frame, t, scale=np.array([iod, iod, iod, 1.0, 1.0]))
        s = self.shape(shape, t)
        return self.compose(f, s)
