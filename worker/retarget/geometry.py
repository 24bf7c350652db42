"""Face geometry from landmarks: canonical frame, similarity fit, apertures, gaze, rotations."""

from __future__ import annotations

import math

import numpy as np

from worker.track import landmark_ids as L


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right, left) eye centres: midpoints of the eye corners, 3-D."""
    r = (lm[L.R_EYE_CORNERS[0]] + lm[L.R_EYE_CORNERS[1]]) * 0.5
    l_ = (lm[L.L_EYE_CORNERS[0]] + lm[L.L_EYE_CORNERS[1]]) * 0.5
    return r, l_


def canonical_frame(lm: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre between the eyes (3,), in-plane roll in radians, 3-D inter-ocular distance)."""
    r, l_ = eye_centres(lm)
    d = l_ - r
    roll = math.atan2(float(d[1]), float(d[0]))
    iod = float(np.linalg.norm(d))
    return (r + l_) * 0.5, roll, max(iod, 1e-6)


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama: (s, R, t) minimising |dst - (s R src + t)|, 3-D points (n, 3)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.ones(3)
    if np.linalg.det(u @ vt) < 0:
        d[2] = -1.0
    rot = u @ np.diag(d) @ vt
    var = float((a * a).sum())
    s = float((sig * d).sum() / max(var, 1e-9))
    return s, rot, md - s * rot @ ms


def frontalised(lm: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`lm` (n, 3) turned, scaled and moved onto `ref`'s head by its skull points: the face's
    expression as if seen from `ref`'s viewpoint, free of the head's turn and tilt."""
    s, rot, _ = similarity_fit(ref[L.SKULL, :], lm[L.SKULL, :])
    return ((lm - lm[L.SKULL, :].mean(0)) @ rot) / s + ref[L.SKULL, :].mean(0)


def euler_yxz(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) radians of rot = Rz(roll) @ Rx(pitch) @ Ry(yaw) (image axes: y down)."""
    pitch = math.asin(max(-1.0, min(1.0, float(rot[2, 1]))))
    yaw = math.atan2(-float(rot[2, 0]), float(rot[2, 2]))
    roll = math.atan2(-float(rot[0, 1]), float(rot[1, 1]))
    return yaw, pitch, roll


def from_euler_yxz(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return rot_z(roll) @ rx @ ry


def eye_aperture(lm: np.ndarray, left: bool) -> float:
    """Mean lid gap / eye width (2-D), the same measure for drivers and characters."""
    up, lo = (L.L_EYE_UPPER, L.L_EYE_LOWER) if left else (L.R_EYE_UPPER, L.R_EYE_LOWER)
    c = L.L_EYE_CORNERS if left else L.R_EYE_CORNERS
    ax = lm[c[1], :2] - lm[c[0], :2]
    w = float(np.linalg.norm(ax))
    n = np.array([-ax[1], ax[0]]) / max(w, 1e-6)
    # across the eye only: lid points are not exactly above one another
    gap = np.abs((lm[lo[2:5], :2] - lm[up[2:5], :2]) @ n).mean()
    return float(gap) / max(w, 1e-6)


def mouth_gap(lm: np.ndarray) -> float:
    """Inner-lip gap in pixels (mean of the three central pairs, 2-D)."""
    a = [p for p, _ in L.INNER_LIP_PAIRS]
    b = [q for _, q in L.INNER_LIP_PAIRS]
    return float(np.linalg.norm(lm[a, :2] - lm[b, :2], axis=1).mean())


def gaze(lm: np.ndarray, left: bool) -> np.ndarray:
    """Iris centre offset from the corners' midpoint, in the eye's own axes, / half eye width."""
    c = L.L_EYE_CORNERS if left else L.R_EYE_CORNERS
    iris = lm[L.L_IRIS if left else L.R_IRIS, :2]
    a, b = lm[c[0], :2], lm[c[1], :2]
    # axis from the image-left corner to the image-right one so x means the same for both eyes
    if a[0] > b[0]:
        a, b = b, a
    ax = b - a
    half = max(float(np.linalg.norm(ax)) * 0.5, 1e-6)
    ax = ax / (2 * half)
    n = np.array([-ax[1], ax[0]])
    d = iris - (a + b) * 0.5
    return np.array([d @ ax, d @ n]) / half


def head_angles(lm: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees from landmark geometry alone, for analysis.

    roll: the eye line's angle; yaw: the depth slope across the cheeks; pitch: the depth slope
    from forehead to chin. Consistent between any two faces measured the same way.
    """
    _, roll, _ = canonical_frame(lm)
    rz = rot_z(-roll)
    p = (lm - lm[L.SKULL, :].mean(0)) @ rz.T
    cheek = p[L.LEFT_FACE_EDGE] - p[L.RIGHT_FACE_EDGE]
    yaw = math.atan2(-float(cheek[2]), float(cheek[0]))
    vert = p[L.CHIN] - p[L.FOREHEAD_TOP]
    pitch = math.atan2(float(vert[2]), float(vert[1]))
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)
