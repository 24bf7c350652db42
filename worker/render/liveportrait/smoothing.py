"""One Euro smoothing of the driving motion (the project's filter, worker/track/one_euro.py).

LivePortrait users' most common complaint is jitter: the motion extractor reads every driving
frame afresh, so its angles, translation, scale and expression shimmer even on a still face.
We filter what it reads, per channel. The tracker's own pose tuning (2 Hz, beta 6) assumes a
pose computed from already-smoothed landmarks; on raw per-frame estimates it barely smooths
(jitter x0.79 in tests/test_liveportrait.py's synthetic still clip). Swept here on a still clip
with 0.5-degree noise and a 30-degree turn in 0.5 s at 30 fps (lag = the whole-frame shift that
best aligns the smoothed turn with the true one):

    mincutoff 0.5 / beta 0.05: jitter x0.08, lag 1 frame      1.0 / 0.2: x0.18, lag 0
    2.0 / 0.5: x0.31, lag 0                                    2.0 / 6 (tracker's): x0.79

Defaults: pose 1.0 Hz / beta 0.2 (degrees/s). Translation, log-scale and expression use the same
curve with speeds divided by their assumed noise level relative to 0.5 degrees (keypoint units:
~0.003 for t and log s, ~0.004 for expression); the lid and lip keypoints use 2.0 Hz / beta 0.5
so blinks and speech keep their depth. The driver's eye and lip ratios (from the already
smoothed landmarks) get the tracker's light feature filter. The noise levels are assumptions
until measured on real motion-extractor output (tests/test_liveportrait_real.py prints it).
"""

from __future__ import annotations

import numpy as np

from worker.render.liveportrait.motion import EYE_KP, LIP_KP, N_KP
from worker.track.one_euro import FEATURES, OneEuroFilter, OneEuroParams

N_EXTRA = 3  # driver eye ratios (left, right) and lip ratio ride along
POSE = (1.0, 0.2, 1.0)  # mincutoff Hz, beta, dcutoff Hz (speeds in degrees/s)
FAST = (2.0, 0.5, 2.0)  # lid and lip keypoints
NOISE_T, NOISE_EXP, NOISE_REF = 0.003, 0.004, 0.5  # assumed noise: keypoint units, degrees


def _params() -> tuple[OneEuroParams, np.ndarray]:
    n = 7 + 3 * N_KP + N_EXTRA
    mincut, beta, dcut = (np.empty(n) for _ in range(3))
    scale = np.ones(n)
    mincut[:-N_EXTRA], beta[:-N_EXTRA], dcut[:-N_EXTRA] = POSE
    scale[3:7] = NOISE_T / NOISE_REF
    fast = np.zeros(N_KP, bool)
    fast[list(EYE_KP + LIP_KP)] = True
    exp = slice(7, 7 + 3 * N_KP)
    fast3 = np.repeat(fast, 3)
    mincut[exp] = np.where(fast3, FAST[0], POSE[0])
    beta[exp] = np.where(fast3, FAST[1], POSE[1])
    dcut[exp] = np.where(fast3, FAST[2], POSE[2])
    scale[exp] = NOISE_EXP / NOISE_REF
    mincut[-N_EXTRA:], beta[-N_EXTRA:], dcut[-N_EXTRA:] = FEATURES.mincutoff, FEATURES.beta, FEATURES.dcutoff
    return OneEuroParams(mincutoff=mincut, beta=beta, dcutoff=dcut), scale


class MotionSmoother:
    """Filters [pitch, yaw, roll, t(3), log s, exp(63), eye L, eye R, lip] vectors over time."""

    def __init__(self) -> None:
        params, self.scale = _params()
        self.filter = OneEuroFilter(params)

    def reset(self) -> None:
        self.filter.reset()

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        return self.filter(v, t, scale=self.scale)
