"""Synthetic pose sweeps of a character (benchmarks and tests): no camera, no tracker."""

from __future__ import annotations

import math

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.retarget.pose import TargetPose
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.track.face_state import FaceState


def driver_from_character(
    assets: CharacterAssets,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    mouth: float = 0.0,
    eyes: float | tuple[float, float] = 1.0,
    t: float = 0.0,
) -> FaceState:
    """A fake driver: the character's own landmarks, rotated and with mouth/eyes moved
    (`eyes`: both eyes' openness, or (subject's left, right) for a wink).

    Good enough to exercise retarget + render deterministically; real footage is for fidelity.
    """
    from worker.retarget import geometry
    from worker.track import landmark_ids as L

    lm = assets.landmarks.astype(np.float64).copy()
    _, _, iod = geometry.canonical_frame(lm)
    # mouth: lower lip, chin and jaw down
    down = np.array(L.jaw_weights(len(lm)))
    lm[:, 1] += down * mouth * iod
    for left in (True, False):
        e = eyes if isinstance(eyes, int | float) else eyes[0 if left else 1]
        c = L.L_EYE_CORNERS if left else L.R_EYE_CORNERS
        up = L.L_EYE_UPPER if left else L.R_EYE_UPPER
        lo = L.L_EYE_LOWER if left else L.R_EYE_LOWER
        line = (lm[c[0], 1] + lm[c[1], 1]) * 0.5
        mid = lm[lo, 1] * 0.8 + lm[up, 1] * 0.2
        lm[up, 1] = mid + (lm[up, 1] - mid) * e
        lm[lo, 1] = mid + (lm[lo, 1] - mid) * e
        del line
    rot = geometry.from_euler_yxz(math.radians(yaw), math.radians(pitch), math.radians(roll))
    piv = lm[L.SKULL, :].mean(0)
    lm = (lm - piv) @ rot.T + piv
    return FaceState(found=True, timestamp=t, landmarks=lm.astype(np.float32), frame_size=(assets.size,) * 2)


def sweep_faces(assets: CharacterAssets, frames: int = 300) -> list[FaceState]:
    """Fake driver faces that move everything at once: head turns and tilts, mouth, blinks."""
    faces = []
    for i in range(frames):
        t = i / 30.0
        faces.append(
            driver_from_character(
                assets,
                yaw=20 * math.sin(t * 1.3),
                pitch=10 * math.sin(t * 0.9),
                roll=12 * math.sin(t * 0.7),
                mouth=0.25 * max(0.0, math.sin(t * 3.1)),
                eyes=1.0 if (i % 90) > 6 else 0.0,
                t=t,
            )
        )
    return faces


def pose_sweep(assets: CharacterAssets, frames: int = 300) -> list[TargetPose]:
    """`sweep_faces` retargeted onto the character."""
    rt = Retargeter(assets, RetargetOptions(idle=False))
    neutral = driver_from_character(assets)
    return [rt.retarget(f, neutral) for f in sweep_faces(assets, frames)]
