"""Head pose (pitch, yaw, roll in degrees, and a translation) from 2-D landmarks via cv2.solvePnP.

The 3-D model is our canonical face (`worker.track.canonical`), fitted on the rigid landmarks
only (forehead, nose, eye corners, temples, cheekbones) so that expressions do not tilt the head.
The camera is a pinhole with the principal point at the frame's centre and a long focal length,
`FOCAL_SCALE` x the frame's larger side (a 14 degree field of view), not a webcam's real ~1x:
MediaPipe predicts each face from its own crop and its mesh is close to weak perspective, so
on the test footage the rigid-point reprojection error is lowest for 2-5x (0.05-0.06 of the
inter-ocular distance, against 0.07-0.10 at 1x), and a face near the frame's edge that looks
into the lens reads as frontal instead of pitched by its viewing angle (~14 degrees at 1x for
a face a quarter of the frame above the centre). The translation is in the canonical face's
centimetres under that assumed camera: x, y and z are proportional to the real offsets (z is
about 4x the true distance), good for relative motion, not as an absolute measurement.

Angle conventions (`FaceState`): pitch > 0 looks down, yaw > 0 turns the face towards the
image's right, roll > 0 tilts the head clockwise in the image. The rotation is decomposed as
R = Rz(roll) @ Ry(-yaw) @ Rx(pitch) in camera axes (x right, y down, z forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from worker.track import landmark_ids as L
from worker.track.canonical import load_canonical_face


@dataclass
class HeadPose:
    pitch: float
    yaw: float
    roll: float
    rvec: np.ndarray  # (3,) Rodrigues rotation, model -> camera
    tvec: np.ndarray  # (3,) model origin (between the eyes) in camera coordinates (see module doc)
    reprojection_error: float  # RMS, pixels


FOCAL_SCALE = 4.0


def camera_matrix(width: int, height: int) -> np.ndarray:
    f = FOCAL_SCALE * float(max(width, height))
    return np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]], np.float64)


def euler_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a model->camera rotation matrix (see module docstring)."""
    # R = Rz(c) Ry(b) Rx(a):  R[2,0] = -sin b, R[2,1] = cos b sin a, R[1,0] = sin c cos b
    b = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    a = math.atan2(float(r[2, 1]), float(r[2, 2]))
    c = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return math.degrees(a), -math.degrees(b), math.degrees(c)


def rotation_from_euler(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Inverse of `euler_from_rotation` (used by tests and by renderers that pose a model)."""
    a, b, c = math.radians(pitch), math.radians(-yaw), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


class HeadPoseSolver:
    """Fits the canonical face to each frame's landmarks; warm-starts from the previous fit."""

    def __init__(self, indices: tuple[int, ...] = L.RIGID) -> None:
        self.indices = np.asarray(indices)
        self.model = load_canonical_face()[self.indices].astype(np.float64)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._prev = None

    def solve(self, landmarks: np.ndarray, frame_size: tuple[int, int]) -> HeadPose:
        img = np.ascontiguousarray(np.asarray(landmarks, np.float64)[self.indices, :2])
        k = camera_matrix(*frame_size)
        dist = np.zeros(4)
        if self._prev is None:
            ok, rvec, tvec = cv2.solvePnP(self.model, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
        else:
            rvec, tvec = (v.copy() for v in self._prev)
            ok, rvec, tvec = cv2.solvePnP(
                self.model, img, k, dist, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
            )
        if not ok or not np.isfinite(rvec).all() or float(tvec[2, 0]) <= 0:
            self._prev = None
            ok, rvec, tvec = cv2.solvePnP(self.model, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
        self._prev = (rvec, tvec)
        proj, _ = cv2.projectPoints(self.model, rvec, tvec, k, dist)
        err = float(np.sqrt(((proj[:, 0, :] - img) ** 2).sum(axis=1).mean()))
        r, _ = cv2.Rodrigues(rvec)
        pitch, yaw, roll = euler_from_rotation(r)
        return HeadPose(pitch, yaw, roll, rvec.ravel().copy(), tvec.ravel().copy(), err)
