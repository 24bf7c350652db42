"""One Euro smoothing of the driving motion (the project's filter, worker/track/one_euro.py).

LivePortrait users' most common complaint is jitter: the motion extractor reads every driving
frame afresh. We filter what it reads, per channel, with the tracker's tuning translated to these
units: head angles like the tracker's pose (degrees), translation and log-scale like its face
frame, expression like its landmark shape (lids and lips fast, the rest steady). Keypoint units
are about 1/0.3 of an inter-ocular distance, hence the 0.3 scale on translation and expression.
The tuning is a translation of measured settings, not yet measured on real motion-extractor output.
"""

from __future__ import annotations

import numpy as np

from worker.render.liveportrait.motion import EYE_KP, LIP_KP, N_KP
from worker.track.one_euro import FRAME, POSE, SHAPE, OneEuroFilter, OneEuroParams

IOD_IN_KP_UNITS = 0.3
N_EXTRA = 3  # driver eye ratios (left, right) and lip ratio ride along


def _params() -> tuple[OneEuroParams, np.ndarray]:
    n = 7 + 3 * N_KP + N_EXTRA
    mincut, beta, dcut, scale = (np.empty(n) for _ in range(4))
    mincut[:3], beta[:3], dcut[:3], scale[:3] = POSE.mincutoff, POSE.beta, POSE.dcutoff, 1.0
    mincut[3:7], beta[3:7], dcut[3:7] = FRAME.mincutoff, FRAME.beta, FRAME.dcutoff
    scale[3:6], scale[6] = IOD_IN_KP_UNITS, 1.0
    fast = np.zeros(N_KP, bool)
    fast[list(EYE_KP + LIP_KP)] = True
    fast3 = np.repeat(fast, 3)
    mincut[7 : 7 + 3 * N_KP] = SHAPE.mincutoff
    beta[7 : 7 + 3 * N_KP] = np.where(fast3, 20.0, 5.0)
    dcut[7 : 7 + 3 * N_KP] = np.where(fast3, 5.0, 1.0)
    scale[7 : 7 + 3 * N_KP] = IOD_IN_KP_UNITS
    # ratios: like the tracker's features (light; the landmarks are smoothed already)
    mincut[-N_EXTRA:], beta[-N_EXTRA:], dcut[-N_EXTRA:], scale[-N_EXTRA:] = 8.0, 50.0, 5.0, 1.0
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
