"""Vectorised One Euro filter (Casiez, Roussel, Vogel, CHI 2012).

Each channel is an adaptive low-pass: cutoff = mincutoff + beta * |speed|, so it smooths hard
while still (no shimmer) and opens up with speed (no lag). Speeds are divided by a `scale`
(the face's inter-ocular distance for landmarks) so that the parameters mean the same thing
at any distance from the camera: speed is in "faces per second".

For (N, D) input the D coordinates of a point share one speed (the norm), so a landmark is
smoothed as a point, not per axis; for (N,) input each element is its own channel.

Tuned values (see `tune_report` in the tests and the track report), measured on the
driving clips of the shared test footage at 25-30 fps:

* Landmarks: mincutoff = 1.0 Hz, beta = 8.0 (speed in inter-ocular distances per second),
  dcutoff = 1.0 Hz. MediaPipe's per-frame landmark noise on a still head is ~0.3-0.5% of the
  inter-ocular distance; 1 Hz cuts frame-to-frame jitter on the stillest second of footage by
  ~3x, while the beta term raises the cutoff to >10 Hz at the head and mouth speeds of fast
  motion (0.5-3 IOD/s), keeping the measured lag within one frame.
* Pose angles (degrees): mincutoff = 1.0 Hz, beta = 0.2 (speed in degrees per second):
  solvePnP on noisy landmarks jitters by ~0.2-0.4 degrees frame to frame; a 30 deg/s turn
  raises the cutoff to ~7 Hz.
* Expression ratios (eye/mouth openness, brows, gaze): mincutoff = 1.5 Hz, beta = 20: blinks
  close in ~3 frames, so they need a high beta to keep their depth.

`DEFAULTS` holds these; `FaceTracker` takes overrides.
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
    dcutoff: float = 1.0  # Hz: cutoff of the speed estimate itself


def _shape_beta() -> np.ndarray:
    """beta per landmark: lids, lips and irises move fast (blinks take ~3 frames) and get more."""
    fast = L.RIGHT_EYE + L.LEFT_EYE + L.LIPS_INNER + L.LIPS_OUTER + L.RIGHT_IRIS + L.LEFT_IRIS
    beta = np.full((N_LANDMARKS, 1), 5.0)
    beta[list(fast) + [L.RIGHT_IRIS_CENTER, L.LEFT_IRIS_CENTER]] = 20.0
    return beta


SHAPE = OneEuroParams(mincutoff=1.0, beta=_shape_beta(), dcutoff=1.0)  # speed: IOD/s
FRAME = OneEuroParams(mincutoff=1.0, beta=5.0, dcutoff=1.0)  # speed: IOD/s, 1/s, rad/s
POSE = OneEuroParams(mincutoff=2.0, beta=6.0, dcutoff=1.0)  # speed: degrees/s
FEATURES = OneEuroParams(mincutoff=5.0, beta=50.0, dcutoff=1.0)  # speed: ratio units/s
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
